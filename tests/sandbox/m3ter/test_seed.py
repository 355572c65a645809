"""The seeded reference configuration matches the catalogue the demo org is generated from."""

from __future__ import annotations

import itertools
from pathlib import Path

from pipeline.sandbox.catalog import CATALOG, resolved_templates
from pipeline.sandbox.m3ter.seed import reference_configuration, seed_id, segments
from pipeline.sandbox.m3ter.store import Store
from pipeline.sandbox.m3ter.validation import calculation_references
from pipeline.sandbox.salesforce.schema import REGIONS, TIERS


def _seeded(tmp_path: Path) -> dict[str, list[dict]]:
    store = Store(tmp_path / "state.jsonl", actor="tester", seed=reference_configuration)
    try:
        return store.export()["entities"]
    finally:
        store.close()


def test_every_catalogue_code_is_seeded(tmp_path: Path):
    seeded = _seeded(tmp_path)
    codes = {c: {o.get("code") for o in objs} for c, objs in seeded.items()}
    assert {p.m3ter_product for p in CATALOG} == codes["products"]
    resolved = {template for template, *_ in resolved_templates()}
    assert {p.plan_template for p in CATALOG} | resolved == codes["plantemplates"]
    assert {p.aggregation for p in CATALOG if p.aggregation} == codes["aggregations"]


def test_resolved_plan_templates_bill_annually_or_in_euros(tmp_path: Path):
    templates = {o["code"]: o for o in _seeded(tmp_path)["plantemplates"]}
    assert templates["api_platform_annual"]["billFrequency"] == "ANNUALLY"
    assert templates["api_platform_eur"]["currency"] == "EUR"
    annual_eur = templates["compute_annual_eur"]
    assert (annual_eur["billFrequency"], annual_eur["currency"]) == ("ANNUALLY", "EUR")
    assert annual_eur["productId"] == templates["compute_standard"]["productId"]


def test_compound_formulas_of_the_catalogue_name_seeded_aggregations(tmp_path: Path):
    aggregations = {o["code"] for o in _seeded(tmp_path)["aggregations"]}
    for product in CATALOG:
        if product.calculation:
            assert set(calculation_references(product.calculation)) <= aggregations


def test_a_region_and_tier_aggregation_has_every_combination_and_wildcard(tmp_path: Path):
    api_calls = next(a for a in _seeded(tmp_path)["aggregations"] if a["code"] == "api_calls")
    assert api_calls["segmentedFields"] == ["region", "tier"]
    pairs = {(s["region"], s["tier"]) for s in api_calls["segments"]}
    assert pairs == set(itertools.product((*REGIONS, "*"), (*TIERS, "*")))


def test_concrete_segments_come_before_wildcards():
    listed = segments(("region",))
    assert listed == [{"region": r} for r in REGIONS] + [{"region": "*"}]


def test_seeded_ids_are_the_same_in_every_state_dir(tmp_path: Path):
    first = _seeded(tmp_path / "a")
    second = _seeded(tmp_path / "b")
    assert [p["id"] for p in first["products"]] == [p["id"] for p in second["products"]]
    assert first["products"][0]["id"] == seed_id("products", first["products"][0]["code"])


def test_each_meter_belongs_to_its_product_and_measures_its_aggregations(tmp_path: Path):
    seeded = _seeded(tmp_path)
    for meter in seeded["meters"]:
        assert meter["productId"] == seed_id("products", meter["code"])
    for aggregation in seeded["aggregations"]:
        meter = next(m for m in seeded["meters"] if m["id"] == aggregation["meterId"])
        assert aggregation["targetField"] in {f["code"] for f in meter["dataFields"]}
