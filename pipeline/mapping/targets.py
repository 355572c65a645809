"""The m3ter fields a mapping may set, per entity, with the wire form each one takes.

This is the staged tables' shape: one column per target, named as in m3ter's Config API
(camelCase; `address.locality` for a nested field), with references to other m3ter objects held
as codes (`accountCode`, resolved to `accountId` at load). Two m3ter conventions decide a
target's `kind` (reference/m3ter-api.md §2):

- dates: `date` fields are `YYYY-MM-DD`; `datetime` fields are RFC 3339 in UTC; an `*_end`
  kind is an exclusive end, so an inclusive Salesforce end date moves to the next day;
- prices: a pricing's `unitPrice` / `fixedPrice` are not m3ter fields but one pricing band
  (`pricingBands: [{lowerLimit: 0, fixedPrice, unitPrice}]`), built when the row is staged.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final, Literal

from pipeline.mapping.spec import Entity

Kind = Literal[
    "text",  # free text
    "code",  # the object's own code: m3ter's code pattern, at most 80 characters
    "reference",  # the code of another m3ter object
    "currency",  # ISO 4217, three capital letters
    "date",
    "date_end",  # exclusive end date
    "datetime",
    "datetime_end",  # exclusive end date-time
    "number",
    "integer",
    "boolean",
    "price",  # a number that becomes part of the pricing band
]
DATE_KINDS: Final = frozenset({"date", "date_end"})
DATETIME_KINDS: Final = frozenset({"datetime", "datetime_end"})
TEXT_KINDS: Final = frozenset({"text", "code", "reference", "currency"})
NUMBER_KINDS: Final = frozenset({"number", "price"})

# DuckDB type of a staged column, per kind: dates stay in their wire text so that what is
# staged is exactly what is sent, and compares in order (every value is in one format).
DUCKDB_TYPES: Final[dict[Kind, str]] = {
    "text": "VARCHAR",
    "code": "VARCHAR",
    "reference": "VARCHAR",
    "currency": "VARCHAR",
    "date": "VARCHAR",
    "date_end": "VARCHAR",
    "datetime": "VARCHAR",
    "datetime_end": "VARCHAR",
    "number": "DOUBLE",
    "integer": "BIGINT",
    "boolean": "BOOLEAN",
    "price": "DOUBLE",
}


@dataclass(frozen=True)
class Target:
    """One m3ter field a mapping can fill; `references` names the entity a code points at."""

    name: str
    kind: Kind
    required: bool = False
    references: str | None = None
    choices: tuple[str, ...] = ()

    @property
    def duckdb_type(self) -> str:
        return DUCKDB_TYPES[self.kind]


def _ref(name: str, entity: str, *, required: bool = False) -> Target:
    return Target(name, "reference", required=required, references=entity)


CODE = Target("code", "code", required=True)
_ADDRESS = tuple(
    Target(f"address.{part}", "text")
    for part in (
        "addressLine1",
        "addressLine2",
        "addressLine3",
        "addressLine4",
        "locality",
        "region",
        "postCode",
        "country",
    )
)

# A plan's and a plan group's own standing charge and minimum spend.
_CHARGES = (
    Target("standingCharge", "number"),
    Target("minimumSpend", "number"),
    Target("standingChargeDescription", "text"),
    Target("minimumSpendDescription", "text"),
)

TARGETS: Final[dict[Entity, tuple[Target, ...]]] = {
    "accounts": (
        CODE,
        Target("name", "text", required=True),
        Target("emailAddress", "text", required=True),
        Target("currency", "currency"),
        *_ADDRESS,
        Target("billEpoch", "date"),
        Target("daysBeforeBillDue", "integer"),
        Target("purchaseOrderNumber", "text"),
        _ref("parentAccountCode", "accounts"),
    ),
    "contracts": (
        CODE,
        Target("name", "text", required=True),
        _ref("accountCode", "accounts", required=True),
        Target("startDate", "date", required=True),
        Target("endDate", "date_end", required=True),
        Target("description", "text"),
        Target("purchaseOrderNumber", "text"),
    ),
    "plans": (
        CODE,
        Target("name", "text", required=True),
        _ref("planTemplateCode", "plan_templates", required=True),
        _ref("accountCode", "accounts"),
        Target("bespoke", "boolean"),
        *_CHARGES,
    ),
    "pricings": (
        CODE,
        _ref("planCode", "plans"),
        _ref("planTemplateCode", "plan_templates"),
        _ref("aggregationCode", "aggregations"),
        _ref("compoundAggregationCode", "compound_aggregations"),
        Target("startDate", "datetime", required=True),
        Target("endDate", "datetime_end"),
        Target("unitPrice", "price"),
        Target("fixedPrice", "price"),
        Target("type", "text", choices=("DEBIT", "PRODUCT_CREDIT", "GLOBAL_CREDIT")),
        Target("cumulative", "boolean"),
        Target("tiersSpanPlan", "boolean"),
        Target("minimumSpend", "number"),
        Target("description", "text"),
    ),
    # A whole agreement as one bundle: its plans are linked to the group, and one account plan
    # on the group (`planGroupCode`) attaches them all.
    "plan_groups": (
        CODE,
        Target("name", "text", required=True),
        Target("currency", "currency", required=True),
        _ref("accountCode", "accounts"),
        *_CHARGES,
        Target("standingChargeBillInAdvance", "boolean"),
        Target("minimumSpendBillInAdvance", "boolean"),
    ),
    # A PlanGroupLink has no code in m3ter: `code` is m3sync's key for it (the rows that make
    # one link), never sent; m3ter's link is found by its group and plan.
    "plan_group_links": (
        CODE,
        _ref("planGroupCode", "plan_groups", required=True),
        _ref("planCode", "plans", required=True),
    ),
    "account_plans": (
        CODE,
        _ref("accountCode", "accounts", required=True),
        _ref("planCode", "plans"),
        _ref("planGroupCode", "plan_groups"),
        _ref("contractCode", "contracts"),
        Target("startDate", "datetime", required=True),
        Target("endDate", "datetime_end"),
        Target("billEpoch", "date"),
        Target("childBillingMode", "text", choices=("PARENT_SUMMARY", "PARENT_BREAKDOWN", "CHILD")),
    ),
    # Commitments have no code in m3ter: the load matches them through ExternalMappings.
    "commitments": (
        _ref("accountCode", "accounts", required=True),
        _ref("contractCode", "contracts"),
        Target("amount", "number", required=True),
        Target("currency", "currency", required=True),
        Target("startDate", "date", required=True),
        Target("endDate", "date_end", required=True),
        Target("amountFirstBill", "number"),
        Target("amountPrePaid", "number"),
        Target("billEpoch", "date"),
        Target("billingInterval", "integer"),
        Target("billingOffset", "integer"),
        Target("commitmentFeeBillInAdvance", "boolean"),
        Target("commitmentFeeDescription", "text"),
        Target("commitmentUsageDescription", "text"),
        Target("overageSurchargePercent", "number"),
    ),
    "compound_aggregations": (
        CODE,
        Target("name", "text", required=True),
        Target("calculation", "text", required=True),
        Target("quantityPerUnit", "number", required=True),
        Target("rounding", "text", required=True, choices=("UP", "DOWN", "NEAREST", "NONE")),
        Target("unit", "text", required=True),
        _ref("productCode", "products"),
        Target("evaluateNullAggregations", "boolean"),
    ),
}

# Entities whose m3ter objects carry `customFields` (Pricing and Commitment do not).
CUSTOM_FIELD_ENTITIES: Final[frozenset[Entity]] = frozenset(
    {"accounts", "contracts", "plans", "plan_groups", "account_plans", "compound_aggregations"}
)


def targets(entity: Entity) -> dict[str, Target]:
    return {target.name: target for target in TARGETS[entity]}


def has_code(entity: Entity) -> bool:
    return "code" in targets(entity)
