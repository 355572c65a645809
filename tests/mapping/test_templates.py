"""Computed text: fields and literals make one value, and a computed code groups rows."""

from __future__ import annotations

import datetime as dt

import pytest

from pipeline.mapping.spec import record_problems
from pipeline.mapping.templates import TemplateError, parse_template
from tests.mapping.test_compiler import compile_files, one_row, problems_of

ACCOUNT_PLANS = """\
- name: Lines
  object: OrderItem
  sync_level: agreement
  fields:
    code: '{OrderId}_{Product2.M3ter_Product_Code__c}'
    accountCode: Order.AccountId
    planCode: '{OrderId}_{Product2.M3ter_Product_Code__c}'
    startDate: ServiceDate
    endDate: EndDate
  combine:
    startDate: earliest
    endDate: latest
"""
LINE = {
    "OrderId": "801000000000001AAA",
    "Order.AccountId": "001000000000001AAA",
    "Product2.M3ter_Product_Code__c": "api_platform",
    "ServiceDate": dt.date(2024, 1, 1),
    "EndDate": dt.date(2024, 12, 31),
}


def test_a_template_keeps_its_literals_and_names_its_paths():
    template = parse_template("{OrderId}_{Product2.M3ter_Product_Code__c}")
    assert template.parts == ("OrderId", "_", "Product2.M3ter_Product_Code__c")
    assert template.paths == ("OrderId", "Product2.M3ter_Product_Code__c")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("{OrderId", "unmatched brace"),
        ("OrderId}", "unmatched brace"),
        ("{Order Id}", "is not a Salesforce field"),
        ("{}", "is not a Salesforce field"),
    ],
)
def test_a_broken_template_says_what_is_wrong(text, message):
    with pytest.raises(TemplateError, match=message):
        parse_template(text)


def test_a_computed_code_is_the_fields_and_literals_joined(tmp_path):
    compiled = compile_files(tmp_path, account_plans=ACCOUNT_PLANS)["account_plans"]
    row = one_row(compiled, **LINE)
    assert row["code"] == "801000000000001AAA_api_platform"
    assert row["_grouped"] is True
    assert row["_combine"] == ["startDate:earliest", "endDate:latest"]
    assert row["_agreement"] == "801000000000001AAA"


def test_a_computed_code_with_a_blank_field_is_blank(tmp_path):
    compiled = compile_files(tmp_path, account_plans=ACCOUNT_PLANS)["account_plans"]
    row = one_row(compiled, **{**LINE, "Product2.M3ter_Product_Code__c": None})
    assert row["code"] is None


def test_a_code_read_from_one_field_does_not_group(tmp_path):
    plain = ACCOUNT_PLANS.replace(
        "    code: '{OrderId}_{Product2.M3ter_Product_Code__c}'\n", "    code: Id\n"
    ).replace("  combine:\n    startDate: earliest\n    endDate: latest\n", "")
    plain = plain.replace("sync_level: agreement", "sync_level: line_item")
    compiled = compile_files(tmp_path, account_plans=plain)["account_plans"]
    assert one_row(compiled, **LINE)["_grouped"] is False


def test_a_combine_rule_that_cannot_combine_the_field_names_it(tmp_path):
    bad = ACCOUNT_PLANS.replace("    endDate: latest\n", "    endDate: sum\n")
    (problem,) = problems_of(tmp_path, account_plans=bad)
    assert "combine key 'endDate': 'sum' cannot combine a date-time" in problem


def test_combine_needs_a_computed_code():
    problems = record_problems(
        "account_plans",
        {
            "name": "Lines",
            "object": "OrderItem",
            "sync_level": "line_item",
            "fields": {"code": "Id", "startDate": "ServiceDate"},
            "combine": {"startDate": "earliest"},
        },
    )
    assert [p.path for p in problems] == [("combine",)]
    assert "needs a computed code" in problems[0].message


def test_an_unknown_combine_rule_and_an_unmapped_field_are_both_reported():
    problems = record_problems(
        None,
        {
            "name": "Lines",
            "object": "OrderItem",
            "fields": {"code": "{OrderId}"},
            "combine": {"startDate": "first"},
        },
    )
    messages = " | ".join(p.message for p in problems)
    assert "'first' is not a rule" in messages and "not mapped in 'fields'" in messages


def test_computed_text_cannot_become_a_number(tmp_path):
    bad = """\
- name: Lines
  object: OrderItem
  sync_level: line_item
  fields:
    planCode: Id
    startDate: ServiceDate
    unitPrice: '{UnitPrice}'
"""
    (problem,) = problems_of(tmp_path, pricings=bad)
    assert "computed text cannot become m3ter a number" in problem


def test_commitments_of_lines_cannot_be_synced_at_agreement_level(tmp_path):
    lines = """\
- name: Lines
  object: OrderItem
  sync_level: agreement
  fields:
    accountCode: Order.AccountId
    amount: UnitPrice
    currency: Order.CurrencyIsoCode
    startDate: ServiceDate
    endDate: EndDate
"""
    (problem,) = problems_of(tmp_path, commitments=lines)
    assert "'agreement' needs a header object" in problem and "not OrderItem" in problem
