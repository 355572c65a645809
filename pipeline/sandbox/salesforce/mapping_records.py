"""The demo org's `*Mapping__mdt` records: the default mappings, as an admin would configure them.

They are the org-side twin of the YAML mappings (DESIGN §5): the pipeline can read them with REST
`query_all` instead of files. Pricing records are derived from the catalogue, one per source object
and segmentation, so each product is priced against an aggregation with matching segment keys.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from pipeline.sandbox.catalog import CATALOG, product_resolutions


@dataclass(frozen=True)
class MappingRecord:
    """One custom metadata record; JSON-valued fields are kept as dicts until `columns()`."""

    type: str  # the custom metadata type, e.g. "PricingMapping__mdt"
    developer_name: str
    source_object: str
    fields: Mapping[str, str]  # m3ter field -> Salesforce field or relationship path
    where: str | None = None  # SOQL condition on the source object
    hardcoded: Mapping[str, Any] = field(default_factory=dict)  # m3ter field -> literal
    custom_fields: Mapping[str, str] = field(default_factory=dict)  # m3ter custom field -> path
    sync_level: str | None = None  # "agreement" | "line_item"
    segments: str | None = None  # PricingMapping__mdt only: `k: v, ...` or a JSON object
    combine: Mapping[str, str] = field(default_factory=dict)  # m3ter field -> combine rule
    product_mapping: Mapping[str, str] = field(default_factory=dict)  # PlanMapping__mdt only
    agreement: str | None = None  # the field naming a line's agreement, beyond standard lines
    identity: str | None = None  # the field naming a line across its replacements

    @property
    def label(self) -> str:
        return self.developer_name.replace("_", " ")

    def columns(self) -> dict[str, Any]:
        """Field values as the org stores them: JSON text, blank (null) when empty."""
        return {
            "DeveloperName": self.developer_name,
            "MasterLabel": self.label,
            "Label": self.label,
            "Language": "en_US",
            "NamespacePrefix": None,
            "QualifiedApiName": self.developer_name,
            "IsProtected": False,
            "Source_Object__c": self.source_object,
            "Where__c": self.where,
            "Fields__c": _json(self.fields),
            "Hardcoded__c": _json(self.hardcoded),
            "Custom_Fields__c": _json(self.custom_fields),
            "Combine__c": _json(self.combine),
            "Product_Mapping__c": _json(self.product_mapping),
            "Active__c": True,
            "Sync_Level__c": self.sync_level,
            "Agreement_Field__c": self.agreement,
            "Identity_Field__c": self.identity,
            "Segments__c": self.segments,
        }


@dataclass(frozen=True)
class ProductMappingRecord:
    """One `ProductMapping__mdt` record: a row of the product mapping table."""

    developer_name: str
    product_code: str
    billing_frequency: str | None
    currency: str | None
    plan_template: str
    type: str = "ProductMapping__mdt"

    def columns(self) -> dict[str, Any]:
        label = self.developer_name.replace("_", " ")
        return {
            "DeveloperName": self.developer_name,
            "MasterLabel": label,
            "Label": label,
            "Language": "en_US",
            "NamespacePrefix": None,
            "QualifiedApiName": self.developer_name,
            "IsProtected": False,
            "Product_Code__c": self.product_code,
            "Billing_Frequency__c": self.billing_frequency,
            "Currency__c": self.currency,
            "Plan_Template_Code__c": self.plan_template,
            "Active__c": True,
        }


def _json(value: Mapping[str, Any]) -> str | None:
    return json.dumps(dict(value)) if value else None


@dataclass(frozen=True)
class _Source:
    """An object deals are billed from, and the header (Order, ...) that carries its account."""

    name: str
    header: str | None  # relationship to the agreement header; None when the object is one
    start: str
    end: str
    unit_price: str
    sync_level: str
    extra: Mapping[str, str]  # custom fields that trace a plan back to its agreement
    segments_as_json: bool
    static_tier: str | None = None  # a literal segment value instead of the account's tier

    def path(self, field_name: str) -> str:
        return f"{self.header}.{field_name}" if self.header else field_name

    @property
    def object_code(self) -> str:
        """The code of the plan (and account plan) a row bills on: at agreement level the lines
        of one agreement that bill one m3ter product share it (m3ter bills one account plan per
        account and product); an Asset is an agreement of its own."""
        if self.header is None:
            return "Id"
        return f"{{{self.header}Id}}_{{Product2.M3ter_Product_Code__c}}"

    @property
    def plan_name(self) -> str:
        if self.header is None:
            return "Product2.Name"
        return f"{{{self.header}.Name}}: {{Product2.M3ter_Product_Code__c}}"

    @property
    def product_mapping(self) -> dict[str, str]:
        """The fields the product mapping table is looked up by: the agreement's billing
        frequency and currency (an Asset has a currency and no billing frequency)."""
        looked_up = {"product": "Product2.ProductCode"}
        if self.header is not None:
            looked_up["billing_frequency"] = self.path("Billing_Frequency__c")
        return {**looked_up, "currency": self.path("CurrencyIsoCode")}

    @property
    def combine(self) -> dict[str, str]:
        """Account plans of grouped lines run from the first line's start to the last's end."""
        if self.header is None:
            return {}
        return {"startDate": "earliest", "endDate": "latest"}

    @property
    def synced(self) -> str:
        return f"{self.path('Sync_To_M3ter__c')} = true"

    def segments(self, keys: tuple[str, ...]) -> str | None:
        """The segment text for an aggregation segmented on `keys`, in this source's style."""
        paths = {
            "region": self.path("Account.Region__c"),
            "tier": self.static_tier or self.path("Account.Tier__c"),
        }
        chosen = {key: paths[key] for key in keys}
        if not chosen:
            return None
        if self.segments_as_json:
            return json.dumps(chosen)
        return ", ".join(f"{key}: {value}" for key, value in chosen.items())


_BILLED_SOURCES = (
    _Source(
        "OrderItem",
        "Order",
        "ServiceDate",
        "EndDate",
        "UnitPrice",
        "agreement",
        {"salesforceOrderNumber": "Order.OrderNumber"},
        segments_as_json=False,
    ),
    _Source(
        "OpportunityLineItem",
        "Opportunity",
        "ServiceDate",
        "End_Date__c",
        "UnitPrice",
        "agreement",
        {"salesforceOpportunity": "Opportunity.Name"},
        segments_as_json=True,
    ),
    _Source(
        "QuoteLineItem",
        "Quote",
        "ServiceDate",
        "End_Date__c",
        "UnitPrice",
        "agreement",
        {"salesforceQuoteNumber": "Quote.QuoteNumber"},
        segments_as_json=False,
    ),
    _Source(
        "Asset",
        None,
        "InstallDate",
        "UsageEndDate",
        "Price",
        "agreement",
        {"serialNumber": "SerialNumber"},
        segments_as_json=True,
        static_tier="Standard",
    ),
)


def _account_records() -> list[MappingRecord]:
    return [
        MappingRecord(
            "AccountMapping__mdt",
            "Account_Default",
            "Account",
            where="Type != 'Prospect'",
            fields={
                "code": "Id",
                "name": "Name",
                "emailAddress": "Billing_Email__c",
                "currency": "CurrencyIsoCode",
                "address.addressLine1": "BillingStreet",
                "address.locality": "BillingCity",
                "address.region": "BillingState",
                "address.postCode": "BillingPostalCode",
                "address.country": "BillingCountry",
            },
            hardcoded={"daysBeforeBillDue": 30},
            custom_fields={"region": "Region__c", "tier": "Tier__c", "industry": "Industry"},
        )
    ]


def _contract_records() -> list[MappingRecord]:
    return [
        MappingRecord(
            "ContractMapping__mdt",
            "Contract_Activated",
            "Contract",
            where="Status = 'Activated'",
            fields={
                "code": "Id",
                "name": "ContractNumber",
                "accountCode": "AccountId",
                "startDate": "StartDate",
                "endDate": "EndDate",
            },
            custom_fields={"billingFrequency": "Billing_Frequency__c"},
        )
    ]


def _plan_records() -> list[MappingRecord]:
    return [
        MappingRecord(
            "PlanMapping__mdt",
            f"{s.name}_Plans",
            s.name,
            where=s.synced,
            fields={
                "code": s.object_code,
                "name": s.plan_name,
                "planTemplateCode": "Product2.M3ter_Plan_Template_Code__c",
            },
            custom_fields=s.extra,
            sync_level=s.sync_level,
            product_mapping=s.product_mapping,
        )
        for s in _BILLED_SOURCES
    ]


def _product_mapping_records() -> list[ProductMappingRecord]:
    records = []
    for code, frequency, currency, template in product_resolutions():
        name = "_".join(part for part in (code.replace("-", "_"), frequency, currency) if part)
        records.append(ProductMappingRecord(name, code, frequency, currency, template))
    return records


def _segment_groups() -> list[tuple[str, tuple[str, ...], tuple[str, ...]]]:
    """(name, segment keys, aggregation codes) per segmentation found in the catalogue."""
    groups: dict[tuple[str, ...], list[str]] = {}
    for product in CATALOG:
        codes = groups.setdefault(product.segmented_by, [])
        if product.aggregation is not None and product.aggregation not in codes:
            codes.append(product.aggregation)
    named = [
        ("_".join(k.title() for k in keys) or "Unsegmented", keys, tuple(codes))
        for keys, codes in groups.items()
        if codes
    ]
    return sorted(named, key=lambda group: (-len(group[1]), group[0]))


def _pricing_record(
    source: _Source, name: str, where: str, aggregation_key: str, segments: str | None
) -> MappingRecord:
    return MappingRecord(
        "PricingMapping__mdt",
        f"{source.name}_Pricing_{name}",
        source.name,
        where=f"{source.synced} AND {where}",
        fields={
            "planCode": source.object_code,
            aggregation_key: "Product2.M3ter_Aggregation_Code__c",
            "startDate": source.start,
            "endDate": source.end,
            "unitPrice": source.unit_price,
        },
        hardcoded={"cumulative": False},
        sync_level=source.sync_level,
        segments=segments,
    )


def _pricing_records() -> list[MappingRecord]:
    records = []
    for source in _BILLED_SOURCES:
        for name, keys, codes in _segment_groups():
            in_list = ", ".join(f"'{code}'" for code in codes)
            records.append(
                _pricing_record(
                    source,
                    name,
                    f"Product2.M3ter_Aggregation_Code__c IN ({in_list})",
                    "aggregationCode",
                    source.segments(keys),
                )
            )
        records.append(
            _pricing_record(
                source,
                "Compound",
                "Product2.M3ter_Calculation__c != null",
                "compoundAggregationCode",
                None,
            )
        )
    return records


def _account_plan_records() -> list[MappingRecord]:
    records = []
    for s in _BILLED_SOURCES:
        fields = {
            "code": s.object_code,
            "accountCode": s.path("AccountId"),
            "planCode": s.object_code,
            "startDate": s.start,
            "endDate": s.end,
        }
        if s.header:
            fields["contractCode"] = s.path("ContractId")
        records.append(
            MappingRecord(
                "AccountPlanMapping__mdt",
                f"{s.name}_Account_Plans",
                s.name,
                where=s.synced,
                fields=fields,
                sync_level=s.sync_level,
                combine=s.combine,
            )
        )
    return records


def _commitment_records() -> list[MappingRecord]:
    def record(obj: str, start: str, end: str, hardcoded: Mapping[str, Any]) -> MappingRecord:
        return MappingRecord(
            "CommitmentMapping__mdt",
            f"{obj}_Prepayment",
            obj,
            where="Sync_To_M3ter__c = true AND Prepayment_Amount__c != null",
            fields={
                "accountCode": "AccountId",
                "amount": "Prepayment_Amount__c",
                "currency": "CurrencyIsoCode",
                "startDate": start,
                "endDate": end,
                "contractCode": "ContractId",
            },
            hardcoded=hardcoded,
            sync_level="agreement",
        )

    return [
        record("Order", "EffectiveDate", "EndDate", {"commitmentFeeBillInAdvance": True}),
        record("Opportunity", "Service_Start_Date__c", "Service_End_Date__c", {}),
        record("Quote", "Service_Start_Date__c", "Service_End_Date__c", {}),
    ]


def _compound_aggregation_records() -> list[MappingRecord]:
    return [
        MappingRecord(
            "CompoundAggregationMapping__mdt",
            "Product_Compound_Aggregations",
            "Product2",
            where="M3ter_Calculation__c != null",
            fields={
                "code": "M3ter_Aggregation_Code__c",
                "name": "Name",
                "calculation": "M3ter_Calculation__c",
                "productCode": "M3ter_Product_Code__c",
                "unit": "QuantityUnitOfMeasure",
            },
            hardcoded={"quantityPerUnit": 1, "rounding": "NONE"},
        )
    ]


MAPPING_RECORDS: tuple[MappingRecord | ProductMappingRecord, ...] = (
    *_account_records(),
    *_contract_records(),
    *_plan_records(),
    *_pricing_records(),
    *_account_plan_records(),
    *_commitment_records(),
    *_compound_aggregation_records(),
    *_product_mapping_records(),
)


def records_of(type_name: str) -> list[MappingRecord | ProductMappingRecord]:
    """The records of one custom metadata type, e.g. "PricingMapping__mdt"."""
    return [r for r in MAPPING_RECORDS if r.type == type_name]
