"""The pandera models a staged row must pass before it is loaded (reference/m3ter-api.md §3).

Frames are built as the stage builds them: text columns as pyarrow-backed strings, numeric
columns as float64, one row per staged record.
"""

from __future__ import annotations

from typing import Any

import pandas as pd
import pandera.pandas as pa
import pytest

from pipeline.mapping.spec import Entity
from pipeline.staging.schemas import MESSAGES, SCHEMAS

TEXT = pd.StringDtype("pyarrow")

# One row per entity that m3ter would accept.
VALID: dict[Entity, dict[str, Any]] = {
    "accounts": {
        "code": "ACME-001",
        "name": "Acme Corp",
        "emailAddress": "billing@acme.example",
        "currency": "USD",
        "billEpoch": "2024-01-01",
        "daysBeforeBillDue": 30.0,
        "purchaseOrderNumber": "PO-17",
        "parentAccountCode": None,
    },
    "contracts": {
        "code": "800000000000001AAA",
        "name": "00000101",
        "accountCode": "ACME-001",
        "startDate": "2024-01-01",
        "endDate": "2025-01-01",
        "description": None,
        "purchaseOrderNumber": None,
    },
    "plans": {
        "code": "802000000000001AAA",
        "name": "API Platform",
        "planTemplateCode": "api_platform_template",
        "accountCode": "ACME-001",
        "standingCharge": 100.0,
        "minimumSpend": None,
        "standingChargeDescription": None,
        "minimumSpendDescription": None,
    },
    "pricings": {
        "code": "802000000000001AAA",
        "planCode": "802000000000001AAA",
        "planTemplateCode": None,
        "aggregationCode": "api_calls",
        "compoundAggregationCode": None,
        "startDate": "2024-01-01T00:00:00Z",
        "endDate": "2025-01-01T00:00:00Z",
        "unitPrice": 0.25,
        "fixedPrice": None,
        "type": "DEBIT",
        "minimumSpend": None,
        "description": None,
    },
    "plan_groups": {
        "code": "801000000000001AAA",
        "name": "Order 00000100",
        "currency": "USD",
        "accountCode": "ACME-001",
        "standingCharge": 0.0,
        "minimumSpend": 1000.0,
        "standingChargeDescription": None,
        "minimumSpendDescription": "Minimum",
    },
    "plan_group_links": {
        "code": "801000000000001AAA_api_platform",
        "planGroupCode": "801000000000001AAA",
        "planCode": "801000000000001AAA_api_platform",
    },
    "account_plans": {
        "code": "802000000000001AAA",
        "accountCode": "ACME-001",
        "planCode": "802000000000001AAA",
        "contractCode": "800000000000001AAA",
        "startDate": "2024-01-01T00:00:00Z",
        "endDate": "2025-01-01T00:00:00Z",
        "billEpoch": "2024-01-01",
        "childBillingMode": "PARENT_BREAKDOWN",
    },
    "commitments": {
        "accountCode": "ACME-001",
        "contractCode": None,
        "amount": 12000.0,
        "currency": "EUR",
        "startDate": "2024-01-01",
        "endDate": "2025-01-01",
        "amountFirstBill": 1000.0,
        "amountPrePaid": 0.0,
        "billEpoch": None,
        "billingInterval": 1.0,
        "billingOffset": 0.0,
    },
    "compound_aggregations": {
        "code": "api_calls_weighted",
        "name": "Weighted API calls",
        "calculation": "api_calls * 2",
        "quantityPerUnit": 1.0,
        "rounding": "NONE",
        "unit": "calls",
        "productCode": "platform",
    },
}
CODED = [entity for entity in VALID if entity not in ("commitments", "compound_aggregations")]
ROW_LEVEL = "*"


def frame(entity: Entity, rows: list[dict[str, Any]]) -> pd.DataFrame:
    """The frame the stage validates: the schema's columns, text as Arrow strings, else float64."""
    columns = SCHEMAS[entity].to_schema().columns
    return pd.DataFrame(
        {
            name: pd.Series(
                [row.get(name) for row in rows],
                dtype="float64" if str(column.dtype) == "float64" else TEXT,
            )
            for name, column in columns.items()
        }
    )


def failures(entity: Entity, **changes: Any) -> set[tuple[str, str]]:
    """(column, check) for each check the valid row with `changes` fails; row checks on '*'."""
    try:
        SCHEMAS[entity].validate(frame(entity, [{**VALID[entity], **changes}]), lazy=True)
    except pa.errors.SchemaErrors as errors:
        cases = errors.failure_cases
        return {
            (column if context == "Column" else ROW_LEVEL, check.split("(", 1)[0])
            for column, check, context in zip(
                cases["column"], cases["check"], cases["schema_context"], strict=True
            )
        }
    return set()


def test_every_entity_has_a_schema():
    assert set(SCHEMAS) == set(VALID)


@pytest.mark.parametrize("entity", list(VALID))
def test_a_valid_row_passes(entity):
    df = frame(entity, [VALID[entity]])
    validated = SCHEMAS[entity].validate(df, lazy=True)
    pd.testing.assert_frame_equal(validated, df)


@pytest.mark.parametrize("entity", list(VALID))
def test_a_valid_row_with_every_optional_column_null_passes(entity):
    columns = SCHEMAS[entity].to_schema().columns
    optional = {name: None for name, column in columns.items() if column.nullable}
    if entity == "pricings":  # one of each pair, and a price, must stay set
        optional = {
            key: value
            for key, value in optional.items()
            if key not in ("planCode", "aggregationCode", "unitPrice")
        }
    if entity == "account_plans":  # a plan or a plan group must stay set
        optional.pop("planCode")
    assert failures(entity, **optional) == set()


# --- codes ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("entity", CODED)
@pytest.mark.parametrize(
    "code",
    [" ACME", "ACME ", "AC\x01ME", "AC\tME", "ACME\n", "AC\x7fME", ""],
    ids=[
        "leading-space",
        "trailing-space",
        "control",
        "tab",
        "trailing-newline",
        "delete",
        "empty",
    ],
)
def test_a_code_must_match_m3ters_code_pattern(entity, code):
    assert failures(entity, code=code) == {("code", "str_matches")}


@pytest.mark.parametrize("code", ["A", "ACME Corp 001", 'S?oC"$]C] ]]]]]5]', "a" * 80])
def test_codes_with_inner_spaces_and_punctuation_up_to_80_characters_pass(code):
    assert failures("accounts", code=code) == set()


@pytest.mark.parametrize("entity", CODED)
def test_a_code_over_80_characters_is_refused(entity):
    assert failures(entity, code="a" * 81) == {("code", "str_length")}


def test_references_to_other_objects_follow_the_code_pattern():
    assert failures("accounts", parentAccountCode=" PARENT") == {
        ("parentAccountCode", "str_matches")
    }
    assert failures("contracts", accountCode="A" * 81) == {("accountCode", "str_length")}


@pytest.mark.parametrize("code", ["apiCalls", "Api_calls", "1calls", "api-calls", "api calls"])
def test_an_aggregation_code_is_left_to_m3ter_beyond_what_is_certain(code):
    assert failures("compound_aggregations", code=code) == set()
    assert failures("pricings", aggregationCode=code) == set()


@pytest.mark.parametrize("code", ["api\tcalls", "api\x00calls", "\x7f"])
def test_an_aggregation_code_holds_no_control_characters(code):
    assert failures("compound_aggregations", code=code) == {("code", "str_matches")}
    assert failures("pricings", aggregationCode=code) == {("aggregationCode", "str_matches")}


def test_an_aggregation_code_holds_at_most_80_characters():
    assert failures("compound_aggregations", code="a" * 81) == {("code", "str_length")}


# --- required fields ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("entity", "column"),
    [
        ("accounts", "code"),
        ("accounts", "name"),
        ("accounts", "emailAddress"),
        ("contracts", "accountCode"),
        ("contracts", "endDate"),
        ("plans", "planTemplateCode"),
        ("pricings", "startDate"),
        ("plan_groups", "currency"),
        ("plan_group_links", "planGroupCode"),
        ("plan_group_links", "planCode"),
        ("commitments", "amount"),
        ("commitments", "currency"),
        ("compound_aggregations", "calculation"),
        ("compound_aggregations", "quantityPerUnit"),
    ],
)
def test_a_required_field_cannot_be_null(entity, column):
    assert failures(entity, **{column: None}) == {(column, "not_nullable")}


def test_a_name_cannot_be_empty_or_longer_than_200_characters():
    assert failures("accounts", name="") == {("name", "str_length")}
    assert failures("accounts", name="n" * 201) == {("name", "str_length")}


def test_an_email_address_must_look_like_one():
    assert failures("accounts", emailAddress="billing at acme") == {("emailAddress", "str_matches")}


# --- dates ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("entity", ["contracts", "pricings", "account_plans", "commitments"])
@pytest.mark.parametrize("end", ["same", "earlier"])
def test_start_must_be_before_the_exclusive_end(entity, end):
    start = VALID[entity]["startDate"]
    earlier = start.replace("2024-01-01", "2023-12-31")
    assert failures(entity, endDate=start if end == "same" else earlier) == {
        (ROW_LEVEL, "start_before_end")
    }


def test_an_open_ended_pricing_has_no_end_to_compare():
    assert failures("pricings", endDate=None) == set()


@pytest.mark.parametrize("value", ["2024-13-01", "2024-01-32", "2024-1-1", "2024-01-01T00:00:00Z"])
def test_a_date_column_takes_only_yyyy_mm_dd(value):
    assert failures("contracts", startDate=value, endDate="2099-01-01") == {
        ("startDate", "str_matches")
    }


@pytest.mark.parametrize(
    "value",
    ["2024-01-01", "2024-01-01T00:00:00", "2024-01-01 00:00:00Z", "2024-01-01T00:00:00+00:00"],
)
def test_a_datetime_column_takes_only_rfc_3339_in_utc(value):
    assert failures("pricings", startDate=value, endDate=None) == {("startDate", "str_matches")}


# --- currency -------------------------------------------------------------------------------------


@pytest.mark.parametrize("entity", ["accounts", "commitments"])
@pytest.mark.parametrize("currency", ["usd", "US", "USDX", "U$D"])
def test_a_currency_must_be_three_capital_letters(entity, currency):
    assert failures(entity, currency=currency) == {("currency", "str_matches")}


# --- pricings -------------------------------------------------------------------------------------


@pytest.mark.parametrize("price", ["unitPrice", "fixedPrice"])
@pytest.mark.parametrize("kind", ["DEBIT", None])
def test_a_debit_pricing_cannot_have_a_negative_price(price, kind):
    row = {"unitPrice": 0.25, "fixedPrice": 0.0, price: -1.0, "type": kind}
    assert failures("pricings", **row) == {(ROW_LEVEL, "no_negative_debit_price")}


@pytest.mark.parametrize("kind", ["PRODUCT_CREDIT", "GLOBAL_CREDIT"])
def test_a_credit_pricing_may_have_a_negative_price(kind):
    assert failures("pricings", type=kind, unitPrice=-1.0, fixedPrice=-5.0) == set()


def test_a_pricing_type_must_be_one_of_m3ters():
    assert failures("pricings", type="CREDIT") == {("type", "isin")}


@pytest.mark.parametrize(
    ("plan", "template"), [("802000000000001AAA", "tpl"), (None, None)], ids=["both", "neither"]
)
def test_a_pricing_needs_exactly_one_of_plan_and_plan_template(plan, template):
    assert failures("pricings", planCode=plan, planTemplateCode=template) == {
        (ROW_LEVEL, "one_plan_side")
    }


@pytest.mark.parametrize(
    ("plan", "group"),
    [("802000000000001AAA", "801000000000001AAA"), (None, None)],
    ids=["both", "neither"],
)
def test_an_account_plan_needs_exactly_one_of_plan_and_plan_group(plan, group):
    assert failures("account_plans", planCode=plan, planGroupCode=group) == {
        (ROW_LEVEL, "plan_or_group")
    }


def test_an_account_plan_may_attach_a_plan_group_instead_of_a_plan():
    assert failures("account_plans", planCode=None, planGroupCode="801000000000001AAA") == set()


def test_a_pricing_may_belong_to_a_plan_template_instead_of_a_plan():
    assert failures("pricings", planCode=None, planTemplateCode="tpl") == set()


@pytest.mark.parametrize(
    ("aggregation", "compound"), [("api_calls", "weighted"), (None, None)], ids=["both", "neither"]
)
def test_a_pricing_needs_exactly_one_of_aggregation_and_compound_aggregation(aggregation, compound):
    assert failures("pricings", aggregationCode=aggregation, compoundAggregationCode=compound) == {
        (ROW_LEVEL, "one_aggregation_side")
    }


def test_a_pricing_may_price_a_compound_aggregation():
    assert failures("pricings", aggregationCode=None, compoundAggregationCode="weighted") == set()


def test_a_pricing_needs_a_unit_or_fixed_price():
    assert failures("pricings", unitPrice=None, fixedPrice=None) == {(ROW_LEVEL, "a_price")}
    assert failures("pricings", unitPrice=None, fixedPrice=10.0) == set()


def test_a_pricing_minimum_spend_cannot_be_negative():
    assert failures("pricings", minimumSpend=-1.0) == {("minimumSpend", "greater_than_or_equal_to")}


# --- commitments ----------------------------------------------------------------------------------


@pytest.mark.parametrize("amount", [0.0, -100.0])
def test_a_commitment_amount_must_be_positive(amount):
    assert failures("commitments", amount=amount) == {("amount", "greater_than")}


@pytest.mark.parametrize(
    ("column", "value", "check"),
    [
        ("billingInterval", 0.0, "greater_than_or_equal_to"),
        ("billingInterval", 366.0, "less_than_or_equal_to"),
        ("billingOffset", -1.0, "greater_than_or_equal_to"),
        ("billingOffset", 365.0, "less_than_or_equal_to"),
        ("amountPrePaid", -1.0, "greater_than_or_equal_to"),
    ],
)
def test_commitment_billing_numbers_stay_in_m3ters_ranges(column, value, check):
    assert failures("commitments", **{column: value}) == {(column, check)}


# --- compound aggregations ------------------------------------------------------------------------


def test_a_compound_aggregation_quantity_per_unit_must_be_positive():
    assert failures("compound_aggregations", quantityPerUnit=0.0) == {
        ("quantityPerUnit", "greater_than")
    }


def test_a_compound_aggregation_rounding_must_be_one_of_m3ters():
    assert failures("compound_aggregations", rounding="HALF_UP") == {("rounding", "isin")}


# --- the frame as a whole -------------------------------------------------------------------------


def test_failure_cases_name_the_failing_rows():
    rows = [VALID["pricings"], {**VALID["pricings"], "code": " bad"}, VALID["pricings"]]
    with pytest.raises(pa.errors.SchemaErrors) as info:
        SCHEMAS["pricings"].validate(frame("pricings", rows), lazy=True)
    cases = info.value.failure_cases
    assert list(cases["index"]) == [1]
    assert list(cases["failure_case"]) == [" bad"]


def test_every_failure_of_every_row_is_reported_at_once():
    rows = [
        {**VALID["commitments"], "amount": 0.0},
        {**VALID["commitments"], "currency": "eur", "endDate": "2023-01-01"},
    ]
    with pytest.raises(pa.errors.SchemaErrors) as info:
        SCHEMAS["commitments"].validate(frame("commitments", rows), lazy=True)
    cases = info.value.failure_cases
    found = {
        (int(i), c.split("(", 1)[0]) for i, c in zip(cases["index"], cases["check"], strict=True)
    }
    assert found == {(0, "greater_than"), (1, "str_matches"), (1, "start_before_end")}


def test_text_columns_must_be_arrow_backed_strings():
    df = frame("accounts", [VALID["accounts"]]).astype({"name": pd.StringDtype("python")})
    with pytest.raises(pa.errors.SchemaErrors) as info:
        SCHEMAS["accounts"].validate(df, lazy=True)
    assert list(info.value.failure_cases["column"]) == ["name"]
    assert list(info.value.failure_cases["check"]) == ["dtype('string[pyarrow]')"]


def test_columns_the_schema_does_not_know_are_left_alone():
    df = frame("pricings", [VALID["pricings"]]).assign(segment=['{"region": "EMEA"}'])
    assert list(SCHEMAS["pricings"].validate(df, lazy=True).columns)[-1] == "segment"


def test_every_row_level_check_has_a_message_for_the_reject():
    row_checks = {check.name for model in SCHEMAS.values() for check in model.to_schema().checks}
    assert row_checks <= set(MESSAGES)
