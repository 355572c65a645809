"""Staged rows as m3ter bodies, and when a current object counts as changed."""

from __future__ import annotations

import pytest

from pipeline.load.entities import ENTITIES
from pipeline.load.payloads import UnknownReference, body_of, changes

IDS = {("accounts", "ACC-1"): "a-1", ("plans", "P-1"): "p-1", ("aggregations", "api_calls"): "g-1"}


def resolve(collection: str, code: str) -> str | None:
    return IDS.get((collection, code))


def test_references_become_ids_and_nulls_are_left_out():
    row = {
        "code": "C-1",
        "accountCode": "ACC-1",
        "name": "C",
        "description": None,
        "_source_id": "x",
    }
    assert body_of(ENTITIES["contracts"], row, resolve) == {
        "code": "C-1",
        "accountId": "a-1",
        "name": "C",
    }


def test_an_unknown_code_is_an_error_naming_it():
    row = {"code": "C-1", "accountCode": "NOPE"}
    with pytest.raises(UnknownReference, match="accountCode 'NOPE'"):
        body_of(ENTITIES["contracts"], row, resolve)


def test_dotted_fields_become_nested_objects_and_json_is_parsed():
    row = {
        "code": "A",
        "address.locality": "Leeds",
        "address.country": "UK",
        "customFields": '{"tier": "Gold", "seats": 3}',
    }
    assert body_of(ENTITIES["accounts"], row, resolve) == {
        "code": "A",
        "address": {"locality": "Leeds", "country": "UK"},
        "customFields": {"tier": "Gold", "seats": 3},
    }


def test_a_segment_whose_values_are_all_null_is_sent_as_all_wildcards():
    row = {"code": "X", "planCode": "P-1", "aggregationCode": "api_calls", "segment": "{}"}
    assert body_of(ENTITIES["pricings"], row, resolve)["segment"] == {}


def test_an_unsegmented_pricing_sends_no_segment():
    row = {"code": "X", "planCode": "P-1", "aggregationCode": "api_calls", "segment": None}
    assert "segment" not in body_of(ENTITIES["pricings"], row, resolve)


def test_defaults_m3ter_fills_in_are_not_changes():
    desired = {"code": "X", "planId": "p-1", "startDate": "2024-01-01T00:00:00Z"}
    current = {**desired, "type": "DEBIT", "cumulative": False, "id": "i", "version": 3}
    assert changes(ENTITIES["pricings"], desired, current) == {}


def test_numbers_and_instants_compare_by_value():
    desired = {
        "startDate": "2024-01-01T00:00:00Z",
        "pricingBands": [{"lowerLimit": 0, "fixedPrice": 0, "unitPrice": 10}],
    }
    current = {
        "startDate": "2024-01-01T00:00:00.000Z",
        "pricingBands": [{"id": "b", "lowerLimit": 0.0, "fixedPrice": 0.0, "unitPrice": 10.0}],
    }
    assert changes(ENTITIES["pricings"], desired, current) == {}


def test_a_changed_price_is_one_change():
    desired = {"pricingBands": [{"lowerLimit": 0.0, "fixedPrice": 0.0, "unitPrice": 12.0}]}
    current = {"pricingBands": [{"lowerLimit": 0.0, "fixedPrice": 0.0, "unitPrice": 10.0}]}
    assert list(changes(ENTITIES["pricings"], desired, current)) == ["pricingBands"]


def test_a_managed_field_set_by_hand_in_m3ter_is_a_change_back():
    desired = {"code": "A", "name": "Acme"}
    current = {"code": "A", "name": "Acme", "purchaseOrderNumber": "PO-9"}
    assert changes(ENTITIES["accounts"], desired, current) == {
        "purchaseOrderNumber": ("PO-9", None)
    }


def test_fields_the_mappings_do_not_decide_are_not_compared():
    desired = {"code": "A", "name": "Acme"}
    current = {"code": "A", "name": "Acme", "statementDefinitionId": "s-1"}
    assert changes(ENTITIES["accounts"], desired, current) == {}
