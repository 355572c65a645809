"""The Salesforce objects m3sync extracts, and the fields each one brings by default.

Until the mapping compiler says which fields the mappings need, every object brings a default
list: the fields the shipped mappings use, and the relationship paths that feed segment and
reference fields. `Id`, `SystemModstamp` and (where the object has one) `IsDeleted` are always
added by the field plan.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_LINE_PRODUCT = (
    "Product2Id",
    "Product2.ProductCode",
    "Product2.M3ter_Product_Code__c",
    "Product2.M3ter_Aggregation_Code__c",
    "Product2.M3ter_Plan_Template_Code__c",
)
_AGREEMENT = (
    "CurrencyIsoCode",
    "Sync_To_M3ter__c",
    "Prepayment_Amount__c",
    "Billing_Frequency__c",
    "Account.Region__c",
    "Account.Tier__c",
)


@dataclass(frozen=True)
class SourceObject:
    """One extracted object: its API name, its raw table, and how it is read."""

    name: str
    fields: tuple[str, ...]
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


PARTITIONED: tuple[SourceObject, ...] = (
    SourceObject(
        "Account",
        (
            "Name",
            "AccountNumber",
            "CurrencyIsoCode",
            "Region__c",
            "Tier__c",
            "Billing_Email__c",
            "BillingStreet",
            "BillingCity",
            "BillingState",
            "BillingPostalCode",
            "BillingCountry",
            "ParentId",
        ),
    ),
    SourceObject(
        "Contract",
        (
            "AccountId",
            "ContractNumber",
            "StartDate",
            "EndDate",
            "ContractTerm",
            "Status",
            "StatusCode",
            "CurrencyIsoCode",
            "Billing_Frequency__c",
        ),
    ),
    SourceObject(
        "Order",
        (
            "AccountId",
            "Name",
            "OrderNumber",
            "EffectiveDate",
            "EndDate",
            "Status",
            "ContractId",
            "OpportunityId",
            "QuoteId",
            *_AGREEMENT,
        ),
    ),
    SourceObject(
        "OrderItem",
        (
            "OrderId",
            "OrderItemNumber",
            "Quantity",
            "UnitPrice",
            "ListPrice",
            "ServiceDate",
            "EndDate",
            *_LINE_PRODUCT,
            "Order.AccountId",
            "Order.ContractId",
            "Order.EffectiveDate",
            "Order.EndDate",
            "Order.CurrencyIsoCode",
            "Order.Sync_To_M3ter__c",
            "Order.Account.Region__c",
            "Order.Account.Tier__c",
        ),
    ),
    SourceObject(
        "Opportunity",
        (
            "AccountId",
            "Name",
            "StageName",
            "CloseDate",
            "IsClosed",
            "IsWon",
            "ContractId",
            "SyncedQuoteId",
            "Service_Start_Date__c",
            "Service_End_Date__c",
            *_AGREEMENT,
        ),
    ),
    SourceObject(
        "OpportunityLineItem",
        (
            "OpportunityId",
            "Name",
            "Quantity",
            "UnitPrice",
            "ListPrice",
            "ServiceDate",
            "End_Date__c",
            *_LINE_PRODUCT,
            "Opportunity.AccountId",
            "Opportunity.ContractId",
            "Opportunity.CurrencyIsoCode",
            "Opportunity.Service_Start_Date__c",
            "Opportunity.Service_End_Date__c",
            "Opportunity.Sync_To_M3ter__c",
            "Opportunity.Account.Region__c",
            "Opportunity.Account.Tier__c",
        ),
    ),
    SourceObject(
        "Quote",
        (
            "Name",
            "OpportunityId",
            "AccountId",
            "ContractId",
            "Status",
            "IsSyncing",
            "ExpirationDate",
            "Service_Start_Date__c",
            "Service_End_Date__c",
            *_AGREEMENT,
        ),
    ),
    SourceObject(
        "QuoteLineItem",
        (
            "QuoteId",
            "LineNumber",
            "Quantity",
            "UnitPrice",
            "ListPrice",
            "ServiceDate",
            "End_Date__c",
            *_LINE_PRODUCT,
            "Quote.AccountId",
            "Quote.ContractId",
            "Quote.CurrencyIsoCode",
            "Quote.Service_Start_Date__c",
            "Quote.Service_End_Date__c",
            "Quote.Sync_To_M3ter__c",
            "Quote.Account.Region__c",
            "Quote.Account.Tier__c",
        ),
    ),
    SourceObject(
        "Asset",
        (
            "Name",
            "AccountId",
            "Quantity",
            "Price",
            "Status",
            "PurchaseDate",
            "InstallDate",
            "UsageEndDate",
            "CurrencyIsoCode",
            "Sync_To_M3ter__c",
            *_LINE_PRODUCT,
            "Account.Region__c",
            "Account.Tier__c",
        ),
    ),
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
    SourceObject(
        "Product2",
        (
            "Name",
            "ProductCode",
            "Family",
            "IsActive",
            "QuantityUnitOfMeasure",
            "M3ter_Product_Code__c",
            "M3ter_Aggregation_Code__c",
            "M3ter_Plan_Template_Code__c",
            "M3ter_Calculation__c",
        ),
        partitioned=False,
    ),
    *(SourceObject(name, (), partitioned=False, all_fields=True) for name in MAPPING_TYPES),
)

ALL: tuple[SourceObject, ...] = PARTITIONED + REFERENCE


def source_object(name: str) -> SourceObject:
    for obj in ALL:
        if obj.name == name:
            return obj
    raise KeyError(f"m3sync does not extract {name!r}")
