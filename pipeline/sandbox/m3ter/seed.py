"""The reference configuration the demo org bills against, built from the shared catalogue.

Products, one meter per product, the aggregations the catalogue names (segmented ones carry a
segment for every combination of the demo org's `Region__c`/`Tier__c` values plus `*` wildcard
defaults, so an account whose region or tier is blank still prices), and plan templates. Compound
aggregations, plans, pricings and everything account-side are the pipeline's to create.

Ids are UUIDv5 of the entity and code, so a reset, a fresh state dir and the tests all see the
same ids for the same seeded object.
"""

from __future__ import annotations

import itertools
import uuid
from collections.abc import Iterator

from pipeline.sandbox.catalog import CATALOG, SEGMENT_FIELDS, CatalogProduct, resolved_templates
from pipeline.sandbox.m3ter.entities import WILDCARD
from pipeline.sandbox.m3ter.store import SeedObject

NAMESPACE = uuid.UUID("5b0c3f5e-8d1c-4c52-9a8e-6f3d2b7a9c10")
SEGMENT_CATEGORIES = {"region": "WHERE", "tier": "WHAT"}
AGGREGATION_KINDS = {"storage_gb": "MEAN", "active_users": "MAX"}  # default: SUM


def seed_id(collection: str, code: str) -> str:
    return str(uuid.uuid5(NAMESPACE, f"{collection}/{code}"))


def product_name(code: str) -> str:
    return " ".join("API" if w == "api" else w.capitalize() for w in code.split("_"))


def segments(fields: tuple[str, ...]) -> list[dict[str, str]]:
    """Every combination of the fields' values and `*`, concrete segments first."""
    choices = [(*SEGMENT_FIELDS[name], WILDCARD) for name in fields]
    combos = sorted(itertools.product(*choices), key=lambda combo: combo.count(WILDCARD))
    return [dict(zip(fields, combo, strict=True)) for combo in combos]


def _usage_items(product_code: str) -> list[CatalogProduct]:
    return [
        p for p in CATALOG if p.m3ter_product == product_code and p.aggregation and not p.compound
    ]


def reference_configuration() -> Iterator[SeedObject]:
    products = list(dict.fromkeys(p.m3ter_product for p in CATALOG))
    for code in products:
        yield SeedObject(
            "products", seed_id("products", code), {"code": code, "name": product_name(code)}
        )
    for code in products:
        measures = [
            {"category": "MEASURE", "code": item.aggregation, "name": item.name, "unit": item.unit}
            for item in _usage_items(code)
        ]
        dimensions = [
            {"category": category, "code": name, "name": name.capitalize()}
            for name, category in SEGMENT_CATEGORIES.items()
        ]
        yield SeedObject(
            "meters",
            seed_id("meters", code),
            {
                "code": code,
                "name": f"{product_name(code)} usage",
                "productId": seed_id("products", code),
                "dataFields": [*dimensions, *measures],
                "derivedFields": [],
            },
        )
    for code in products:
        for item in _usage_items(code):
            assert item.aggregation is not None
            body: dict[str, object] = {
                "code": item.aggregation,
                "name": item.name,
                "meterId": seed_id("meters", code),
                "targetField": item.aggregation,
                "aggregation": AGGREGATION_KINDS.get(item.aggregation, "SUM"),
                "rounding": "NONE",
                "quantityPerUnit": 1,
                "unit": item.unit,
                # 0 rather than null when there is no usage, as compound formulas need
                "defaultValue": 0,
            }
            if item.segmented_by:
                body["segmentedFields"] = list(item.segmented_by)
                body["segments"] = segments(item.segmented_by)
            yield SeedObject("aggregations", seed_id("aggregations", item.aggregation), body)
    templates = dict.fromkeys((p.plan_template, p.m3ter_product) for p in CATALOG)
    for template, product in templates:
        yield SeedObject(
            "plantemplates",
            seed_id("plantemplates", template),
            {
                "code": template,
                "name": f"{product_name(product)} Standard",
                "productId": seed_id("products", product),
                "currency": "USD",
                "standingCharge": 0,
                "billFrequency": "MONTHLY",
                "billFrequencyInterval": 1,
            },
        )
    for template, product, frequency, currency in resolved_templates():
        terms = "Annual" if frequency == "ANNUALLY" else "Monthly"
        yield SeedObject(
            "plantemplates",
            seed_id("plantemplates", template),
            {
                "code": template,
                "name": f"{product_name(product)} {terms} {currency}",
                "productId": seed_id("products", product),
                "currency": currency,
                "standingCharge": 0,
                "billFrequency": frequency,
                "billFrequencyInterval": 1,
            },
        )
