"""What an m3ter organization is set up to accept, beyond its objects: its currencies, its external
mapping configuration, and what its service user may do.

A real organization is configured in m3ter's console before anything syncs into it; the sandbox
starts with a configuration an administrator might plausibly have made, and refuses what it does
not allow, as m3ter does.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Final

from pipeline.sandbox.m3ter.entities import BY_NAME, ENTITIES

# What each HTTP method asks of a service user's permission policy (m3ter's actions).
ACTIONS: Final[dict[str, str]] = {
    "GET": "retrieve",
    "POST": "create",
    "PUT": "update",
    "DELETE": "delete",
}
# The standard Salesforce objects a Salesforce external system maps from.
SALESFORCE_TABLES: Final[tuple[str, ...]] = (
    "Account",
    "Asset",
    "Contract",
    "Opportunity",
    "OpportunityLineItem",
    "Order",
    "OrderItem",
    "Product2",
    "Quote",
    "QuoteLineItem",
)


@dataclass(frozen=True)
class ExternalSystem:
    """One system ExternalMappings may name, and the tables of it they may name."""

    name: str
    tables: tuple[str, ...] = ()
    allow_custom_tables: bool = False

    def answer(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "externalTables": list(self.tables),
            "allowCustomExternalTables": self.allow_custom_tables,
        }


@dataclass(frozen=True)
class OrgSettings:
    """The organization's set-up: currencies, external mapping configuration, permissions.

    `denied` lists permissions the service user lacks, as `<action>:<collection>` (for example
    `create:commitments`); every other call is allowed, as for m3ter's recommended
    Administrator policy.
    """

    currencies: tuple[str, ...] = ("USD", "EUR", "GBP")
    # [assume: pessimistic] an org's ExternalMapping configuration names its systems and their
    # tables; custom tables are off until an administrator allows them, so a mapping from a
    # custom object (`SBQQ__Subscription__c`) is refused until then.
    external_systems: tuple[ExternalSystem, ...] = (
        ExternalSystem("Salesforce", SALESFORCE_TABLES),
    )
    mapped_entities: tuple[str, ...] = field(
        default_factory=lambda: tuple(sorted(n for n in BY_NAME if n != "ExternalMapping"))
    )
    denied: frozenset[str] = frozenset()

    def __post_init__(self) -> None:
        for permission in self.denied:
            action, _, collection = permission.partition(":")
            if action not in ACTIONS.values() or not collection:
                raise ValueError(
                    f"permission {permission!r} is not <action>:<collection> with an action "
                    f"among {', '.join(sorted(ACTIONS.values()))}"
                )

    def allows(self, method: str, collection: str) -> bool:
        action = ACTIONS.get(method, "retrieve")
        return f"{action}:{collection}" not in self.denied

    def permissions(self) -> list[str]:
        """The token's `permissions` claim: Administrator, or each permission still granted."""
        if not self.denied:
            return ["ADMINISTRATOR"]
        granted = (
            f"{action}:{collection}" for collection in ENTITIES for action in ACTIONS.values()
        )
        return [f"config:{p}" for p in granted if p not in self.denied]

    def system(self, name: str) -> ExternalSystem | None:
        return next((s for s in self.external_systems if s.name == name), None)

    def external_mapping_configuration(self) -> dict[str, Any]:
        """`GET /externalmappingconfiguration`.

        [assume: pessimistic] the answer's shape is not documented beyond naming the permitted
        m3ter entities and, per external system, its tables and `allowCustomExternalTables`.
        """
        return {
            "m3terEntities": list(self.mapped_entities),
            "externalSystems": [s.answer() for s in self.external_systems],
        }

    def currency_list(self) -> list[dict[str, Any]]:
        """The org's currencies as `GET /picklists/currency` lists them."""
        return [
            {"code": code, "name": code, "archived": False, "maxDecimalPlaces": 2}
            for code in self.currencies
        ]


def parse_denied(text: str) -> frozenset[str]:
    """`create:commitments,update:pricings` as typed on the command line."""
    return frozenset(p.strip() for p in text.split(",") if p.strip())
