"""Product mapping resolution: which m3ter plan template a Salesforce product sells under.

As in the connector's product mappings, one Salesforce product maps to different plan templates
by the agreement's billing frequency and/or currency (`mappings/product_mappings.yaml`, or the
org's `ProductMapping__mdt` records). A blank frequency or currency matches any, so it is the
fallback; of the rows that match a line, the most specific wins (a frequency outranks a
currency), and a line no row matches keeps the plan mapping's own `planTemplateCode`.

A plan mapping opts in with `product_mapping`, naming the fields that hold the product code, the
billing frequency and the currency of its rows. The lookup is a correlated subquery over the
table inlined as VALUES, so it runs in the same set-at-a-time statement as the rest.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

from pipeline.warehouse.sql import literal

PRODUCT_MAPPING_TYPE: Final = "ProductMapping__mdt"
PRODUCT_MAPPINGS_FILE: Final = "product_mappings.yaml"
# Row key -> the ProductMapping__mdt field that holds it.
FIELDS: Final[dict[str, str]] = {
    "name": "DeveloperName",
    "product": "Product_Code__c",
    "billing_frequency": "Billing_Frequency__c",
    "currency": "Currency__c",
    "plan_template": "Plan_Template_Code__c",
    "active": "Active__c",
}
REQUIRED: Final = ("name", "product", "plan_template")
# The keys of a plan mapping's `product_mapping`: what each names on the source object.
LOOKUP_KEYS: Final = ("product", "billing_frequency", "currency")
_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_]*")
_CURRENCY = re.compile(r"[A-Z]{3}")


@dataclass(frozen=True)
class ProductMapping:
    """One row of the table: a product, optionally a frequency and a currency, a template."""

    name: str
    product: str
    plan_template: str
    billing_frequency: str | None = None
    currency: str | None = None
    active: bool = True

    def to_dict(self) -> dict[str, Any]:
        values = {key: getattr(self, key) for key in FIELDS}
        return {
            k: v for k, v in values.items() if v is not None and not (k == "active" and v is True)
        }


def row_problems(data: Mapping[str, Any]) -> list[str]:
    """Every rule one row breaks, each starting with the key it is about."""
    problems = [f"{key}: unknown key {key!r}" for key in data if key not in FIELDS]
    for key in REQUIRED:
        if data.get(key) in (None, ""):
            problems.append(f"{key}: missing key {key!r}")
    for key in ("name", "product", "billing_frequency", "currency", "plan_template"):
        value = data.get(key)
        if value is not None and not isinstance(value, str):
            problems.append(f"{key}: {key!r} must be text, not {value!r}")
    name = data.get("name")
    if isinstance(name, str) and name and not _NAME.fullmatch(name):
        problems.append(f"name: {name!r} is not an identifier (a letter, then letters, digits, _)")
    currency = data.get("currency")
    if isinstance(currency, str) and currency and not _CURRENCY.fullmatch(currency):
        problems.append(f"currency: {currency!r} is not a three-letter ISO currency code (EUR)")
    active = data.get("active")
    if active is not None and not isinstance(active, bool):
        problems.append(f"active: 'active' must be true or false, not {active!r}")
    return problems


def parse_rows(
    rows: Iterable[tuple[str, Mapping[str, Any]]],
) -> tuple[tuple[ProductMapping, ...], list[str]]:
    """The table from (where, row) pairs, and every problem, each prefixed by where it is and
    the row's name; two rows for one product, frequency and currency are a problem too."""
    parsed: list[ProductMapping] = []
    problems: list[str] = []
    seen: dict[tuple[str, str, str], str] = {}
    for where, data in rows:
        label = f"{where}: product mapping {data.get('name')!r}"
        found = row_problems(data)
        if found:
            problems += [f"{label}: {p}" for p in found]
            continue
        values = {k: (None if data.get(k) == "" else data.get(k)) for k in FIELDS}
        row = ProductMapping(**{k: v for k, v in values.items() if v is not None})
        if row.name in {p.name for p in parsed}:
            problems.append(f"{label}: name: duplicate product mapping name {row.name!r}")
        key = (row.product, (row.billing_frequency or "").lower(), row.currency or "")
        if row.active and key in seen:
            problems.append(
                f"{label}: also maps product {row.product!r} for billing frequency "
                f"{row.billing_frequency or '(any)'} and currency {row.currency or '(any)'}, as "
                f"{seen[key]!r} does; keep one"
            )
        if row.active:
            seen.setdefault(key, row.name)
        parsed.append(row)
    return tuple(parsed), problems


def from_metadata(
    records: Iterable[Mapping[str, Any]],
) -> tuple[tuple[ProductMapping, ...], list[str]]:
    """The table from `ProductMapping__mdt` records as simple-salesforce returns them."""
    rows = []
    for index, record in enumerate(records, start=1):
        name = record.get("DeveloperName") or f"#{index}"
        rows.append(
            (
                f"{PRODUCT_MAPPING_TYPE}.{name}",
                {key: record.get(field) for key, field in FIELDS.items()},
            )
        )
    return parse_rows(rows)


def metadata_query() -> str:
    return f"SELECT {', '.join(FIELDS.values())} FROM {PRODUCT_MAPPING_TYPE} ORDER BY DeveloperName"


def lookup_problems(value: Any) -> list[str]:
    """What is wrong with a plan mapping's `product_mapping` (product field -> path)."""
    if value is None:
        return []
    if not isinstance(value, Mapping):
        return ["'product_mapping' must map product, billing_frequency and currency to fields"]
    problems = [
        f"product_mapping key {key!r} is not one of {', '.join(LOOKUP_KEYS)}"
        for key in value
        if key not in LOOKUP_KEYS
    ]
    if "product" not in value:
        problems.append("product_mapping needs 'product' (the field holding the product code)")
    problems += [
        f"product_mapping key {key!r}: value must be a Salesforce field or relationship path"
        for key, path in value.items()
        if not isinstance(path, str)
    ]
    return problems


def resolution_sql(
    table: Sequence[ProductMapping], columns: Mapping[str, str], fallback: str
) -> str:
    """SQL: the plan template of the most specific active row matching the row's product,
    billing frequency and currency (`columns`: lookup key -> SQL text expression), else
    `fallback`."""
    rows = [row for row in table if row.active]
    if not rows:
        return fallback
    values = ", ".join(
        f"({literal(r.product)}, {_text(r.billing_frequency)}, {_text(r.currency)}, "
        f"{literal(r.plan_template)})"
        for r in rows
    )
    product = columns["product"]
    frequency = columns.get("billing_frequency", "NULL")
    currency = columns.get("currency", "NULL")
    # Picklist values compare as SOQL compares text: without regard to case.
    return (
        "coalesce((SELECT arg_max(t.template, (t.frequency IS NOT NULL)::INTEGER * 2 + "
        f"(t.currency IS NOT NULL)::INTEGER) FROM (VALUES {values}) "
        "AS t(product, frequency, currency, template) "
        f"WHERE lower(t.product) = lower({product}) "
        f"AND (t.frequency IS NULL OR lower(t.frequency) = lower({frequency})) "
        f"AND (t.currency IS NULL OR upper(t.currency) = upper({currency}))), {fallback})"
    )


def _text(value: str | None) -> str:
    return "NULL::VARCHAR" if value is None else literal(value)
