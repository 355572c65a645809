"""The demo org and the m3ter sandbox agree on every code the org's products bill against."""

from __future__ import annotations

import datetime as dt
import re

import duckdb
import pytest

from pipeline.sandbox.m3ter.seed import reference_configuration
from pipeline.sandbox.salesforce.generator import generate_org


@pytest.fixture(scope="module")
def products() -> list[tuple]:
    con = duckdb.connect()
    generate_org(con, accounts=3, seed=1, as_of=dt.date(2026, 11, 20))
    return con.execute(
        'SELECT "M3ter_Product_Code__c", "M3ter_Aggregation_Code__c", '
        '"M3ter_Plan_Template_Code__c", "M3ter_Calculation__c" FROM org."Product2"'
    ).fetchall()


@pytest.fixture(scope="module")
def seeded() -> dict[str, set[str]]:
    codes: dict[str, set[str]] = {}
    for item in reference_configuration():
        codes.setdefault(item.collection, set()).add(item.body["code"])
    return codes


def test_every_product_code_exists_in_m3ter(products, seeded):
    assert {p[0] for p in products} <= seeded["products"]


def test_every_plan_template_code_exists_in_m3ter(products, seeded):
    assert {p[2] for p in products} <= seeded["plantemplates"]


def test_usage_products_bill_against_seeded_aggregations(products, seeded):
    assert {p[1] for p in products if p[3] is None} <= seeded["aggregations"]


def test_bundle_formulas_name_only_seeded_aggregations(products, seeded):
    for _, code, _, calculation in products:
        if calculation is not None:
            assert code not in seeded["aggregations"]
            names = set(re.findall(r"[a-z_][a-z0-9_]*", calculation))
            assert names <= seeded["aggregations"], calculation
