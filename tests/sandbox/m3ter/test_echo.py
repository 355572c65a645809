"""Answers show every field of m3ter's response models, unset ones as m3ter echoes them."""

from __future__ import annotations

import importlib
import re
from typing import Any

import m3ter
import pytest

from tests.sandbox.m3ter.builders import (
    API_CALLS,
    API_TEMPLATE,
    BAND,
    CASES,
    MESSAGES_SENT,
    MESSAGING_TEMPLATE,
    Builder,
)
from tests.sandbox.m3ter.conftest import RunningM3ter

# The SDK's response model of each collection, by module and class.
MODELS = {
    "accounts": "account_response.AccountResponse",
    "contracts": "contract_response.ContractResponse",
    "products": "product_response.ProductResponse",
    "meters": "meter_response.MeterResponse",
    "aggregations": "aggregation_response.AggregationResponse",
    "compoundaggregations": "compound_aggregation_response.CompoundAggregationResponse",
    "plantemplates": "plan_template_response.PlanTemplateResponse",
    "plans": "plan_response.PlanResponse",
    "pricings": "pricing_response.PricingResponse",
    "plangroups": "plan_group_response.PlanGroupResponse",
    "plangrouplinks": "plan_group_link_response.PlanGroupLinkResponse",
    "accountplans": "account_plan_response.AccountPlanResponse",
    "commitments": "commitment_response.CommitmentResponse",
    "externalmappings": "external_mapping_response.ExternalMappingResponse",
}


def sdk_fields(collection: str) -> set[str]:
    module, name = MODELS[collection].split(".")
    model = getattr(importlib.import_module(f"m3ter.types.{module}"), name)
    return {info.alias or field for field, info in model.model_fields.items()}


def raw(sandbox: RunningM3ter, collection: str, object_id: str) -> dict[str, Any]:
    answer = sandbox.authed().get(sandbox.org_url(f"{collection}/{object_id}"))
    answer.raise_for_status()
    return dict(answer.json())


@pytest.mark.parametrize("collection", list(CASES))
def test_an_answer_carries_every_field_of_the_sdk_response_model(
    sandbox: RunningM3ter, client: m3ter.M3ter, collection: str
):
    case = CASES[collection]
    created = getattr(client, case.resource).create(**case.create(Builder(client), 0))
    assert set(raw(sandbox, collection, created.id)) == sdk_fields(collection)


def test_text_never_given_is_echoed_empty_and_flags_false(
    sandbox: RunningM3ter, client: m3ter.M3ter
):
    plan = raw(sandbox, "plans", Builder(client).plan())
    assert plan["standingChargeDescription"] == ""
    assert plan["minimumSpendDescription"] == ""
    assert plan["bespoke"] is False
    assert plan["customFields"] == {}
    assert plan["standingCharge"] is None  # a number never given stays null


def test_a_pricing_echoes_its_documented_defaults_and_a_minimum_spend_of_zero(
    sandbox: RunningM3ter, client: m3ter.M3ter
):
    created = client.pricings.create(
        plan_template_id=MESSAGING_TEMPLATE,
        aggregation_id=MESSAGES_SENT,
        pricing_bands=[BAND],
        start_date="2025-01-01T00:00:00Z",
    )
    pricing = raw(sandbox, "pricings", created.id)
    assert (pricing["type"], pricing["cumulative"], pricing["minimumSpend"]) == ("DEBIT", False, 0)
    assert (pricing["description"], pricing["segment"], pricing["segmentString"]) == ("", {}, "")


def test_an_integral_number_is_written_without_a_fraction(sandbox: RunningM3ter):
    session = sandbox.authed()
    body = {"accountId": _account(sandbox), "amount": 1000.0, "currency": "USD"}
    body |= {"startDate": "2025-01-01", "endDate": "2026-01-01"}
    answer = session.post(sandbox.org_url("commitments"), json=body)
    assert answer.status_code == 200, answer.text
    assert re.search(r'"amount": 1000[,}]', answer.text)


def _api_pricing(sandbox: RunningM3ter, client: m3ter.M3ter) -> dict[str, Any]:
    created = client.pricings.create(
        plan_template_id=API_TEMPLATE,
        aggregation_id=API_CALLS,
        pricing_bands=[BAND],
        start_date="2025-01-01T00:00:00Z",
        segment={"region": "EMEA", "tier": "Premium"},
    )
    return raw(sandbox, "pricings", created.id)


def test_date_times_are_answered_with_milliseconds(sandbox: RunningM3ter, client: m3ter.M3ter):
    pricing = _api_pricing(sandbox, client)
    assert pricing["startDate"] == "2025-01-01T00:00:00.000Z"
    assert pricing["dtCreated"].endswith(".000Z")


def test_each_pricing_band_gets_an_id_of_its_own(sandbox: RunningM3ter, client: m3ter.M3ter):
    (band,) = _api_pricing(sandbox, client)["pricingBands"]
    assert len(band["id"]) == 36 and band["creditTypeId"] == ""


def _account(sandbox: RunningM3ter) -> str:
    body = {"code": "echo", "name": "Echo", "emailAddress": "a@echo.test"}
    answer = sandbox.authed().post(sandbox.org_url("accounts"), json=body)
    return str(answer.json()["id"])
