"""m3ter's echo seen through: what counts as the value m3sync sent."""

from __future__ import annotations

import importlib
import typing

import pytest

from pipeline.load.entities import COMPUTED, ENTITIES, READ_ONLY
from pipeline.m3ter.echo import DOCUMENTED_DEFAULTS, is_blank, same, same_map


@pytest.mark.parametrize("echoed", [None, "", [], {}, False, 0, 0.0])
def test_a_field_never_sent_may_be_echoed_as_any_blank(echoed):
    assert same("description", None, echoed)


def test_a_field_never_sent_may_be_echoed_as_its_documented_default():
    assert same("type", None, "DEBIT")
    assert not same("type", None, "PRODUCT_CREDIT")


def test_a_field_never_sent_but_holding_a_value_differs():
    assert not same("purchaseOrderNumber", None, "PO-1")
    assert not same("bespoke", None, True)


def test_integral_numbers_compare_without_their_fraction():
    assert same("amount", 1000.0, 1000)
    assert same("amount", 1000, 1000.0)
    assert not same("amount", 1000, 1000.5)


def test_date_times_compare_as_instants():
    assert same("startDate", "2024-01-01T00:00:00Z", "2024-01-01T00:00:00.000Z")
    assert same("startDate", "2024-01-01T01:00:00+01:00", "2024-01-01T00:00:00.000Z")
    assert not same("startDate", "2024-01-01T00:00:00Z", "2024-01-02T00:00:00.000Z")


def test_dates_compare_as_text():
    assert same("startDate", "2024-01-01", "2024-01-01")
    assert not same("startDate", "2024-01-01", "2024-01-01T00:00:00.000Z")


def test_members_m3ter_adds_to_an_object_are_its_own():
    sent = [{"lowerLimit": 0, "unitPrice": 0.5, "fixedPrice": 0}]
    answered = [
        {"id": "b-1", "creditTypeId": "", "lowerLimit": 0, "unitPrice": 0.5, "fixedPrice": 0}
    ]
    assert same("pricingBands", sent, answered)


def test_a_list_of_another_length_differs():
    band = {"lowerLimit": 0, "unitPrice": 0.5, "fixedPrice": 0}
    assert not same("pricingBands", [band], [band, band])


def test_a_map_decided_whole_differs_by_a_key_m3ter_holds_with_a_value():
    assert same_map({"region": "EMEA"}, {"region": "EMEA", "tier": ""})
    assert not same_map({"region": "EMEA"}, {"region": "EMEA", "tier": "*"})
    assert same_map(None, {})


def test_a_flag_sent_false_is_the_same_as_one_never_echoed():
    assert same("bespoke", False, None)
    assert not same("bespoke", True, False)


def test_blanks_are_nothing_held():
    assert all(is_blank(v) for v in (None, "", [], {}, False, 0))
    assert not any(is_blank(v) for v in ("x", [0], {"a": 1}, True, 1))


# ---- against m3ter's SDK -------------------------------------------------------------------------

MODELS = {
    "accounts": ("account_response", "AccountResponse", "account_create_params"),
    "contracts": ("contract_response", "ContractResponse", "contract_create_params"),
    "plans": ("plan_response", "PlanResponse", "plan_create_params"),
    "pricings": ("pricing_response", "PricingResponse", "pricing_create_params"),
    "plan_groups": ("plan_group_response", "PlanGroupResponse", "plan_group_create_params"),
    "plan_group_links": (
        "plan_group_link_response",
        "PlanGroupLinkResponse",
        "plan_group_link_create_params",
    ),
    "account_plans": ("account_plan_response", "AccountPlanResponse", "account_plan_create_params"),
    "commitments": ("commitment_response", "CommitmentResponse", "commitment_create_params"),
    "compound_aggregations": (
        "compound_aggregation_response",
        "CompoundAggregationResponse",
        "compound_aggregation_create_params",
    ),
}


def _aliases(module: str, name: str) -> set[str]:
    cls = getattr(importlib.import_module(f"m3ter.types.{module}"), name)
    if hasattr(cls, "model_fields"):
        return {info.alias or field for field, info in cls.model_fields.items()}
    hints = typing.get_type_hints(cls, include_extras=True)
    return {_alias(hint) or field for field, hint in hints.items()}


def _alias(hint: object) -> str | None:
    if typing.get_origin(hint) in (typing.Required, typing.NotRequired):
        hint = typing.get_args(hint)[0]
    for meta in getattr(hint, "__metadata__", ()):
        alias = getattr(meta, "alias", None)
        if alias:
            return str(alias)
    return None


@pytest.mark.parametrize("entity", list(MODELS))
def test_what_the_loader_never_sends_back_is_what_the_sdk_answers_and_never_takes(entity):
    response, name, create = MODELS[entity]
    answered = _aliases(response, name)
    # `version` is taken on create only to be ignored; the loader sends its own with each PUT
    taken = _aliases(create, name.replace("Response", "CreateParams")) - {"version"}
    assert answered - taken == READ_ONLY | COMPUTED.get(entity, frozenset())


def test_every_documented_default_names_a_field_m3ter_answers():
    answered = set().union(*(_aliases(r, n) for r, n, _ in MODELS.values()))
    assert set(DOCUMENTED_DEFAULTS) <= answered


def test_the_entities_are_the_ones_loaded():
    assert set(MODELS) == set(ENTITIES)
