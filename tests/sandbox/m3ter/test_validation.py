"""One expected error per validation rule: a 400 whose JSON message names the field and the rule."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import m3ter
import pytest

from pipeline.sandbox.m3ter.org import ExternalSystem, OrgSettings
from pipeline.sandbox.m3ter.validation import (
    calculation_references,
    format_datetime,
    normalized_segment,
    parse_datetime,
)
from tests.sandbox.m3ter.builders import (
    API_CALLS,
    API_PLATFORM,
    API_TEMPLATE,
    BAND,
    MESSAGES_SENT,
    MESSAGING,
    MESSAGING_METER,
    MESSAGING_TEMPLATE,
    Builder,
    account_args,
    meter_args,
)
from tests.sandbox.m3ter.conftest import RunningM3ter, StartM3ter

UNKNOWN = "00000000-0000-4000-8000-000000000000"


def rejected(call: Callable[[], object]) -> str:
    """The message of the 400 that `call` must raise."""
    with pytest.raises(m3ter.BadRequestError) as failure:
        call()
    body = failure.value.body
    assert isinstance(body, dict) and set(body) == {"message"}
    return str(body["message"])


def raw_post(sandbox: RunningM3ter, collection: str, body: dict[str, Any]) -> str:
    answer = sandbox.authed().post(sandbox.org_url(collection), json=body)
    assert answer.status_code == 400, answer.text
    assert answer.headers["Content-Type"].startswith("application/json")
    return str(answer.json()["message"])


def pricing(client: m3ter.M3ter, **args: Any) -> Any:
    settings = {"pricing_bands": [BAND], "start_date": "2025-01-01T00:00:00Z", **args}
    return client.pricings.create(**settings)


def sent(client: m3ter.M3ter, **args: Any) -> Any:
    """An aggregation of the messaging meter's messages_sent."""
    settings = {
        "name": "Sent",
        "meter_id": MESSAGING_METER,
        "target_field": "messages_sent",
        "aggregation": "SUM",
        "rounding": "NONE",
        "quantity_per_unit": 1,
        "unit": "message",
        **args,
    }
    return client.aggregations.create(**settings)


# ---- shape --------------------------------------------------------------------------------------


def test_a_missing_required_field_is_named(sandbox: RunningM3ter):
    message = raw_post(sandbox, "accounts", {"code": "acme", "emailAddress": "a@acme.test"})
    assert message == "name: is required"


def test_a_value_outside_an_enum_lists_the_allowed_values(client: m3ter.M3ter):
    message = rejected(
        lambda: client.aggregations.create(
            name="x",
            meter_id=MESSAGING_METER,
            target_field="messages_sent",
            aggregation="AVERAGE",  # type: ignore[arg-type]
            rounding="NONE",
            quantity_per_unit=1,
            unit="m",
        )
    )
    assert message.startswith("aggregation: must be one of SUM, MIN, MAX")


def test_a_code_with_leading_whitespace_breaks_the_code_pattern(client: m3ter.M3ter):
    message = rejected(lambda: client.products.create(code=" widgets", name="W"))
    assert message.startswith("code: must have no control characters")


def test_a_code_longer_than_80_characters_is_refused(client: m3ter.M3ter):
    message = rejected(lambda: client.products.create(code="w" * 81, name="W"))
    assert message == "code: must be 1 to 80 characters"


def test_an_aggregation_code_must_be_an_identifier(client: m3ter.M3ter):
    message = rejected(lambda: sent(client, code="Sent-Messages"))
    assert message.startswith("code: must be letters, digits and '_'")


def test_an_aggregation_code_may_be_camel_case(client: m3ter.M3ter):
    assert sent(client, code="messagesSent").code == "messagesSent"


def test_a_compound_aggregation_code_must_be_an_identifier_too(client: m3ter.M3ter):
    message = rejected(
        lambda: client.compound_aggregations.create(
            name="x",
            calculation="storage_gb + transfer_gb",
            quantity_per_unit=1,
            rounding="NONE",
            unit="GB",
            code="01t000000000001AAA",
        )
    )
    assert message.startswith("code: must be letters, digits and '_'")


def test_a_property_m3ter_does_not_know_is_refused(sandbox: RunningM3ter):
    message = raw_post(sandbox, "products", {"code": "p", "name": "P", "colour": "blue"})
    assert message == "colour: is not a property m3ter knows here"


def test_an_unknown_member_of_a_nested_object_is_refused(sandbox: RunningM3ter):
    body = {
        "code": "acme",
        "name": "Acme",
        "emailAddress": "a@acme.test",
        "address": {"locality": "Leeds", "planet": "Earth"},
    }
    message = raw_post(sandbox, "accounts", body)
    assert message == "address.planet: is not a property m3ter knows here"


def test_an_object_as_answered_can_be_sent_back_whole(sandbox: RunningM3ter, client: m3ter.M3ter):
    plan_id = Builder(client).plan()
    session = sandbox.authed()
    answered = session.get(sandbox.org_url(f"plans/{plan_id}")).json()
    assert answered["productId"] and answered["dtCreated"]  # read-only fields come back too
    again = session.put(sandbox.org_url(f"plans/{plan_id}"), json=answered)
    assert again.status_code == 200 and again.json()["version"] == 2


def test_a_currency_the_organization_lacks_is_refused(client: m3ter.M3ter):
    message = rejected(lambda: client.accounts.create(**{**account_args(), "currency": "JPY"}))
    assert message == "currency: JPY is not a currency of this organization (USD, EUR, GBP)"


def test_a_commitment_in_a_currency_the_organization_lacks_is_refused(client: m3ter.M3ter):
    account = Builder(client).account()
    message = rejected(
        lambda: client.commitments.create(
            account_id=account,
            amount=100,
            currency="XXX",
            start_date="2025-01-01",
            end_date="2026-01-01",
        )
    )
    assert message.startswith("currency: XXX is not a currency of this organization")


def test_the_organization_lists_its_currencies(sandbox: RunningM3ter):
    listed = sandbox.authed().get(sandbox.org_url("picklists/currency")).json()["data"]
    assert [c["code"] for c in listed] == ["USD", "EUR", "GBP"]


def test_a_name_over_200_characters_is_refused(client: m3ter.M3ter):
    message = rejected(lambda: client.products.create(code="w", name="n" * 201))
    assert message == "name: must be 1 to 200 characters"


def test_a_number_below_its_minimum_is_refused(client: m3ter.M3ter):
    message = rejected(
        lambda: client.plan_templates.create(
            product_id=MESSAGING,
            name="T",
            currency="USD",
            standing_charge=-1,
            bill_frequency="MONTHLY",
        )
    )
    assert message == "standingCharge: must be at least 0"


def test_quantity_per_unit_must_be_greater_than_zero(client: m3ter.M3ter):
    message = rejected(
        lambda: client.aggregations.create(
            name="x",
            meter_id=MESSAGING_METER,
            target_field="messages_sent",
            aggregation="SUM",
            rounding="NONE",
            quantity_per_unit=0,
            unit="m",
        )
    )
    assert message == "quantityPerUnit: must be greater than 0"


def test_every_shape_error_of_a_body_is_reported_at_once(sandbox: RunningM3ter):
    message = raw_post(sandbox, "products", {"code": " x", "name": 5})
    assert message == (
        "name: must be a string; code: must have no control characters and no leading, "
        "trailing or inner whitespace other than single spaces"
    )


def test_a_meter_needs_derived_fields_as_a_list_not_null(sandbox: RunningM3ter):
    body = {
        "code": "m",
        "name": "M",
        "dataFields": [{"category": "MEASURE", "code": "n", "name": "N"}],
        "derivedFields": None,
    }
    assert raw_post(sandbox, "meters", body) == "derivedFields: is required"


def test_a_malformed_json_body_is_a_400(sandbox: RunningM3ter):
    answer = sandbox.authed().post(
        sandbox.org_url("products"), data=b"{not json", headers={"Content-Type": "application/json"}
    )
    assert answer.status_code == 400
    assert answer.json()["message"].startswith("request body: malformed JSON")


# ---- dates --------------------------------------------------------------------------------------


def test_a_date_field_refuses_a_date_time(client: m3ter.M3ter):
    account = Builder(client).account()
    message = rejected(
        lambda: client.contracts.create(
            account_id=account, name="C", start_date="2025-01-01T00:00:00Z", end_date="2026-01-01"
        )
    )
    assert message == "startDate: must be a date (YYYY-MM-DD), not a date-time"


def test_a_date_time_field_refuses_a_plain_date(client: m3ter.M3ter):
    message = rejected(
        lambda: pricing(
            client,
            plan_template_id=MESSAGING_TEMPLATE,
            aggregation_id=MESSAGES_SENT,
            start_date="2025-01-01",
        )
    )
    assert message == ("startDate: must be a date-time (e.g. 2024-01-01T00:00:00Z), not a date")


def test_a_contract_must_end_after_it_starts(client: m3ter.M3ter):
    account = Builder(client).account()
    message = rejected(
        lambda: client.contracts.create(
            account_id=account, name="C", start_date="2025-06-01", end_date="2025-06-01"
        )
    )
    assert message.startswith("endDate: must be after startDate")


def test_a_pricing_must_end_after_it_starts(client: m3ter.M3ter):
    message = rejected(
        lambda: pricing(
            client,
            plan_template_id=MESSAGING_TEMPLATE,
            aggregation_id=MESSAGES_SENT,
            start_date="2025-06-01T00:00:00Z",
            end_date="2025-01-01T00:00:00Z",
        )
    )
    assert message.startswith("endDate: must be after startDate")


def test_a_commitment_fee_service_period_must_not_end_before_it_starts(client: m3ter.M3ter):
    account = Builder(client).account()
    message = rejected(
        lambda: client.commitments.create(
            account_id=account,
            amount=100,
            currency="USD",
            start_date="2025-01-01",
            end_date="2026-01-01",
            fee_dates=[
                {
                    "date": "2025-01-01",
                    "amount": 100,
                    "service_period_start_date": "2025-02-01T00:00:00Z",
                    "service_period_end_date": "2025-01-01T00:00:00Z",
                }
            ],
        )
    )
    assert message.startswith("feeDates[0].servicePeriodEndDate: must be on or after")


# ---- uniqueness and references ------------------------------------------------------------------


def test_a_code_already_used_by_another_object_of_the_entity_is_refused(client: m3ter.M3ter):
    client.accounts.create(code="acme", name="Acme", email_address="a@acme.test")
    message = rejected(
        lambda: client.accounts.create(code="acme", name="Other", email_address="b@acme.test")
    )
    assert message.startswith("code: 'acme' is already used by another Account")


def test_two_contracts_may_share_a_code_as_m3ter_documents_no_uniqueness(client: m3ter.M3ter):
    account = Builder(client).account()
    args = {"account_id": account, "name": "C", "start_date": "2025-01-01"}
    first = client.contracts.create(**args, end_date="2026-01-01", code="C-1")
    second = client.contracts.create(**args, end_date="2026-01-01", code="C-1")
    assert first.id != second.id
    assert len(list(client.contracts.list(codes=["C-1"]))) == 2


def test_the_same_code_may_be_used_by_two_entities(client: m3ter.M3ter):
    client.accounts.create(code="shared", name="A", email_address="a@acme.test")
    assert client.products.create(code="shared", name="P").code == "shared"


def test_a_reference_to_a_missing_object_is_refused(client: m3ter.M3ter):
    message = rejected(
        lambda: client.contracts.create(
            account_id=UNKNOWN, name="C", start_date="2025-01-01", end_date="2026-01-01"
        )
    )
    assert message == f"accountId: no Account with id '{UNKNOWN}' exists"


def test_an_id_that_is_not_a_uuid_is_refused(client: m3ter.M3ter):
    message = rejected(
        lambda: client.plans.create(plan_template_id="template-1", name="P", code="p")
    )
    assert message == "planTemplateId: must be a UUID (36 characters)"


def test_a_calculation_must_name_existing_aggregations(client: m3ter.M3ter):
    message = rejected(
        lambda: client.compound_aggregations.create(
            name="B",
            calculation="storage_gb + nothing_here",
            quantity_per_unit=1,
            rounding="NONE",
            unit="GB",
        )
    )
    assert message == "calculation: 'nothing_here' is not the code of an Aggregation"


def test_an_aggregation_target_must_be_a_field_of_its_meter(client: m3ter.M3ter):
    message = rejected(
        lambda: client.aggregations.create(
            name="x",
            meter_id=MESSAGING_METER,
            target_field="calls",
            aggregation="SUM",
            rounding="NONE",
            quantity_per_unit=1,
            unit="m",
        )
    )
    assert message.startswith("targetField: 'calls' is not a data or derived field")


def test_only_who_what_where_fields_can_be_segmented(client: m3ter.M3ter):
    message = rejected(
        lambda: client.aggregations.create(
            name="x",
            meter_id=MESSAGING_METER,
            target_field="messages_sent",
            aggregation="SUM",
            rounding="NONE",
            quantity_per_unit=1,
            unit="m",
            segmented_fields=["messages_sent"],
        )
    )
    assert message.startswith("segmentedFields: 'messages_sent' is a MEASURE field")


def test_an_aggregation_segment_may_only_use_the_segmented_fields(client: m3ter.M3ter):
    message = rejected(
        lambda: client.aggregations.create(
            name="x",
            meter_id=MESSAGING_METER,
            target_field="messages_sent",
            aggregation="SUM",
            rounding="NONE",
            quantity_per_unit=1,
            unit="m",
            segmented_fields=["region"],
            segments=[{"region": "NA", "tier": "Premium"}],
        )
    )
    assert message == "segments[0]: key tier is not one of the segmentedFields (region)"


def test_a_segment_priced_by_a_pricing_cannot_be_removed_from_its_aggregation(client: m3ter.M3ter):
    pricing(
        client,
        plan_template_id=API_TEMPLATE,
        aggregation_id=API_CALLS,
        segment={"region": "NA", "tier": "Premium"},
    )
    current = client.aggregations.retrieve(API_CALLS)
    message = rejected(
        lambda: client.aggregations.update(
            API_CALLS,
            name=current.name,
            meter_id=current.meter_id,
            target_field=current.target_field,
            aggregation="SUM",
            rounding="NONE",
            quantity_per_unit=1,
            unit="call",
            code="api_calls",
            segmented_fields=["region", "tier"],
            segments=[{"region": "EMEA", "tier": "Premium"}],
            version=current.version or 1,
        )
    )
    assert message.startswith("segments: segment {'region': 'NA', 'tier': 'Premium'} is priced by")


def test_a_meter_field_used_by_an_aggregation_cannot_be_removed(client: m3ter.M3ter):
    meter = client.meters.retrieve(MESSAGING_METER)
    message = rejected(
        lambda: client.meters.update(
            MESSAGING_METER,
            code=meter.code,
            name=meter.name,
            version=meter.version or 1,
            data_fields=[{"category": "WHERE", "code": "region", "name": "Region"}],
            derived_fields=[],
        )
    )
    assert message.startswith("dataFields: field messages_sent is used by Aggregation")


def test_an_object_others_refer_to_cannot_be_deleted(client: m3ter.M3ter):
    builder = Builder(client)
    account = builder.account()
    builder.contract(account)
    message = rejected(lambda: client.accounts.delete(account))
    assert message == (f"id: Account {account} cannot be deleted while 1 Contract(s) refer to it")


def test_an_external_mapping_must_point_at_an_existing_object(client: m3ter.M3ter):
    message = rejected(
        lambda: client.external_mappings.create(
            external_system="Salesforce",
            external_table="Account",
            external_id="001A",
            m3ter_entity="Account",
            m3ter_id=UNKNOWN,
        )
    )
    assert message == f"m3terId: no Account with id '{UNKNOWN}' exists"


# ---- exactly one of -----------------------------------------------------------------------------


def test_a_pricing_needs_exactly_one_of_plan_and_plan_template(client: m3ter.M3ter):
    plan = Builder(client).plan()
    message = rejected(
        lambda: pricing(
            client, plan_id=plan, plan_template_id=MESSAGING_TEMPLATE, aggregation_id=MESSAGES_SENT
        )
    )
    assert message == (
        "planId/planTemplateId: exactly one of planId and planTemplateId is "
        "required; both were given"
    )


def test_a_pricing_needs_exactly_one_of_aggregation_and_compound_aggregation(client: m3ter.M3ter):
    message = rejected(lambda: pricing(client, plan_template_id=MESSAGING_TEMPLATE))
    assert message == (
        "aggregationId/compoundAggregationId: exactly one of aggregationId and "
        "compoundAggregationId is required; neither was given"
    )


def test_an_account_plan_needs_exactly_one_of_plan_and_plan_group(client: m3ter.M3ter):
    account = Builder(client).account()
    message = rejected(
        lambda: client.account_plans.create(account_id=account, start_date="2025-01-01T00:00:00Z")
    )
    assert message == (
        "planId/planGroupId: exactly one of planId and planGroupId is required; neither was given"
    )


# ---- segments -----------------------------------------------------------------------------------


def test_a_pricing_segment_must_be_defined_on_its_aggregation(client: m3ter.M3ter):
    message = rejected(
        lambda: pricing(
            client,
            plan_template_id=API_TEMPLATE,
            aggregation_id=API_CALLS,
            segment={"region": "MARS", "tier": "Premium"},
        )
    )
    assert message.startswith(
        "segment: {'region': 'MARS', 'tier': 'Premium'} is not one of the segments defined"
    )


def test_a_pricing_of_a_segmented_aggregation_needs_a_segment(client: m3ter.M3ter):
    message = rejected(
        lambda: pricing(client, plan_template_id=API_TEMPLATE, aggregation_id=API_CALLS)
    )
    assert message.startswith("segment: is required")


def test_a_pricing_of_an_unsegmented_aggregation_takes_no_segment(client: m3ter.M3ter):
    message = rejected(
        lambda: pricing(
            client,
            plan_template_id=MESSAGING_TEMPLATE,
            aggregation_id=MESSAGES_SENT,
            segment={"region": "NA"},
        )
    )
    assert message.startswith("segment: Aggregation")
    assert message.endswith("is not segmented")


def test_a_segment_key_must_be_a_segmented_field(client: m3ter.M3ter):
    message = rejected(
        lambda: pricing(
            client,
            plan_template_id=API_TEMPLATE,
            aggregation_id=API_CALLS,
            segment={"region": "NA", "country": "US"},
        )
    )
    assert message.startswith("segment: key country is not one of the aggregation's")


def test_a_wildcard_segment_defined_on_the_aggregation_can_be_priced(client: m3ter.M3ter):
    created = pricing(
        client,
        plan_template_id=API_TEMPLATE,
        aggregation_id=API_CALLS,
        segment={"region": "*", "tier": "Enterprise"},
    )
    assert created.segment == {"region": "*", "tier": "Enterprise"}


def test_a_key_left_out_of_a_segment_is_refused_not_read_as_a_wildcard(client: m3ter.M3ter):
    message = rejected(
        lambda: pricing(
            client,
            plan_template_id=API_TEMPLATE,
            aggregation_id=API_CALLS,
            segment={"tier": "Premium"},
        )
    )
    assert message.startswith("segment: has no value for region")


def test_a_concrete_value_does_not_match_a_wildcard_definition(client: m3ter.M3ter):
    aggregation = sent(client, segmented_fields=["region"], segments=[{"region": "*"}])
    message = rejected(
        lambda: pricing(
            client,
            plan_template_id=MESSAGING_TEMPLATE,
            aggregation_id=aggregation.id,
            segment={"region": "EMEA"},
        )
    )
    assert "is not one of the segments defined" in message


def test_an_aggregation_segment_must_give_every_segmented_field(client: m3ter.M3ter):
    message = rejected(
        lambda: sent(client, segmented_fields=["region", "tier"], segments=[{"region": "NA"}])
    )
    assert message.startswith("segments[0]: has no value for tier")


# ---- overlaps -----------------------------------------------------------------------------------


def test_pricings_of_one_plan_aggregation_and_segment_must_not_overlap(client: m3ter.M3ter):
    plan = Builder(client).plan()
    first = pricing(
        client,
        plan_id=plan,
        aggregation_id=MESSAGES_SENT,
        start_date="2025-01-01T00:00:00Z",
        end_date="2026-01-01T00:00:00Z",
    )
    message = rejected(
        lambda: pricing(
            client, plan_id=plan, aggregation_id=MESSAGES_SENT, start_date="2025-12-31T00:00:00Z"
        )
    )
    assert message.startswith(f"startDate/endDate: overlaps Pricing {first.id}")


def test_pricings_may_follow_each_other_at_the_exclusive_end(client: m3ter.M3ter):
    plan = Builder(client).plan()
    pricing(
        client,
        plan_id=plan,
        aggregation_id=MESSAGES_SENT,
        start_date="2025-01-01T00:00:00Z",
        end_date="2026-01-01T00:00:00Z",
    )
    later = pricing(
        client, plan_id=plan, aggregation_id=MESSAGES_SENT, start_date="2026-01-01T00:00:00Z"
    )
    assert later.start_date is not None


def test_pricings_for_different_segments_may_overlap(client: m3ter.M3ter):
    for region in ("NA", "EMEA"):
        pricing(
            client,
            plan_template_id=API_TEMPLATE,
            aggregation_id=API_CALLS,
            segment={"region": region, "tier": "Premium"},
        )
    assert len(client.pricings.list(plan_template_id=API_TEMPLATE).data) == 2


def test_an_account_has_one_active_plan_per_product(client: m3ter.M3ter):
    builder = Builder(client)
    account = builder.account()
    first = client.account_plans.create(
        account_id=account, plan_id=builder.plan(), start_date="2025-01-01T00:00:00Z"
    )
    message = rejected(
        lambda: client.account_plans.create(
            account_id=account, plan_id=builder.plan(), start_date="2025-06-01T00:00:00Z"
        )
    )
    assert message.startswith("startDate/endDate: only one AccountPlan per Product can be active")
    assert first.id in message


def test_an_account_may_hold_plans_of_two_products_at_once(client: m3ter.M3ter):
    builder = Builder(client)
    account = builder.account()
    for template in (MESSAGING_TEMPLATE, API_TEMPLATE):
        client.account_plans.create(
            account_id=account, plan_id=builder.plan(template), start_date="2025-01-01T00:00:00Z"
        )
    listed = client.account_plans.list(account=account, includeall=True).data
    assert {p.product_id for p in listed} == {MESSAGING, API_PLATFORM}


# ---- prices -------------------------------------------------------------------------------------


def test_a_debit_pricing_refuses_negative_prices(client: m3ter.M3ter):
    message = rejected(
        lambda: pricing(
            client,
            plan_template_id=MESSAGING_TEMPLATE,
            aggregation_id=MESSAGES_SENT,
            pricing_bands=[{"lower_limit": 0, "fixed_price": 0, "unit_price": -0.5}],
        )
    )
    assert message == "pricingBands[0].unitPrice: must not be negative for a DEBIT pricing"


def test_a_credit_pricing_may_have_negative_prices(client: m3ter.M3ter):
    created = pricing(
        client,
        plan_template_id=MESSAGING_TEMPLATE,
        aggregation_id=MESSAGES_SENT,
        type="PRODUCT_CREDIT",
        pricing_bands=[{"lower_limit": 0, "fixed_price": 0, "unit_price": -0.5}],
    )
    assert created.type == "PRODUCT_CREDIT"


def test_overage_bands_need_a_cumulative_pricing(client: m3ter.M3ter):
    message = rejected(
        lambda: pricing(
            client,
            plan_template_id=MESSAGING_TEMPLATE,
            aggregation_id=MESSAGES_SENT,
            overage_pricing_bands=[BAND],
        )
    )
    assert message.startswith("overagePricingBands: only allowed when cumulative is true")


def test_separate_overage_usage_refuses_a_surcharge(client: m3ter.M3ter):
    account = Builder(client).account()
    message = rejected(
        lambda: client.commitments.create(
            account_id=account,
            amount=100,
            currency="USD",
            start_date="2025-01-01",
            end_date="2026-01-01",
            separate_overage_usage=True,
            overage_surcharge_percent=5,
        )
    )
    assert message.startswith("separateOverageUsage: cannot be true")


# ---- plans and accounts -------------------------------------------------------------------------


def test_a_bespoke_plan_only_attaches_to_its_own_account(client: m3ter.M3ter):
    builder = Builder(client)
    owner, other = builder.account(), builder.account()
    plan = builder.plan(account_id=owner, bespoke=True)
    message = rejected(
        lambda: client.account_plans.create(
            account_id=other, plan_id=plan, start_date="2025-01-01T00:00:00Z"
        )
    )
    assert message == f"planId: Plan {plan} is bespoke to another Account"


def test_a_contract_of_another_account_cannot_be_linked(client: m3ter.M3ter):
    builder = Builder(client)
    owner, other = builder.account(), builder.account()
    contract = builder.contract(owner)
    message = rejected(
        lambda: client.commitments.create(
            account_id=other,
            amount=100,
            currency="USD",
            start_date="2025-01-01",
            end_date="2026-01-01",
            contract_id=contract,
        )
    )
    assert message == f"contractId: Contract {contract} belongs to another Account"


def test_an_email_address_must_look_like_one(client: m3ter.M3ter):
    message = rejected(
        lambda: client.accounts.create(**{**account_args(), "email_address": "nobody"})
    )
    assert message == "emailAddress: must be an e-mail address"


def test_meter_field_codes_must_be_unique(client: m3ter.M3ter):
    args = meter_args()
    args["data_fields"] = [*args["data_fields"], args["data_fields"][0]]
    message = rejected(lambda: client.meters.create(**args))
    assert message.startswith("dataFields/derivedFields: field codes must be unique")


# ---- optimistic locking -------------------------------------------------------------------------


def test_an_update_with_a_stale_version_is_refused_without_saying_why(client: m3ter.M3ter):
    product = client.products.create(code="p", name="P")
    client.products.update(product.id, code="p", name="P2", version=1)
    message = rejected(lambda: client.products.update(product.id, code="p", name="P3", version=1))
    assert message == "Bad request: the Product could not be updated"
    assert "version" not in message and "stale" not in message


def test_an_update_without_a_version_is_refused(client: m3ter.M3ter):
    product = client.products.create(code="p", name="P")
    message = rejected(lambda: client.products.update(product.id, code="p", name="P2"))
    assert message == "Bad request: the Product could not be updated"


def test_a_refused_update_leaves_the_object_as_it_was(client: m3ter.M3ter):
    product = client.products.create(code="p", name="P")
    rejected(lambda: client.products.update(product.id, code="p", name="P2", version=5))
    assert client.products.retrieve(product.id).to_dict() == product.to_dict()


# ---- helpers ------------------------------------------------------------------------------------


def test_a_calculation_references_bare_names_only():
    assert calculation_references("max(storage_gb, 1e3) * customFields.rate + transfer_gb") == [
        "storage_gb",
        "transfer_gb",
    ]


def test_a_date_time_without_an_offset_is_refused():
    assert parse_datetime("2025-01-01T10:00:00") is None
    assert parse_datetime("2025-01-01") is None


def test_a_date_time_is_echoed_in_utc_with_milliseconds():
    parsed = parse_datetime("2025-01-01T12:00:00+02:00")
    assert parsed is not None and format_datetime(parsed) == "2025-01-01T10:00:00.000Z"


def test_an_omitted_segment_key_stays_missing():
    assert normalized_segment({"tier": "Premium"}, ["region", "tier"]) == (None, "Premium")


# ---- the organization's external mapping configuration ------------------------------------------


def _mapping(client: m3ter.M3ter, **changes: Any) -> Any:
    args = {
        "external_system": "Salesforce",
        "external_table": "Opportunity",
        "external_id": "006000000000001AAA",
        "m3ter_entity": "Account",
        "m3ter_id": Builder(client).account(),
        **changes,
    }
    return client.external_mappings.create(**args)


def test_the_configuration_names_the_systems_tables_and_entities_it_permits(
    sandbox: RunningM3ter,
):
    answer = sandbox.authed().get(sandbox.org_url("externalmappingconfiguration")).json()
    (system,) = answer["externalSystems"]
    assert system["name"] == "Salesforce" and system["allowCustomExternalTables"] is False
    assert "Opportunity" in system["externalTables"]
    assert "Commitment" in answer["m3terEntities"]


def test_a_mapping_from_a_system_not_configured_is_refused(client: m3ter.M3ter):
    message = rejected(lambda: _mapping(client, external_system="HubSpot"))
    assert message.startswith("externalSystem: HubSpot is not configured")


def test_a_mapping_from_a_custom_table_is_refused_until_custom_tables_are_allowed(
    client: m3ter.M3ter,
):
    message = rejected(lambda: _mapping(client, external_table="SBQQ__Subscription__c"))
    assert message.startswith("externalTable: SBQQ__Subscription__c is not a table")


def test_a_custom_table_maps_where_the_system_allows_custom_tables(start_m3ter: StartM3ter):
    system = ExternalSystem("Salesforce", ("Account",), allow_custom_tables=True)
    with start_m3ter(org=OrgSettings(external_systems=(system,))) as sandbox:
        client = sandbox.client()
        made = _mapping(client, external_table="SBQQ__Subscription__c")
        assert made.external_table == "SBQQ__Subscription__c"


def test_a_mapping_to_an_entity_not_permitted_is_refused(start_m3ter: StartM3ter):
    with start_m3ter(org=OrgSettings(mapped_entities=("Commitment",))) as sandbox:
        message = rejected(lambda: _mapping(sandbox.client()))
        assert message.startswith("m3terEntity: Account is not an entity this organization")


def test_nothing_keeps_two_mappings_of_one_record_apart(client: m3ter.M3ter):
    first = _mapping(client)
    second = _mapping(client, m3ter_id=first.m3ter_id)
    assert first.id != second.id


def test_an_account_as_answered_can_be_sent_back_with_its_echoed_blanks(
    sandbox: RunningM3ter, client: m3ter.M3ter
):
    account_id = Builder(client).account()
    session = sandbox.authed()
    answered = session.get(sandbox.org_url(f"accounts/{account_id}")).json()
    assert answered["currency"] == ""
    again = session.put(sandbox.org_url(f"accounts/{account_id}"), json=answered)
    assert again.status_code == 200 and again.json()["currency"] == ""
