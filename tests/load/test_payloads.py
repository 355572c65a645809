"""Staged rows as m3ter bodies, and when a current object counts as changed."""

from __future__ import annotations

import pytest

from pipeline.load.entities import ENTITIES
from pipeline.load.payloads import (
    UnknownReference,
    body_of,
    changes,
    full_body,
    managed_fields,
    row_fields,
)

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


def test_a_segment_is_sent_as_staged():
    row = {
        "code": "X",
        "planCode": "P-1",
        "aggregationCode": "api_calls",
        "segment": '{"region": "*", "tier": "Premium"}',
    }
    assert body_of(ENTITIES["pricings"], row, resolve)["segment"] == {
        "region": "*",
        "tier": "Premium",
    }


def test_an_unsegmented_pricing_sends_no_segment():
    row = {"code": "X", "planCode": "P-1", "aggregationCode": "api_calls", "segment": None}
    assert "segment" not in body_of(ENTITIES["pricings"], row, resolve)


PRICING_FIELDS = frozenset({"code", "planId", "startDate", "pricingBands", "type", "segment"})


def test_defaults_and_blanks_m3ter_echoes_are_not_changes():
    desired = {"code": "X", "planId": "p-1", "startDate": "2024-01-01T00:00:00Z"}
    current = {
        **desired,
        "type": "DEBIT",
        "cumulative": False,
        "segment": {},
        "description": "",
        "minimumSpend": 0,
        "id": "i",
        "version": 3,
    }
    assert changes(desired, current, PRICING_FIELDS | {"description", "minimumSpend"}) == {}


def test_numbers_and_instants_compare_by_value():
    desired = {
        "startDate": "2024-01-01T00:00:00Z",
        "pricingBands": [{"lowerLimit": 0, "fixedPrice": 0, "unitPrice": 10}],
    }
    current = {
        "startDate": "2024-01-01T00:00:00.000Z",
        "pricingBands": [
            {"id": "b", "creditTypeId": "", "lowerLimit": 0.0, "fixedPrice": 0.0, "unitPrice": 10}
        ],
    }
    assert changes(desired, current, PRICING_FIELDS) == {}


def test_a_changed_price_is_one_change():
    desired = {"pricingBands": [{"lowerLimit": 0.0, "fixedPrice": 0.0, "unitPrice": 12.0}]}
    current = {"pricingBands": [{"lowerLimit": 0.0, "fixedPrice": 0.0, "unitPrice": 10.0}]}
    assert list(changes(desired, current, PRICING_FIELDS)) == ["pricingBands"]


def test_a_field_the_mapping_sets_and_m3ter_holds_otherwise_is_a_change_back():
    desired = {"code": "A", "name": "Acme"}
    current = {"code": "A", "name": "Acme", "purchaseOrderNumber": "PO-9"}
    fields = {"code", "name", "purchaseOrderNumber"}
    assert changes(desired, current, fields) == {"purchaseOrderNumber": ("PO-9", None)}


def test_fields_the_row_s_mapping_does_not_set_are_not_compared():
    desired = {"code": "A", "name": "Acme"}
    current = {"code": "A", "name": "Acme", "purchaseOrderNumber": "PO-9"}
    assert changes(desired, current, {"code", "name"}) == {}


def test_a_nested_member_is_compared_on_its_own():
    desired = {"address": {"locality": "Leeds"}}
    current = {"address": {"locality": "Leeds", "addressLine1": "1 Old Road", "country": ""}}
    assert changes(desired, current, {"address.locality", "address.country"}) == {}
    assert list(changes(desired, current, {"address.addressLine1"})) == ["address.addressLine1"]


def test_custom_fields_are_decided_whole():
    fields = {"customFields"}
    assert (
        changes({"customFields": {"tier": "Gold"}}, {"customFields": {"tier": "Gold"}}, fields)
        == {}
    )
    assert changes({}, {"customFields": {}}, fields) == {}
    dropped = changes({"customFields": {}}, {"customFields": {"tier": "Gold"}}, fields)
    assert list(dropped) == ["customFields"]


def test_a_row_names_the_fields_its_mapping_sets_as_m3ter_fields():
    row = {"_fields": ["code", "planCode", "aggregationCode", "unitPrice", "segment"]}
    assert row_fields(ENTITIES["pricings"], row) == {
        "code",
        "planId",
        "aggregationId",
        "pricingBands",
        "segment",
    }


def test_a_row_staged_without_its_fields_decides_every_field_a_mapping_may_set():
    assert row_fields(ENTITIES["accounts"], {"_fields": None}) == managed_fields(
        ENTITIES["accounts"]
    )
    assert "address.locality" in managed_fields(ENTITIES["accounts"])


def test_a_full_body_keeps_m3ter_s_own_fields_and_drops_echoed_blanks_and_read_only_ones():
    current = {
        "id": "i",
        "version": 4,
        "code": "A",
        "name": "Old",
        "statementDefinitionId": "s-1",
        "currency": "",
        "customFields": {},
        "address": {"locality": "Leeds", "country": "UK"},
    }
    desired = {"code": "A", "name": "New", "address": {"locality": "York"}}
    body = full_body(
        ENTITIES["accounts"], desired, current, {"code", "name", "address.locality", "currency"}
    )
    assert body == {
        "code": "A",
        "name": "New",
        "statementDefinitionId": "s-1",
        "address": {"locality": "York", "country": "UK"},
    }
