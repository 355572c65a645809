"""Product mapping resolution: a product's plan template by billing frequency and currency."""

from __future__ import annotations

from pathlib import Path

import pytest

from pipeline.mapping.files import load_mappings
from pipeline.mapping.metadata import metadata_mapping_set
from pipeline.mapping.products import ProductMapping, parse_rows
from pipeline.mapping.spec import MappingSpecError, record_problems
from tests.mapping.test_compiler import compile_files, one_row, problems_of

PLANS = """\
- name: Lines
  object: OrderItem
  sync_level: line_item
  fields:
    name: Product2.Name
    planTemplateCode: Product2.M3ter_Plan_Template_Code__c
  product_mapping:
    product: Product2.ProductCode
    billing_frequency: Order.Billing_Frequency__c
    currency: Order.CurrencyIsoCode
"""
TABLE = """\
- name: Calls_Annual
  product: API-CALLS
  billing_frequency: Annual
  plan_template: calls_annual
- name: Calls_EUR
  product: API-CALLS
  currency: EUR
  plan_template: calls_eur
- name: Calls_Annual_EUR
  product: API-CALLS
  billing_frequency: Annual
  currency: EUR
  plan_template: calls_annual_eur
"""
LINE = {
    "Product2.Name": "API Calls",
    "Product2.ProductCode": "API-CALLS",
    "Product2.M3ter_Plan_Template_Code__c": "calls_standard",
    "Order.Billing_Frequency__c": "Monthly",
    "Order.CurrencyIsoCode": "USD",
}


def template(tmp_path: Path, **line: str | None) -> str | None:
    (tmp_path / "product_mappings.yaml").write_text(TABLE)
    compiled = compile_files(tmp_path, plans=PLANS)["plans"]
    return one_row(compiled, **{**LINE, **line})["planTemplateCode"]


@pytest.mark.parametrize(
    ("frequency", "currency", "expected"),
    [
        ("Annual", "EUR", "calls_annual_eur"),
        ("Annual", "USD", "calls_annual"),
        ("Monthly", "EUR", "calls_eur"),
        ("annual", "eur", "calls_annual_eur"),  # picklist values compare as SOQL does
        ("Monthly", "USD", "calls_standard"),  # no row: the product's own template
    ],
)
def test_the_most_specific_row_gives_the_plan_template(tmp_path, frequency, currency, expected):
    found = template(
        tmp_path, **{"Order.Billing_Frequency__c": frequency, "Order.CurrencyIsoCode": currency}
    )
    assert found == expected


def test_a_product_the_table_does_not_name_keeps_its_own_template(tmp_path):
    found = template(tmp_path, **{"Product2.ProductCode": "OTHER", "Order.CurrencyIsoCode": "EUR"})
    assert found == "calls_standard"


def test_two_rows_for_one_product_frequency_and_currency_are_an_error(tmp_path):
    (tmp_path / "product_mappings.yaml").write_text(
        TABLE + TABLE.replace("name: Calls_", "name: Again_")
    )
    with pytest.raises(MappingSpecError) as raised:
        load_mappings(tmp_path)
    problems = raised.value.problems
    assert len(problems) == 3
    assert f"{tmp_path / 'product_mappings.yaml'}:14: product mapping 'Again_Annual'" in problems[0]
    assert "as 'Calls_Annual' does; keep one" in problems[0]


def test_a_bad_row_names_the_file_line_row_and_key(tmp_path):
    (tmp_path / "product_mappings.yaml").write_text(
        "- name: Calls\n  product: API-CALLS\n  currency: euro\n"
    )
    with pytest.raises(MappingSpecError) as raised:
        load_mappings(tmp_path)
    path = tmp_path / "product_mappings.yaml"
    assert sorted(raised.value.problems) == [
        f"{path}:1: product mapping 'Calls': currency: 'euro' is not a three-letter ISO currency "
        "code (EUR)",
        f"{path}:1: product mapping 'Calls': plan_template: missing key 'plan_template'",
    ]


def test_product_mapping_is_only_for_plans():
    problems = record_problems(
        "pricings",
        {
            "name": "P",
            "object": "OrderItem",
            "sync_level": "line_item",
            "product_mapping": {"product": "Product2.ProductCode"},
        },
    )
    assert [p.path for p in problems] == [("product_mapping",)]


def test_product_mapping_needs_the_product_field():
    problems = record_problems(
        "plans", {"name": "P", "object": "OrderItem", "product_mapping": {"currency": "X"}}
    )
    assert any("needs 'product'" in p.message for p in problems)


def test_a_product_mapping_field_that_does_not_resolve_is_a_compile_error(tmp_path):
    bad = PLANS.replace("Order.CurrencyIsoCode", "Order.Currency__c")
    (problem,) = problems_of(tmp_path, plans=bad)
    assert "product_mapping key 'currency'" in problem and "Order.Currency__c" in problem


def test_the_table_reads_from_product_mapping_metadata_records():
    record = {
        "DeveloperName": "Calls_EUR",
        "Product_Code__c": "API-CALLS",
        "Billing_Frequency__c": None,
        "Currency__c": "EUR",
        "Plan_Template_Code__c": "calls_eur",
        "Active__c": True,
    }
    mapping_set = metadata_mapping_set({}, [record])
    assert mapping_set.products == (
        ProductMapping("Calls_EUR", "API-CALLS", "calls_eur", None, "EUR"),
    )


def test_an_inactive_row_neither_resolves_nor_clashes():
    rows, problems = parse_rows(
        [
            ("a", {"name": "A", "product": "P", "plan_template": "t1"}),
            ("b", {"name": "B", "product": "P", "plan_template": "t2", "active": False}),
        ]
    )
    assert problems == [] and [r.active for r in rows] == [True, False]
