"""The Salesforce objects m3sync extracts.

Which fields an object brings is the compiled mappings' business (`CompiledSet.fields`): what
the mappings read, relationship paths included. The field plan always adds `Id`,
`SystemModstamp`, `IsDeleted` (where the object has one) and the stamps of the parents that
relationship paths read through.
"""

from __future__ import annotations

import re
from dataclasses import dataclass


@dataclass(frozen=True)
class SourceObject:
    """One extracted object: its API name, its raw table, and how it is read."""

    name: str
    fields: tuple[str, ...] = ()  # always selected, whatever the mappings read
    partitioned: bool = True
    # Whole-object reads of custom metadata take every field describe lists.
    all_fields: bool = False

    @property
    def table(self) -> str:
        """`OrderItem` -> `order_item`, `PricingMapping__mdt` -> `pricing_mapping_mdt`."""
        base = self.name.replace("__", "_")
        return re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "_", base).lower()

    @property
    def custom_metadata(self) -> bool:
        return self.name.endswith("__mdt")


PARTITIONED: tuple[SourceObject, ...] = tuple(
    SourceObject(name)
    for name in (
        "Account",
        "Contract",
        "Order",
        "OrderItem",
        "Opportunity",
        "OpportunityLineItem",
        "Quote",
        "QuoteLineItem",
        "Asset",
    )
)

MAPPING_TYPES = (
    "AccountMapping__mdt",
    "ContractMapping__mdt",
    "PlanMapping__mdt",
    "PricingMapping__mdt",
    "AccountPlanMapping__mdt",
    "CommitmentMapping__mdt",
    "CompoundAggregationMapping__mdt",
)

REFERENCE: tuple[SourceObject, ...] = (
    SourceObject("Product2", partitioned=False),
    *(SourceObject(name, (), partitioned=False, all_fields=True) for name in MAPPING_TYPES),
)

ALL: tuple[SourceObject, ...] = PARTITIONED + REFERENCE


def source_object(name: str) -> SourceObject:
    for obj in ALL:
        if obj.name == name:
            return obj
    raise KeyError(f"m3sync does not extract {name!r}")
