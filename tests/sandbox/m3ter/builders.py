"""Valid SDK arguments for every entity, and the objects they need, built through m3ter's SDK.

Seeded objects (products, meters, aggregations, plan templates) have fixed ids, so tests refer to
them by catalogue code.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import m3ter

from pipeline.sandbox.m3ter.seed import seed_id

MESSAGING = seed_id("products", "messaging")
MESSAGING_METER = seed_id("meters", "messaging")
MESSAGES_SENT = seed_id("aggregations", "messages_sent")  # not segmented
API_CALLS = seed_id("aggregations", "api_calls")  # segmented on region and tier
API_PLATFORM = seed_id("products", "api_platform")
MESSAGING_TEMPLATE = seed_id("plantemplates", "messaging_standard")
API_TEMPLATE = seed_id("plantemplates", "api_platform_standard")
BAND = {"lower_limit": 0, "fixed_price": 0, "unit_price": 0.01}

_serial = itertools.count(1)


def unique(prefix: str) -> str:
    return f"{prefix}{next(_serial)}"


class Builder:
    """Creates prerequisite objects with fresh codes."""

    def __init__(self, client: m3ter.M3ter) -> None:
        self.client = client

    def account(self, **extra: Any) -> str:
        return self.client.accounts.create(**{**account_args(), **extra}).id

    def plan(self, template: str = MESSAGING_TEMPLATE, **extra: Any) -> str:
        return self.client.plans.create(
            plan_template_id=template, name="Plan", code=unique("plan-"), **extra
        ).id

    def contract(self, account_id: str) -> str:
        return self.client.contracts.create(
            account_id=account_id, name="Contract", start_date="2025-01-01", end_date="2026-01-01"
        ).id

    def meter(self) -> str:
        return self.client.meters.create(**meter_args()).id

    def plan_group(self, currency: str = "USD", **extra: Any) -> str:
        return self.client.plan_groups.create(
            name="Bundle", currency=currency, code=unique("group-"), **extra
        ).id


def account_args() -> dict[str, Any]:
    return {"code": unique("acct-"), "name": "Acme Ltd", "email_address": "billing@acme.test"}


def meter_args() -> dict[str, Any]:
    return {
        "code": unique("meter-"),
        "name": "Widgets",
        "product_id": MESSAGING,
        "data_fields": [
            {"category": "MEASURE", "code": "units", "name": "Units", "unit": "each"},
            {"category": "WHERE", "code": "site", "name": "Site"},
        ],
        "derived_fields": [],
    }


@dataclass(frozen=True)
class Case:
    """How to create the n-th object of one entity and which field an update changes."""

    resource: str  # attribute of the SDK client
    create: Callable[[Builder, int], dict[str, Any]]
    change: dict[str, Any] | Callable[[Builder], dict[str, Any]]
    attribute: str  # response attribute the change shows in

    def changed(self, builder: Builder) -> dict[str, Any]:
        """The arguments an update changes (built, where they name new objects)."""
        return self.change(builder) if callable(self.change) else self.change


CASES: dict[str, Case] = {
    "accounts": Case("accounts", lambda b, n: account_args(), {"name": "Acme Renamed"}, "name"),
    "contracts": Case(
        "contracts",
        lambda b, n: {
            "account_id": b.account(),
            "name": f"Contract {n}",
            "start_date": "2025-01-01",
            "end_date": "2026-01-01",
            "code": unique("contract-"),
        },
        {"name": "Contract Renamed"},
        "name",
    ),
    "products": Case(
        "products",
        lambda b, n: {"code": unique("product-"), "name": "Widgets"},
        {"name": "Widgets Renamed"},
        "name",
    ),
    "meters": Case("meters", lambda b, n: meter_args(), {"name": "Widgets Renamed"}, "name"),
    "aggregations": Case(
        "aggregations",
        lambda b, n: {
            "name": "Sent",
            "meter_id": MESSAGING_METER,
            "target_field": "messages_sent",
            "aggregation": "SUM",
            "rounding": "NONE",
            "quantity_per_unit": 1,
            "unit": "message",
            "code": unique("sent_"),
        },
        {"unit": "msg"},
        "unit",
    ),
    "compoundaggregations": Case(
        "compound_aggregations",
        lambda b, n: {
            "name": "Bundle",
            "calculation": "storage_gb * 0.8 + transfer_gb",
            "quantity_per_unit": 1,
            "rounding": "NONE",
            "unit": "GB",
            "code": unique("bundle_"),
            "product_id": seed_id("products", "data_platform"),
        },
        {"calculation": "storage_gb + transfer_gb"},
        "calculation",
    ),
    "plantemplates": Case(
        "plan_templates",
        lambda b, n: {
            "product_id": MESSAGING,
            "name": "Gold",
            "currency": "EUR",
            "standing_charge": 0,
            "bill_frequency": "MONTHLY",
            "code": unique("gold-"),
        },
        {"standing_charge": 25},
        "standing_charge",
    ),
    "plans": Case(
        "plans",
        lambda b, n: {
            "plan_template_id": MESSAGING_TEMPLATE,
            "name": "Plan",
            "code": unique("plan-"),
        },
        {"name": "Plan Renamed"},
        "name",
    ),
    "pricings": Case(
        "pricings",
        lambda b, n: {
            "plan_id": b.plan(),
            "aggregation_id": MESSAGES_SENT,
            "pricing_bands": [BAND],
            "start_date": f"202{n}-01-01T00:00:00Z",
            "end_date": f"202{n + 1}-01-01T00:00:00Z",
        },
        {"description": "Messages"},
        "description",
    ),
    "plangroups": Case(
        "plan_groups",
        lambda b, n: {"name": "Bundle", "currency": "USD", "code": unique("group-")},
        {"name": "Bundle Renamed"},
        "name",
    ),
    "plangrouplinks": Case(
        "plan_group_links",
        lambda b, n: {"plan_group_id": b.plan_group(), "plan_id": b.plan()},
        lambda b: {"plan_id": b.plan()},
        "plan_id",
    ),
    "accountplans": Case(
        "account_plans",
        lambda b, n: {
            "account_id": b.account(),
            "plan_id": b.plan(),
            "start_date": "2025-01-01T00:00:00Z",
        },
        {"code": "ap-changed"},
        "code",
    ),
    "commitments": Case(
        "commitments",
        lambda b, n: {
            "account_id": b.account(),
            "amount": 1000,
            "currency": "USD",
            "start_date": "2025-01-01",
            "end_date": "2026-01-01",
        },
        {"amount": 2500},
        "amount",
    ),
    "externalmappings": Case(
        "external_mappings",
        lambda b, n: {
            "external_system": "Salesforce",
            "external_table": "Account",
            "external_id": unique("001000000000000"),
            "m3ter_entity": "Account",
            "m3ter_id": b.account(),
        },
        {"external_table": "Contract"},
        "external_table",
    ),
}
