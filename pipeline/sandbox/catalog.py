"""The product catalogue both sandboxes share.

The demo org's Product2 records carry the m3ter codes each product bills against; the m3ter
sandbox is seeded with products, aggregations and plan templates under the same codes, so a
pipeline run over the demo org resolves every reference.
"""

from __future__ import annotations

from dataclasses import dataclass

from pipeline.sandbox.salesforce.schema import REGIONS, TIERS

SEGMENT_FIELDS = {"region": REGIONS, "tier": TIERS}


@dataclass(frozen=True)
class CatalogProduct:
    name: str
    product_code: str  # Product2.ProductCode
    family: str
    unit: str
    unit_price: float  # list price in USD; EUR and GBP pricebook entries derive from it
    m3ter_product: str  # m3ter product code
    plan_template: str  # m3ter plan template code
    aggregation: str | None = None  # m3ter aggregation code (usage products)
    segmented_by: tuple[str, ...] = ()  # keys of SEGMENT_FIELDS the aggregation is segmented on
    calculation: str | None = None  # compound aggregation formula (bundle products)
    compound_aggregation: str | None = None  # m3ter compound aggregation code (bundle products)

    @property
    def compound(self) -> bool:
        return self.calculation is not None

    @property
    def billed_aggregation(self) -> str | None:
        """The code a pricing for this product references: its aggregation or compound one."""
        return self.aggregation or self.compound_aggregation


CATALOG: tuple[CatalogProduct, ...] = (
    CatalogProduct(
        "API Calls",
        "API-CALLS",
        "Usage",
        "call",
        0.002,
        "api_platform",
        "api_platform_standard",
        "api_calls",
        ("region", "tier"),
    ),
    # A camel-case aggregation code, as real m3ter organizations hold them (`apiCalls`): m3ter
    # never published a pattern for them, so m3sync checks only what is certain.
    CatalogProduct(
        "API Gateway Requests",
        "API-GW-REQ",
        "Usage",
        "request",
        0.0008,
        "api_platform",
        "api_platform_standard",
        "gatewayRequests",
        ("region",),
    ),
    CatalogProduct(
        "Data Storage",
        "DATA-STORAGE-GB",
        "Usage",
        "GB-month",
        0.12,
        "data_platform",
        "data_platform_standard",
        "storage_gb",
        ("region",),
    ),
    CatalogProduct(
        "Data Transfer",
        "DATA-TRANSFER-GB",
        "Usage",
        "GB",
        0.05,
        "data_platform",
        "data_platform_standard",
        "transfer_gb",
    ),
    CatalogProduct(
        "Compute Hours",
        "COMPUTE-HRS",
        "Usage",
        "hour",
        0.35,
        "compute",
        "compute_standard",
        "compute_hours",
        ("region", "tier"),
    ),
    CatalogProduct(
        "Inference Calls",
        "INFERENCE-CALLS",
        "Usage",
        "call",
        0.01,
        "compute",
        "compute_standard",
        "inference_calls",
        ("region",),
    ),
    CatalogProduct(
        "Active Users",
        "ACTIVE-USERS",
        "Platform",
        "user",
        8.0,
        "collaboration",
        "collaboration_standard",
        "active_users",
        ("tier",),
    ),
    CatalogProduct(
        "Messages Sent",
        "MESSAGES",
        "Usage",
        "message",
        0.0075,
        "messaging",
        "messaging_standard",
        "messages_sent",
    ),
    CatalogProduct(
        "Support Tickets",
        "SUPPORT-TICKETS",
        "Support",
        "ticket",
        15.0,
        "support",
        "support_standard",
        "support_tickets",
    ),
    CatalogProduct(
        "Premium Support Hours",
        "SUPPORT-HOURS",
        "Services",
        "hour",
        120.0,
        "support",
        "support_standard",
        "support_hours",
        ("tier",),
    ),
    CatalogProduct(
        "Data Bundle",
        "DATA-BUNDLE",
        "Usage",
        "GB",
        0.09,
        "data_platform",
        "data_platform_standard",
        calculation="storage_gb * 0.8 + transfer_gb",
        compound_aggregation="data_bundle",
    ),
    CatalogProduct(
        "Compute Bundle",
        "COMPUTE-BUNDLE",
        "Usage",
        "hour",
        0.3,
        "compute",
        "compute_standard",
        calculation="compute_hours + inference_calls / 1000",
        compound_aggregation="compute_bundle",
    ),
)

# Product mapping resolution (`ProductMapping__mdt`): the m3ter products some products are also
# sold under annually and in euros, each with plan templates of its own; every other product,
# and these sold monthly or quarterly in dollars, keep Product2's `M3ter_Plan_Template_Code__c`.
RESOLVED_PRODUCTS = ("api_platform", "compute")
RESOLUTIONS: tuple[tuple[str | None, str | None, str], ...] = (
    # (billing frequency, currency, plan template suffix)
    ("Annual", None, "annual"),
    (None, "EUR", "eur"),
    ("Annual", "EUR", "annual_eur"),
)
TEMPLATE_TERMS = {
    "annual": ("ANNUALLY", "USD"),
    "eur": ("MONTHLY", "EUR"),
    "annual_eur": ("ANNUALLY", "EUR"),
}


def resolved_templates() -> list[tuple[str, str, str, str]]:
    """(template code, m3ter product, bill frequency, currency) of the resolution templates."""
    return [
        (f"{product}_{suffix}", product, *TEMPLATE_TERMS[suffix])
        for product in RESOLVED_PRODUCTS
        for _, _, suffix in RESOLUTIONS
    ]


def product_resolutions() -> list[tuple[str, str | None, str | None, str]]:
    """(ProductCode, billing frequency, currency, plan template) rows of the demo org's table."""
    return [
        (p.product_code, frequency, currency, f"{p.m3ter_product}_{suffix}")
        for p in CATALOG
        if p.m3ter_product in RESOLVED_PRODUCTS
        for frequency, currency, suffix in RESOLUTIONS
    ]


# Exchange rates the demo pricebooks use for non-USD entries.
CURRENCY_RATES = {"USD": 1.0, "EUR": 0.92, "GBP": 0.79}
