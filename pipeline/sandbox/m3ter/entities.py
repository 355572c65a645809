"""The config entities the m3ter sandbox serves: their fields, types and limits, as declared data.

One declaration per entity drives body validation, the full-replace update (a field not sent is a
field cleared), reverse references (what blocks a delete) and the list filters, so the rules live
in one place and follow `shared/reference/m3ter-api.md` §3 field by field.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

# m3ter's code pattern (Java regex in the API reference) in Python: no control characters, no
# whitespace except inner spaces.
CODE_PATTERN = re.compile(
    r"^(?:[^\x00-\x1f\x7f\s]|[^\x00-\x1f\x7f\s](?:[^\x00-\x1f\x7f\s]| )*[^\x00-\x1f\x7f\s])\Z"
)
# [assume: pessimistic] m3ter never published the pattern of aggregation codes. Codes of simple and
# compound aggregations alike are named inside calculations, so they must read as identifiers: a
# letter or `_` first, then letters, digits and `_`, of either case (real orgs hold codes such as
# `apiCalls`). A code that defaults to a Salesforce record Id (digit first) is refused.
AGGREGATION_CODE_PATTERN = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,79}\Z")
# Meter data and derived field codes: letters, digits, `_` and `$`, not starting with a digit.
FIELD_CODE_PATTERN = re.compile(r"^[A-Za-z_$][A-Za-z0-9_$]{0,79}\Z")
# Currency codes are three upper-case letters (ISO 4217 form), and one of the org's currencies
# (`org.py`): m3ter refuses a currency the organization has not set up.
CURRENCY_PATTERN = re.compile(r"^[A-Z]{3}\Z")
# [assume: pessimistic] m3ter's e-mail check is not documented: take a strict validator's, an ASCII
# local part and a dotted host name, so an address a looser check lets through is refused here.
EMAIL_PATTERN = re.compile(
    r"^[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]+@[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?"
    r"(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)+\Z"
)

# Marks a field whose unset value follows from its kind (`Field.unset`).
ECHO_BY_KIND: Any = object()
_KIND_ECHO: dict[str, Any] = {
    "string": "",
    "bool": False,
    "custom_fields": {},
    "string_map": {},
    "string_list": [],
    "segments": [],
    "uuid_list": [],
    "enum_list": [],
    "object_list": [],
}

KINDS = frozenset(
    {
        "string",
        "uuid",
        "uuid_list",
        "int",
        "number",
        "bool",
        "enum",
        "enum_list",
        "date",
        "datetime",
        "custom_fields",
        "string_map",
        "string_list",
        "segments",
        "object",
        "object_list",
    }
)


@dataclass(frozen=True)
class Field:
    """One body field: its JSON name, kind, and the limits m3ter documents for it."""

    name: str
    kind: str
    required: bool = False
    min_length: int | None = None
    max_length: int | None = None
    minimum: float | None = None
    maximum: float | None = None
    exclusive_minimum: bool = False
    choices: tuple[str, ...] = ()
    ref: str | None = None  # collection a uuid (or uuid list) refers to
    pattern: re.Pattern[str] | None = None
    pattern_rule: str = ""  # how the pattern reads in an error message
    items: tuple[Field, ...] = ()  # members of an object or of each object in a list
    min_items: int | None = None
    max_items: int | None = None
    default: Any = None  # value stored when the field is omitted (on create and on PUT)
    blocks_delete: bool = True  # a reference that keeps its target from being deleted
    echo: Any = ECHO_BY_KIND  # what an answer shows for the field when it holds no value
    org_currency: bool = False  # must be one of the organization's currencies

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"unknown field kind {self.kind!r} for {self.name}")

    @property
    def unset(self) -> Any:
        """The value an answer carries for this field when it was never given.

        [assume: pessimistic] m3ter's answers carry every field of its response model, never
        given ones included, as the Terraform providers and SDK models show: `""` for text, the
        documented default or `false` for a flag, `{}` for custom fields and maps, `[]` for lists;
        numbers, ids, dates and enums without a default come back as `null`.
        """
        if self.echo is not ECHO_BY_KIND:
            return self.echo
        if self.default is not None:
            return self.default
        return _KIND_ECHO.get(self.kind)


@dataclass(frozen=True)
class Entity:
    """One m3ter config entity type, served at `/organizations/{orgId}/<collection>`."""

    collection: str
    name: str  # singular, as m3ter names it (also the ExternalMapping `m3terEntity` value)
    fields: tuple[Field, ...]
    # list filters: query parameter -> field it matches (uuid and code filters take many values)
    filters: dict[str, str] = field(default_factory=dict)
    computed: tuple[str, ...] = ()  # read-only response fields derived from other objects
    # m3ter documents the code as unique ("a unique short code") for most entities, but not for
    # every one (a Contract's is only "the short code of the Contract"): only these refuse one.
    unique_code: bool = True

    @cached_property
    def by_name(self) -> dict[str, Field]:
        return {f.name: f for f in self.fields}

    @cached_property
    def references(self) -> tuple[Field, ...]:
        """Top-level fields that point at another object by id."""
        return tuple(f for f in self.fields if f.ref is not None)


def _code(
    required: bool = False,
    pattern: re.Pattern[str] = CODE_PATTERN,
    rule: str = "must have no control characters and no leading, trailing or inner "
    "whitespace other than single spaces",
) -> Field:
    return Field(
        "code",
        "string",
        required=required,
        min_length=1,
        max_length=80,
        pattern=pattern,
        pattern_rule=rule,
    )


def _aggregation_code() -> Field:
    return _code(
        pattern=AGGREGATION_CODE_PATTERN,
        rule="must be letters, digits and '_', not starting with a digit (up to 80 characters)",
    )


def _name() -> Field:
    return Field("name", "string", required=True, min_length=1, max_length=200)


def _text(name: str, max_length: int | None = None) -> Field:
    return Field(name, "string", max_length=max_length)


def _ref(name: str, to: str, required: bool = False, blocks_delete: bool = True) -> Field:
    return Field(name, "uuid", required=required, ref=to, blocks_delete=blocks_delete)


def _number(
    name: str,
    required: bool = False,
    minimum: float | None = None,
    exclusive: bool = False,
    echo: Any = ECHO_BY_KIND,
) -> Field:
    return Field(
        name, "number", required=required, minimum=minimum, exclusive_minimum=exclusive, echo=echo
    )


def _int(name: str, minimum: int | None = None, maximum: int | None = None) -> Field:
    return Field(name, "int", minimum=minimum, maximum=maximum)


def _bool(name: str, default: bool | None = None) -> Field:
    return Field(name, "bool", default=default)


def _enum(name: str, *choices: str, required: bool = False, default: str | None = None) -> Field:
    return Field(name, "enum", required=required, choices=choices, default=default)


CUSTOM_FIELDS = Field("customFields", "custom_fields", default={})
ROUNDING = ("UP", "DOWN", "NEAREST", "NONE")
CHILD_BILLING_MODES = ("PARENT_SUMMARY", "PARENT_BREAKDOWN", "CHILD")
NUMERIC_CATEGORIES = ("MEASURE", "INCOME", "COST")
STRING_CATEGORIES = ("WHO", "WHAT", "WHERE", "OTHER", "METADATA")
# Only these string categories can be segmented on (m3ter: Who, What and Where data fields).
SEGMENTABLE_CATEGORIES = ("WHO", "WHAT", "WHERE")
WILDCARD = "*"

_METER_FIELD_MEMBERS = (
    _enum("category", *STRING_CATEGORIES, *NUMERIC_CATEGORIES, required=True),
    Field(
        "code",
        "string",
        required=True,
        min_length=1,
        max_length=80,
        pattern=FIELD_CODE_PATTERN,
        pattern_rule="must be letters, digits, '_' or '$' and not start with a digit",
    ),
    _name(),
    _text("unit", 50),
)
_BAND = (
    _number("lowerLimit", required=True, minimum=0),
    _number("fixedPrice", required=True),
    _number("unitPrice", required=True),
    _text("id"),
    _text("creditTypeId"),
)

ACCOUNT = Entity(
    "accounts",
    "Account",
    (
        _code(required=True),
        _name(),
        Field(
            "emailAddress",
            "string",
            required=True,
            min_length=1,
            max_length=200,
            pattern=EMAIL_PATTERN,
            pattern_rule="must be an e-mail address",
        ),
        Field(
            "address",
            "object",
            items=tuple(
                _text(n)
                for n in (
                    "addressLine1",
                    "addressLine2",
                    "addressLine3",
                    "addressLine4",
                    "locality",
                    "region",
                    "postCode",
                    "country",
                )
            ),
        ),
        Field(
            "currency",
            "string",
            pattern=CURRENCY_PATTERN,
            pattern_rule="must be a three-letter currency code",
            org_currency=True,
        ),
        Field("billEpoch", "date"),
        _int("daysBeforeBillDue", minimum=0),
        _ref("parentAccountId", "accounts"),
        _text("purchaseOrderNumber", 100),
        Field("creditApplicationOrder", "enum_list", choices=("PREPAYMENT", "BALANCE")),
        _enum("autoGenerateStatementMode", "NONE", "JSON", "JSON_AND_CSV"),
        _text("statementDefinitionId"),
        CUSTOM_FIELDS,
    ),
    filters={"ids": "id", "codes": "code"},
)

CONTRACT = Entity(
    "contracts",
    "Contract",
    (
        _ref("accountId", "accounts", required=True),
        _name(),
        Field("startDate", "date", required=True),
        Field("endDate", "date", required=True),
        _code(),
        _text("description", 500),
        _text("purchaseOrderNumber", 100),
        _bool("applyContractPeriodLimits", default=False),
        _text("billGroupingKeyId"),
        Field(
            "usageFilters",
            "object_list",
            items=(
                Field("dimensionCode", "string", required=True, min_length=1),
                _enum("mode", "INCLUDE", "EXCLUDE", required=True),
                Field("value", "string", required=True),
            ),
        ),
        CUSTOM_FIELDS,
    ),
    filters={"ids": "id", "codes": "code", "accountId": "accountId"},
    unique_code=False,
)

PRODUCT = Entity(
    "products",
    "Product",
    (
        _name(),
        _code(required=True),
        CUSTOM_FIELDS,
    ),
    filters={"ids": "id"},
)

METER = Entity(
    "meters",
    "Meter",
    (
        _code(required=True),
        _name(),
        Field(
            "dataFields",
            "object_list",
            required=True,
            min_items=1,
            max_items=15,
            items=_METER_FIELD_MEMBERS,
        ),
        Field(
            "derivedFields",
            "object_list",
            required=True,
            min_items=0,
            max_items=15,
            items=(
                *_METER_FIELD_MEMBERS,
                Field("calculation", "string", required=True, min_length=1),
            ),
        ),
        _ref("productId", "products"),
        _text("groupId"),
        CUSTOM_FIELDS,
    ),
    filters={"ids": "id", "codes": "code", "productId": "productId"},
)

AGGREGATION = Entity(
    "aggregations",
    "Aggregation",
    (
        _name(),
        _ref("meterId", "meters", required=True),
        Field("targetField", "string", required=True, min_length=1, max_length=80),
        _enum(
            "aggregation",
            "SUM",
            "MIN",
            "MAX",
            "COUNT",
            "LATEST",
            "MEAN",
            "UNIQUE",
            "CUSTOM_SQL",
            required=True,
        ),
        _enum("rounding", *ROUNDING, required=True),
        _number("quantityPerUnit", required=True, minimum=0, exclusive=True),
        Field("unit", "string", required=True, min_length=1, max_length=50),
        _aggregation_code(),
        _number("defaultValue"),
        Field("segmentedFields", "string_list"),
        Field("segments", "segments"),
        _ref("accountingProductId", "products"),
        _text("customSql"),
        CUSTOM_FIELDS,
    ),
    filters={"ids": "id", "codes": "code", "productId": "productId"},
)

COMPOUND_AGGREGATION = Entity(
    "compoundaggregations",
    "CompoundAggregation",
    (
        _name(),
        Field("calculation", "string", required=True, min_length=1),
        _number("quantityPerUnit", required=True, minimum=0, exclusive=True),
        _enum("rounding", *ROUNDING, required=True),
        Field("unit", "string", required=True, min_length=1, max_length=50),
        _aggregation_code(),
        _ref("productId", "products"),
        _bool("evaluateNullAggregations", default=False),
        _ref("accountingProductId", "products"),
        CUSTOM_FIELDS,
    ),
    filters={"ids": "id", "codes": "code", "productId": "productId"},
    computed=("segments",),
)

PLAN_TEMPLATE = Entity(
    "plantemplates",
    "PlanTemplate",
    (
        _ref("productId", "products", required=True),
        _name(),
        Field(
            "currency",
            "string",
            required=True,
            pattern=CURRENCY_PATTERN,
            pattern_rule="must be a three-letter currency code",
            org_currency=True,
        ),
        _number("standingCharge", required=True, minimum=0),
        _enum(
            "billFrequency",
            "DAILY",
            "WEEKLY",
            "MONTHLY",
            "ANNUALLY",
            "AD_HOC",
            "MIXED",
            required=True,
        ),
        _int("billFrequencyInterval", 1, 365),
        _code(),
        _int("standingChargeInterval", 1, 365),
        _int("standingChargeOffset", 0, 364),
        _number("minimumSpend", minimum=0),
        _bool("standingChargeBillInAdvance"),
        _bool("minimumSpendBillInAdvance"),
        _text("standingChargeDescription"),
        _text("minimumSpendDescription"),
        _int("ordinal"),
        CUSTOM_FIELDS,
    ),
    filters={"ids": "id", "productId": "productId"},
)

# A plan's and a plan group's own standing charge and minimum spend.
_CHARGES = (
    _number("standingCharge", minimum=0),
    _number("minimumSpend", minimum=0),
    _bool("standingChargeBillInAdvance"),
    _bool("minimumSpendBillInAdvance"),
    _text("standingChargeDescription", 200),
    _text("minimumSpendDescription", 200),
    _ref("standingChargeAccountingProductId", "products"),
    _ref("minimumSpendAccountingProductId", "products"),
)

PLAN = Entity(
    "plans",
    "Plan",
    (
        _ref("planTemplateId", "plantemplates", required=True),
        _name(),
        _code(required=True),
        _ref("accountId", "accounts"),
        _bool("bespoke"),
        *_CHARGES,
        _int("ordinal"),
        CUSTOM_FIELDS,
    ),
    filters={"ids": "id", "productId": "productId", "accountId": "accountId"},
    computed=("productId",),
)

PRICING = Entity(
    "pricings",
    "Pricing",
    (
        Field("startDate", "datetime", required=True),
        # [assume: pessimistic] at least one band: the list is required, its minimum size is not
        # documented.
        Field("pricingBands", "object_list", required=True, min_items=1, items=_BAND),
        _ref("planId", "plans"),
        _ref("planTemplateId", "plantemplates"),
        _ref("aggregationId", "aggregations"),
        _ref("compoundAggregationId", "compoundaggregations"),
        Field("endDate", "datetime"),
        Field("segment", "string_map"),
        _enum("type", "DEBIT", "PRODUCT_CREDIT", "GLOBAL_CREDIT", default="DEBIT"),
        _bool("cumulative", default=False),
        _bool("tiersSpanPlan", default=False),
        Field("overagePricingBands", "object_list", items=_BAND),
        # [assume: pessimistic] a pricing's minimum spend not given is answered as 0
        _number("minimumSpend", minimum=0, echo=0),
        _bool("minimumSpendBillInAdvance"),
        _text("minimumSpendDescription"),
        _code(),
        _text("description", 200),
        _ref("accountingProductId", "products"),
    ),
    filters={
        "ids": "id",
        "planId": "planId",
        "planTemplateId": "planTemplateId",
        "aggregationId": "aggregationId",
    },
    computed=("aggregationType", "segmentString"),
)

# [assume: pessimistic] a PlanGroup's code is only "the short code representing the PlanGroup":
# it is not documented as unique, and the list has no `codes` filter (SDK list params: `ids`,
# `accountId`), so a client finds a group by listing an account's groups or the whole
# organization's.
PLAN_GROUP = Entity(
    "plangroups",
    "PlanGroup",
    (
        _name(),
        Field(
            "currency",
            "string",
            required=True,
            pattern=CURRENCY_PATTERN,
            pattern_rule="must be a three-letter currency code",
            org_currency=True,
        ),
        _ref("accountId", "accounts"),
        _code(),
        *_CHARGES,
        CUSTOM_FIELDS,
    ),
    filters={"ids": "id", "accountId": "accountId"},
    unique_code=False,
)

# A PlanGroupLink has no code, no dates and no custom fields: it only joins a plan to a group.
PLAN_GROUP_LINK = Entity(
    "plangrouplinks",
    "PlanGroupLink",
    (
        _ref("planGroupId", "plangroups", required=True),
        _ref("planId", "plans", required=True),
    ),
    filters={"ids": "id", "plan": "planId", "planGroup": "planGroupId"},
    unique_code=False,
)

ACCOUNT_PLAN = Entity(
    "accountplans",
    "AccountPlan",
    (
        _ref("accountId", "accounts", required=True),
        Field("startDate", "datetime", required=True),
        _ref("planId", "plans"),
        _ref("planGroupId", "plangroups"),
        Field("endDate", "datetime"),
        _ref("contractId", "contracts"),
        _enum("childBillingMode", *CHILD_BILLING_MODES),
        _code(),
        Field("billEpoch", "date"),
        CUSTOM_FIELDS,
    ),
    filters={"ids": "id", "account": "accountId", "plan": "planId", "contract": "contractId"},
    computed=("productId",),
)

COMMITMENT = Entity(
    "commitments",
    "Commitment",
    (
        _ref("accountId", "accounts", required=True),
        _number("amount", required=True, minimum=0, exclusive=True),
        Field("currency", "string", required=True, min_length=1, org_currency=True),
        Field("startDate", "date", required=True),
        Field("endDate", "date", required=True),
        # [assume: pessimistic] amounts not given are answered as 0, not null
        _number("amountFirstBill", minimum=0, echo=0),
        _number("amountPrePaid", minimum=0, echo=0),
        _ref("billingPlanId", "plans"),
        Field(
            "feeDates",
            "object_list",
            items=(
                Field("date", "date", required=True),
                _number("amount", required=True),
                Field("servicePeriodStartDate", "datetime", required=True),
                Field("servicePeriodEndDate", "datetime", required=True),
            ),
        ),
        _int("billingInterval", 1, 365),
        _int("billingOffset", 0, 364),
        Field("billEpoch", "date"),
        Field("productIds", "uuid_list", ref="products", max_items=100),
        Field(
            "lineItemTypes",
            "enum_list",
            choices=(
                "STANDING_CHARGE",
                "USAGE",
                "MINIMUM_SPEND",
                "COUNTER_RUNNING_TOTAL_CHARGE",
                "COUNTER_ADJUSTMENT_DEBIT",
            ),
        ),
        _number("overageSurchargePercent", echo=0),
        _bool("separateOverageUsage"),
        _ref("contractId", "contracts"),
        _enum("childBillingMode", *CHILD_BILLING_MODES),
        _bool("commitmentFeeBillInAdvance"),
        _text("commitmentFeeDescription"),
        _text("commitmentUsageDescription"),
        _text("overageDescription"),
        _ref("accountingProductId", "products"),
        _ref("feesAccountingProductId", "products"),
        _ref("drawdownsAccountingProductId", "products"),
    ),
    filters={"ids": "id", "accountId": "accountId", "contractId": "contractId"},
    computed=("amountSpent",),
)

EXTERNAL_MAPPING = Entity(
    "externalmappings",
    "ExternalMapping",
    (
        Field("externalSystem", "string", required=True, min_length=1, max_length=200),
        Field("externalTable", "string", required=True, min_length=1, max_length=200),
        Field("externalId", "string", required=True, min_length=1, max_length=200),
        Field("m3terEntity", "string", required=True, min_length=1),
        # The target collection depends on `m3terEntity`; the rule checks it. A mapping never keeps
        # its m3ter object from being deleted ([assume: pessimistic]: m3ter leaves such mappings
        # dangling, and a client must pass over one that points nowhere).
        Field("m3terId", "uuid", required=True),
        _text("integrationConfigId"),
    ),
    filters={
        "externalSystemId": "externalSystem",
        "integrationConfigId": "integrationConfigId",
        "m3terIds": "m3terId",
    },
)

ENTITIES: dict[str, Entity] = {
    e.collection: e
    for e in (
        ACCOUNT,
        CONTRACT,
        PRODUCT,
        METER,
        AGGREGATION,
        COMPOUND_AGGREGATION,
        PLAN_TEMPLATE,
        PLAN,
        PRICING,
        PLAN_GROUP,
        PLAN_GROUP_LINK,
        ACCOUNT_PLAN,
        COMMITMENT,
        EXTERNAL_MAPPING,
    )
}
BY_NAME: dict[str, Entity] = {e.name: e for e in ENTITIES.values()}
