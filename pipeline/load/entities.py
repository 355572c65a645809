"""How each staged entity meets m3ter: its collection, its references, and how it ends.

The staged tables hold references as codes (`accountCode`); m3ter wants ids (`accountId`). The
dependency order (DESIGN §7) makes every referenced object exist before its referrers load.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final, Literal

from pipeline.mapping.spec import Entity


@dataclass(frozen=True)
class Reference:
    column: str  # staged column holding a code, e.g. accountCode
    field: str  # m3ter field holding the id, e.g. accountId
    collection: str  # where the code is looked up, e.g. accounts


@dataclass(frozen=True)
class LoadEntity:
    entity: Entity
    collection: str
    name: str  # m3ter's singular name, as ExternalMappings spell it
    references: tuple[Reference, ...] = ()
    end_kind: Literal["date", "datetime"] | None = None  # how `endDate` is written, if any
    has_code: bool = True
    # For an object m3ter gives no code: the m3ter fields that identify it. m3sync's staged code
    # still groups its rows, but is never sent, and the object is found by these fields.
    natural_key: tuple[str, ...] = ()

    @property
    def sends_code(self) -> bool:
        return self.has_code and not self.natural_key


def _ref(column: str, collection: str) -> Reference:
    return Reference(column, column.removesuffix("Code") + "Id", collection)


ENTITIES: Final[dict[Entity, LoadEntity]] = {
    "compound_aggregations": LoadEntity(
        "compound_aggregations",
        "compoundaggregations",
        "CompoundAggregation",
        (_ref("productCode", "products"),),
    ),
    "accounts": LoadEntity(
        "accounts", "accounts", "Account", (_ref("parentAccountCode", "accounts"),)
    ),
    "contracts": LoadEntity(
        "contracts",
        "contracts",
        "Contract",
        (_ref("accountCode", "accounts"),),
        end_kind="date",
    ),
    "plans": LoadEntity(
        "plans",
        "plans",
        "Plan",
        (_ref("planTemplateCode", "plantemplates"), _ref("accountCode", "accounts")),
    ),
    "pricings": LoadEntity(
        "pricings",
        "pricings",
        "Pricing",
        (
            _ref("planCode", "plans"),
            _ref("planTemplateCode", "plantemplates"),
            _ref("aggregationCode", "aggregations"),
            _ref("compoundAggregationCode", "compoundaggregations"),
        ),
        end_kind="datetime",
    ),
    "plan_groups": LoadEntity(
        "plan_groups", "plangroups", "PlanGroup", (_ref("accountCode", "accounts"),)
    ),
    # Links have no code and no end: one is found by its group and plan, and stays when its
    # lines are gone (their pricings end; the plan stays in the group, billing nothing).
    "plan_group_links": LoadEntity(
        "plan_group_links",
        "plangrouplinks",
        "PlanGroupLink",
        (_ref("planGroupCode", "plangroups"), _ref("planCode", "plans")),
        natural_key=("planGroupId", "planId"),
    ),
    "account_plans": LoadEntity(
        "account_plans",
        "accountplans",
        "AccountPlan",
        (
            _ref("accountCode", "accounts"),
            _ref("planCode", "plans"),
            _ref("planGroupCode", "plangroups"),
            _ref("contractCode", "contracts"),
        ),
        end_kind="datetime",
    ),
    # Commitments have no code: they are matched through the ExternalMapping written with them.
    "commitments": LoadEntity(
        "commitments",
        "commitments",
        "Commitment",
        (_ref("accountCode", "accounts"), _ref("contractCode", "contracts")),
        end_kind="date",
        has_code=False,
    ),
}
ORDER: Final[tuple[Entity, ...]] = tuple(ENTITIES)

EXTERNAL_SYSTEM: Final = "Salesforce"
# Collections whose lists take a `codes` filter (SDK list params): objects found by code in
# batches. The others are found by id (`load.id_map`) or, for reference data m3sync never writes
# (products, plan templates: a catalogue's worth), listed whole once per run.
CODE_FILTERED: Final[frozenset[str]] = frozenset(
    {"accounts", "contracts", "meters", "aggregations", "compoundaggregations"}
)
REFERENCE_DATA: Final[frozenset[str]] = frozenset({"products", "plantemplates"})
# Fields m3ter answers but never takes: left out of every body sent back.
READ_ONLY: Final[frozenset[str]] = frozenset(
    {"id", "version", "dtCreated", "dtLastModified", "createdBy", "lastModifiedBy"}
)
COMPUTED: Final[dict[Entity, frozenset[str]]] = {
    "plans": frozenset({"productId"}),
    "account_plans": frozenset({"productId"}),
    "pricings": frozenset({"aggregationType", "segmentString"}),
    "commitments": frozenset({"amountSpent"}),
    "compound_aggregations": frozenset({"segments"}),
}
