"""The sandbox org's data model: objects, fields and relationships, as describe reports them.

One declaration drives the DuckDB tables that hold the org, the describe responses and the SOQL
translator, so the three can never disagree. Field-level security is applied by
`OrgSchema.visible_to_integration_user`, which drops the hidden fields everywhere at once.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from functools import cache, cached_property
from typing import Any, Literal

from pipeline.mapping.files import load_mappings
from pipeline.mapping.metadata import MetadataField, type_fields
from pipeline.mapping.source import SHIPPED_MAPPINGS
from pipeline.mapping.writeback import ROLE_FIELDS

# Salesforce field type -> (soapType, DuckDB column type)
FIELD_TYPES: dict[str, tuple[str, str]] = {
    "id": ("tns:ID", "VARCHAR"),
    "reference": ("tns:ID", "VARCHAR"),
    "string": ("xsd:string", "VARCHAR"),
    "textarea": ("xsd:string", "VARCHAR"),
    "picklist": ("xsd:string", "VARCHAR"),
    "email": ("xsd:string", "VARCHAR"),
    "phone": ("xsd:string", "VARCHAR"),
    "url": ("xsd:string", "VARCHAR"),
    "boolean": ("xsd:boolean", "BOOLEAN"),
    "int": ("xsd:int", "INTEGER"),
    "double": ("xsd:double", "DOUBLE"),
    "currency": ("xsd:double", "DOUBLE"),
    "percent": ("xsd:double", "DOUBLE"),
    "date": ("xsd:date", "DATE"),
    "datetime": ("xsd:dateTime", "TIMESTAMP"),
}

TEXT_TYPES = frozenset(
    {"id", "reference", "string", "textarea", "picklist", "email", "phone", "url"}
)
NUMBER_TYPES = frozenset({"int", "double", "currency", "percent"})

CURRENCIES = ("USD", "EUR", "GBP")


@dataclass(frozen=True)
class Field:
    name: str
    type: str
    label: str = ""
    length: int = 0
    nillable: bool = True
    reference_to: tuple[str, ...] = ()
    relationship_name: str | None = None
    picklist: tuple[str, ...] = ()
    calculated: bool = False
    formula: str = ""  # a calculated field's formula, as describe's `calculatedFormula` shows it
    scale: int | None = None  # decimal places of a number, where not the type's default
    auto_number: bool = False
    external_id: bool = False

    def __post_init__(self) -> None:
        if self.type not in FIELD_TYPES:
            raise ValueError(f"unknown field type {self.type!r} for {self.name}")

    @property
    def custom(self) -> bool:
        return self.name.endswith("__c")

    @property
    def soap_type(self) -> str:
        return FIELD_TYPES[self.type][0]

    @property
    def duckdb_type(self) -> str:
        return FIELD_TYPES[self.type][1]

    @property
    def is_text(self) -> bool:
        return self.type in TEXT_TYPES

    @property
    def restricted_picklist(self) -> bool:
        """Whether a write must hold one of the picklist's values (describe's
        `restrictedPicklist`)."""
        # [assume: pessimistic] every picklist is restricted, as the ones set-up deploys are
        return self.type == "picklist"


@dataclass(frozen=True)
class SObject:
    name: str
    key_prefix: str
    fields: tuple[Field, ...]
    label: str = ""
    label_plural: str = ""
    # Objects that the Bulk API refuses (custom metadata types) and that have no recycle bin.
    bulk_queryable: bool = True
    soft_delete: bool = True

    @property
    def custom(self) -> bool:
        return self.name.endswith(("__c", "__mdt"))

    @property
    def custom_metadata(self) -> bool:
        return self.name.endswith("__mdt")

    @cached_property
    def _by_lower_name(self) -> dict[str, Field]:
        return {f.name.lower(): f for f in self.fields}

    @cached_property
    def _by_lower_relationship(self) -> dict[str, Field]:
        return {
            f.relationship_name.lower(): f for f in self.fields if f.relationship_name is not None
        }

    def field(self, name: str) -> Field | None:
        """The field called `name`, matched case-insensitively as SOQL does."""
        return self._by_lower_name.get(name.lower())

    def relationship(self, name: str) -> Field | None:
        """The lookup field whose relationship name is `name` (`Account` for `AccountId`)."""
        return self._by_lower_relationship.get(name.lower())

    def without(self, hidden: frozenset[str]) -> SObject:
        kept = tuple(f for f in self.fields if f.name not in hidden)
        return replace(self, fields=kept)


@dataclass(frozen=True)
class OrgSchema:
    objects: tuple[SObject, ...]
    # object name -> field names the integration user cannot read (field-level security)
    hidden_fields: dict[str, frozenset[str]] = field(default_factory=dict)
    # objects the integration user has no Read on: absent from describe, unknown to SOQL
    hidden_objects: frozenset[str] = frozenset()

    @cached_property
    def _by_lower_name(self) -> dict[str, SObject]:
        return {o.name.lower(): o for o in self.objects}

    def sobject(self, name: str) -> SObject | None:
        return self._by_lower_name.get(name.lower())

    def with_objects(self, extra: tuple[SObject, ...]) -> OrgSchema:
        clashes = [o.name for o in extra if self.sobject(o.name) is not None]
        if clashes:
            raise ValueError(f"the org already has {', '.join(clashes)}")
        return replace(self, objects=self.objects + extra)

    def with_fields(self, extra: Mapping[str, tuple[Field, ...]]) -> OrgSchema:
        """The schema with fields added to existing objects (a managed package's, say)."""
        unknown = sorted(set(extra) - {o.name for o in self.objects})
        if unknown:
            raise ValueError(f"the org has no {', '.join(unknown)}")
        objects = tuple(replace(o, fields=o.fields + extra.get(o.name, ())) for o in self.objects)
        return replace(self, objects=objects)

    def visible_to_integration_user(self) -> OrgSchema:
        """The schema as the integration user sees it: hidden objects and fields simply do not
        exist."""
        objects = tuple(
            o.without(self.hidden_fields.get(o.name, frozenset()))
            for o in self.objects
            if o.name not in self.hidden_objects
        )
        return OrgSchema(objects=objects, hidden_fields={})

    def child_relationships(self, parent: str) -> list[tuple[SObject, Field]]:
        return [
            (o, f)
            for o in self.objects
            for f in o.fields
            if f.type == "reference" and parent in f.reference_to
        ]


def _ref(name: str, to: str, relationship: str | None = None, nillable: bool = True) -> Field:
    rel = relationship or (name[:-3] + "__r" if name.endswith("__c") else name.removesuffix("Id"))
    return Field(
        name, "reference", reference_to=(to,), relationship_name=rel, nillable=nillable, length=18
    )


def _str(name: str, length: int = 255, **kw: object) -> Field:
    return Field(name, "string", length=length, **kw)  # type: ignore[arg-type]


def _pick(name: str, values: tuple[str, ...], **kw: object) -> Field:
    return Field(name, "picklist", length=255, picklist=values, **kw)  # type: ignore[arg-type]


def _system_fields(owned: bool) -> tuple[Field, ...]:
    fields = [
        Field("Id", "id", nillable=False, length=18),
        Field("IsDeleted", "boolean", nillable=False),
        Field("CreatedDate", "datetime", nillable=False),
        _ref("CreatedById", "User", "CreatedBy", nillable=False),
        Field("LastModifiedDate", "datetime", nillable=False),
        _ref("LastModifiedById", "User", "LastModifiedBy", nillable=False),
        Field("SystemModstamp", "datetime", nillable=False),
    ]
    if owned:
        fields.append(_ref("OwnerId", "User", "Owner", nillable=False))
    return tuple(fields)


def _currency_field() -> Field:
    return _pick("CurrencyIsoCode", CURRENCIES, nillable=False)


REGIONS = ("NA", "EMEA", "APAC", "LATAM")
TIERS = ("Standard", "Premium", "Enterprise")
BILLING_FREQUENCIES = ("Monthly", "Quarterly", "Annual")


def _sobject(name: str, prefix: str, *fields: Field, owned: bool = True, **kw: object) -> SObject:
    return SObject(
        name=name,
        key_prefix=prefix,
        fields=_system_fields(owned) + fields,
        label=kw.pop("label", name),
        **kw,
    )  # type: ignore[arg-type]


def _setup_object(name: str, prefix: str, *fields: Field) -> SObject:
    """A setup object (permissions and their assignments): no owner, no recycle bin."""
    return SObject(
        name,
        prefix,
        (
            Field("Id", "id", nillable=False, length=18),
            *fields,
            Field("SystemModstamp", "datetime", nillable=False),
        ),
        soft_delete=False,
    )


def custom_object(name: str, prefix: str, *fields: Field, label: str = "") -> SObject:
    """A custom object as Setup creates it: system fields, an owner and a text `Name`."""
    return _sobject(name, prefix, _str("Name", 80, nillable=False), *fields, label=label or name)


# The fields every custom metadata record has.
_METADATA_SYSTEM_FIELDS: tuple[Field, ...] = (
    Field("Id", "id", nillable=False, length=18),
    _str("DeveloperName", 40, nillable=False),
    _str("MasterLabel", 40, nillable=False),
    _str("Label", 40, nillable=False),
    _pick("Language", ("en_US",), nillable=False),
    _str("NamespacePrefix", 15),
    _str("QualifiedApiName", 70, nillable=False),
    Field("IsProtected", "boolean", nillable=False),
    Field("SystemModstamp", "datetime", nillable=False),
)


_METADATA_TYPES = {"Text": "string", "LongTextArea": "textarea", "Checkbox": "boolean"}


def _metadata_field(definition: MetadataField) -> Field:
    if definition.type == "Picklist":
        return _pick(definition.name, definition.values, nillable=not definition.required)
    return Field(
        definition.name,
        _METADATA_TYPES[definition.type],
        length=definition.length,
        nillable=not definition.required,
    )


def _metadata_type(name: str, fields: tuple[MetadataField, ...]) -> SObject:
    """A custom metadata type of m3sync's mappings (DESIGN §5), as the core declares it."""
    return SObject(
        name=name,
        key_prefix="",
        fields=(*_METADATA_SYSTEM_FIELDS, *(_metadata_field(f) for f in fields)),
        bulk_queryable=False,
        soft_delete=False,
    )


# In a fixed order: the key prefixes (m01, m02, ...) stay what they were as types were added.
_TYPE_ORDER = (
    "AccountMapping__mdt",
    "ContractMapping__mdt",
    "PlanMapping__mdt",
    "PricingMapping__mdt",
    "AccountPlanMapping__mdt",
    "CommitmentMapping__mdt",
    "CompoundAggregationMapping__mdt",
    "ProductMapping__mdt",
    "PlanGroupMapping__mdt",
    "PlanGroupLinkMapping__mdt",
)
METADATA_TYPES: tuple[SObject, ...] = tuple(
    replace(_metadata_type(name, type_fields()[name]), key_prefix=f"m0{i}")
    for i, name in enumerate(_TYPE_ORDER, start=1)
)


def demo_schema() -> OrgSchema:
    """The demo org: a multi-currency Sales Cloud org with Quotes and Orders enabled."""
    objects = (
        SObject(
            "Organization",
            "00D",
            (
                Field("Id", "id", nillable=False, length=18),
                _str("Name", 80, nillable=False),
                Field("IsSandbox", "boolean", nillable=False),
                _pick("OrganizationType", ("Enterprise Edition", "Developer Edition")),
                _str("InstanceName", 5),
                Field("SystemModstamp", "datetime", nillable=False),
            ),
            bulk_queryable=False,
            soft_delete=False,
        ),
        # Setup objects: the integration user's profile and permission sets, which the org
        # fills as it starts (`Org.grant_access`); the preflight reads them.
        _setup_object(
            "PermissionSet",
            "0PS",
            _str("Name", 80, nillable=False),
            _str("Label", 80, nillable=False),
            Field("IsOwnedByProfile", "boolean", nillable=False),
            Field("PermissionsViewAllData", "boolean", nillable=False),
        ),
        _setup_object(
            "PermissionSetAssignment",
            "0Pa",
            _ref("AssigneeId", "User", nillable=False),
            _ref("PermissionSetId", "PermissionSet", nillable=False),
        ),
        _setup_object(
            "ObjectPermissions",
            "110",
            _ref("ParentId", "PermissionSet", "Parent", nillable=False),
            _str("SobjectType", 80, nillable=False),
            Field("PermissionsRead", "boolean", nillable=False),
            Field("PermissionsViewAllRecords", "boolean", nillable=False),
        ),
        SObject(
            "User",
            "005",
            (
                Field("Id", "id", nillable=False, length=18),
                _str("Username", 80, nillable=False),
                _str("Name", 121, nillable=False),
                Field("Email", "email", length=80, nillable=False),
                Field("IsActive", "boolean", nillable=False),
                Field("SystemModstamp", "datetime", nillable=False),
            ),
            soft_delete=False,
        ),
        _sobject(
            "Account",
            "001",
            _str("Name", nillable=False),
            _str("AccountNumber", 40),
            _pick("Type", ("Customer - Direct", "Customer - Channel", "Partner", "Prospect")),
            _pick(
                "Industry",
                ("Technology", "Finance", "Healthcare", "Retail", "Manufacturing", "Media"),
            ),
            _ref("ParentId", "Account", "Parent"),
            # Set on the accounts a merge deleted: the account they were merged into.
            _ref("MasterRecordId", "Account", "MasterRecord"),
            _str("BillingStreet"),
            _str("BillingCity", 40),
            _str("BillingState", 80),
            _str("BillingPostalCode", 20),
            _str("BillingCountry", 80),
            Field("Phone", "phone", length=40),
            Field("Website", "url", length=255),
            Field("AnnualRevenue", "currency"),
            Field("NumberOfEmployees", "int"),
            _currency_field(),
            _pick("Region__c", REGIONS, label="Region"),
            _pick("Tier__c", TIERS, label="Tier"),
            Field("Billing_Email__c", "email", length=80),
            _pick("Credit_Rating__c", ("A", "B", "C", "D"), label="Credit Rating"),
            # Another integration's key for the account: what an upsert matches on.
            _str("External_Id__c", 80, external_id=True, label="External Id"),
        ),
        _sobject(
            "Product2",
            "01t",
            _str("Name", nillable=False),
            _str("ProductCode"),
            _pick("Family", ("Platform", "Usage", "Support", "Services")),
            Field("IsActive", "boolean", nillable=False),
            Field("IsArchived", "boolean", nillable=False),
            Field("Description", "textarea", length=4000),
            _str("QuantityUnitOfMeasure"),
            _str("StockKeepingUnit", 180),
            _str("M3ter_Product_Code__c", 80, label="m3ter Product Code"),
            _str("M3ter_Aggregation_Code__c", 80, label="m3ter Aggregation Code"),
            _str("M3ter_Plan_Template_Code__c", 80, label="m3ter Plan Template Code"),
            Field("M3ter_Calculation__c", "textarea", length=1000, label="m3ter Calculation"),
            Field("Unit_Cost__c", "currency", label="Unit Cost"),
        ),
        _sobject(
            "Pricebook2",
            "01s",
            _str("Name", nillable=False),
            Field("IsActive", "boolean", nillable=False),
            Field("IsStandard", "boolean", nillable=False),
            Field("Description", "textarea", length=255),
        ),
        _sobject(
            "PricebookEntry",
            "01u",
            _str("Name"),
            _ref("Pricebook2Id", "Pricebook2", nillable=False),
            _ref("Product2Id", "Product2", nillable=False),
            Field("UnitPrice", "currency", nillable=False),
            Field("IsActive", "boolean", nillable=False),
            Field("UseStandardPrice", "boolean", nillable=False),
            _str("ProductCode"),
            _currency_field(),
            owned=False,
        ),
        _sobject(
            "Contract",
            "800",
            _ref("AccountId", "Account", nillable=False),
            Field("StartDate", "date"),
            Field(
                "EndDate", "date", calculated=True, formula="ADDMONTHS(StartDate, ContractTerm) - 1"
            ),
            Field("ContractTerm", "int"),
            _pick("Status", ("Draft", "In Approval Process", "Activated"), nillable=False),
            _pick(
                "StatusCode",
                ("Draft", "InApproval", "Activated", "Terminated", "Expired"),
                nillable=False,
            ),
            _str("ContractNumber", 30, nillable=False, auto_number=True),
            Field("ActivatedDate", "datetime"),
            Field("CustomerSignedDate", "date"),
            Field("CompanySignedDate", "date"),
            _ref("Pricebook2Id", "Pricebook2"),
            Field("SpecialTerms", "textarea", length=4000),
            Field("Description", "textarea", length=32000),
            _currency_field(),
            _pick("Billing_Frequency__c", BILLING_FREQUENCIES, label="Billing Frequency"),
        ),
        _sobject(
            "Opportunity",
            "006",
            _str("Name", 120, nillable=False),
            _ref("AccountId", "Account"),
            _pick(
                "StageName",
                (
                    "Prospecting",
                    "Qualification",
                    "Proposal/Price Quote",
                    "Negotiation/Review",
                    "Closed Won",
                    "Closed Lost",
                ),
                nillable=False,
            ),
            Field("CloseDate", "date", nillable=False),
            Field("Amount", "currency"),
            Field("Probability", "percent"),
            _pick("Type", ("New Business", "Existing Business", "Renewal")),
            Field("IsClosed", "boolean", nillable=False),
            Field("IsWon", "boolean", nillable=False),
            _pick("ForecastCategoryName", ("Pipeline", "Best Case", "Commit", "Closed", "Omitted")),
            _ref("Pricebook2Id", "Pricebook2"),
            _ref("ContractId", "Contract"),
            _ref("SyncedQuoteId", "Quote", "SyncedQuote"),
            Field("HasOpportunityLineItem", "boolean", nillable=False),
            _pick("LeadSource", ("Web", "Partner Referral", "Trade Show", "Other")),
            _str("NextStep"),
            _currency_field(),
            Field("Sync_To_M3ter__c", "boolean", nillable=False, label="Sync to m3ter"),
            Field("Prepayment_Amount__c", "currency", label="Prepayment Amount"),
            Field("Service_Start_Date__c", "date", label="Service Start Date"),
            Field("Service_End_Date__c", "date", label="Service End Date"),
            _pick("Billing_Frequency__c", BILLING_FREQUENCIES, label="Billing Frequency"),
        ),
        _sobject(
            "OpportunityLineItem",
            "00k",
            _ref("OpportunityId", "Opportunity", nillable=False),
            _ref("Product2Id", "Product2"),
            _ref("PricebookEntryId", "PricebookEntry"),
            _str("ProductCode"),
            _str("Name", 376),
            Field("Quantity", "double", nillable=False),
            Field("UnitPrice", "currency"),
            Field("ListPrice", "currency"),
            Field("TotalPrice", "currency"),
            Field("Discount", "percent"),
            Field("ServiceDate", "date"),
            Field("Description", "textarea", length=255),
            Field("SortOrder", "int"),
            Field("End_Date__c", "date", label="End Date"),
            owned=False,
        ),
        _sobject(
            "Quote",
            "0Q0",
            _str("Name", nillable=False),
            _str("QuoteNumber", 30, auto_number=True),
            _ref("OpportunityId", "Opportunity"),
            _ref("AccountId", "Account"),
            _ref("ContractId", "Contract"),
            _ref("Pricebook2Id", "Pricebook2"),
            _pick(
                "Status",
                (
                    "Draft",
                    "Needs Review",
                    "In Review",
                    "Approved",
                    "Rejected",
                    "Presented",
                    "Accepted",
                    "Denied",
                ),
            ),
            Field("ExpirationDate", "date"),
            Field("IsSyncing", "boolean", nillable=False),
            Field("Subtotal", "currency"),
            Field("TotalPrice", "currency"),
            Field("GrandTotal", "currency"),
            Field("Discount", "percent"),
            Field("LineItemCount", "int"),
            _currency_field(),
            Field("Sync_To_M3ter__c", "boolean", nillable=False, label="Sync to m3ter"),
            Field("Prepayment_Amount__c", "currency", label="Prepayment Amount"),
            Field("Service_Start_Date__c", "date", label="Service Start Date"),
            Field("Service_End_Date__c", "date", label="Service End Date"),
            _pick("Billing_Frequency__c", BILLING_FREQUENCIES, label="Billing Frequency"),
            owned=False,
        ),
        _sobject(
            "QuoteLineItem",
            "0QL",
            _ref("QuoteId", "Quote", nillable=False),
            _ref("Product2Id", "Product2"),
            _ref("PricebookEntryId", "PricebookEntry"),
            _ref("OpportunityLineItemId", "OpportunityLineItem"),
            _str("LineNumber", 255, auto_number=True),
            Field("Quantity", "double", nillable=False),
            Field("UnitPrice", "currency"),
            Field("ListPrice", "currency"),
            Field("Subtotal", "currency"),
            Field("TotalPrice", "currency"),
            Field("Discount", "percent"),
            Field("ServiceDate", "date"),
            Field("Description", "textarea", length=255),
            Field("SortOrder", "int"),
            Field("End_Date__c", "date", label="End Date"),
            owned=False,
        ),
        _sobject(
            "Order",
            "801",
            _ref("AccountId", "Account", nillable=False),
            _str("Name", 80),
            Field("EffectiveDate", "date", nillable=False),
            Field("EndDate", "date"),
            _pick("Status", ("Draft", "Activated"), nillable=False),
            _pick("StatusCode", ("Draft", "Activated", "Cancelled", "Expired"), nillable=False),
            _str("OrderNumber", 30, nillable=False, auto_number=True),
            _ref("ContractId", "Contract"),
            _ref("OpportunityId", "Opportunity"),
            _ref("QuoteId", "Quote"),
            _ref("Pricebook2Id", "Pricebook2"),
            Field("TotalAmount", "currency", calculated=True),
            _pick("Type", ("New", "Upsell", "Renewal")),
            Field("ActivatedDate", "datetime"),
            _str("PoNumber", 80),
            Field("Description", "textarea", length=32000),
            _currency_field(),
            Field("Sync_To_M3ter__c", "boolean", nillable=False, label="Sync to m3ter"),
            Field("Prepayment_Amount__c", "currency", label="Prepayment Amount"),
            _pick("Billing_Frequency__c", BILLING_FREQUENCIES, label="Billing Frequency"),
        ),
        _sobject(
            "OrderItem",
            "802",
            _ref("OrderId", "Order", nillable=False),
            _ref("Product2Id", "Product2"),
            _ref("PricebookEntryId", "PricebookEntry", nillable=False),
            _ref("QuoteLineItemId", "QuoteLineItem"),
            Field("Quantity", "double", nillable=False),
            Field("UnitPrice", "currency", nillable=False),
            Field("ListPrice", "currency"),
            Field("TotalPrice", "currency", calculated=True),
            Field("ServiceDate", "date"),
            Field("EndDate", "date"),
            _str("OrderItemNumber", 30, nillable=False, auto_number=True),
            Field("Description", "textarea", length=255),
            Field("Internal_Margin__c", "percent", label="Internal Margin"),
            owned=False,
        ),
        _sobject(
            "Asset",
            "02i",
            _str("Name", nillable=False),
            _ref("AccountId", "Account"),
            _ref("Product2Id", "Product2"),
            _ref("ParentId", "Asset", "Parent"),
            _ref("RootAssetId", "Asset", "RootAsset"),
            _str("SerialNumber", 80),
            _pick("Status", ("Purchased", "Shipped", "Installed", "Registered", "Obsolete")),
            Field("Quantity", "double"),
            Field("Price", "currency"),
            Field("PurchaseDate", "date"),
            Field("InstallDate", "date"),
            Field("UsageEndDate", "date"),
            Field("IsCompetitorProduct", "boolean", nillable=False),
            Field("Description", "textarea", length=32000),
            _currency_field(),
            Field("Sync_To_M3ter__c", "boolean", nillable=False, label="Sync to m3ter"),
        ),
        *METADATA_TYPES,
    )
    hidden = {
        "Account": frozenset({"Credit_Rating__c"}),
        "Product2": frozenset({"Unit_Cost__c"}),
        "OrderItem": frozenset({"Internal_Margin__c"}),
    }
    return OrgSchema(objects=objects, hidden_fields=hidden)


# ---- Salesforce CPQ ---------------------------------------------------------------------------
#
# The managed package's objects and the fields it adds to standard ones, with the API names and
# types of Salesforce Help's CPQ field references ("CPQ Quote Fields", "CPQ Quote Line Fields",
# "CPQ Subscription Fields", and the legacy data upload pages for Contract, Subscription and Quote
# Line), trimmed to what a billing sync reads. What the records mean (an amendment line carries the
# new total quantity; its subscription carries the change and revises the original) is in
# `cpq_deals.py`. Key prefixes of managed custom objects are assigned per org; these are ours.

CPQ_QUOTE_TYPES = ("Quote", "Renewal", "Amendment", "Re-Quote")
CPQ_QUOTE_STATUSES = (
    "Draft",
    "In Review",
    "Approved",
    "Denied",
    "Presented",
    "Accepted",
    "Rejected",
)
CPQ_CHARGE_TYPES = ("One-Time", "Recurring", "Usage")
CPQ_BILLING_FREQUENCIES = ("Monthly", "Quarterly", "Semiannual", "Annual", "Invoice Plan", "Usage")
# The formulas of the two fields the CPQ example mappings read; `cpq_deals.py` computes the
# same values when it generates the records. Six decimal places: a monthly price per message
# or gigabyte is a fraction of a cent, which a currency's default two places would round away.
MONTHLY_UNIT_PRICE = "SBQQ__NetPrice__c / SBQQ__ProrateMultiplier__c"
MONTHLY_AMOUNT = "SBQQ__Quantity__c * SBQQ__NetPrice__c / SBQQ__ProrateMultiplier__c"


def _cpq_objects() -> tuple[SObject, ...]:
    return (
        _sobject(
            "SBQQ__Quote__c",
            "a0Q",
            _str("Name", 80, nillable=False, auto_number=True),
            _ref("SBQQ__Account__c", "Account"),
            _ref("SBQQ__Opportunity2__c", "Opportunity"),
            Field("SBQQ__Primary__c", "boolean", nillable=False, label="Primary"),
            _pick("SBQQ__Type__c", CPQ_QUOTE_TYPES, label="Type"),
            _pick("SBQQ__Status__c", CPQ_QUOTE_STATUSES, label="Status"),
            Field("SBQQ__StartDate__c", "date", label="Start Date"),
            Field("SBQQ__EndDate__c", "date", label="End Date"),
            Field("SBQQ__SubscriptionTerm__c", "double", label="Subscription Term"),
            _ref("SBQQ__MasterContract__c", "Contract"),
            _pick("SBQQ__BillingFrequency__c", CPQ_BILLING_FREQUENCIES, label="Billing Frequency"),
            Field("SBQQ__NetAmount__c", "currency", calculated=True, label="Net Amount"),
            Field("SBQQ__LineItemCount__c", "double", calculated=True, label="Line Items"),
            Field("SBQQ__Ordered__c", "boolean", nillable=False, label="Ordered"),
            _currency_field(),
            label="Quote",
        ),
        _sobject(
            "SBQQ__QuoteLine__c",
            "a0L",
            _str("Name", 80, nillable=False, auto_number=True),
            _ref("SBQQ__Quote__c", "SBQQ__Quote__c", nillable=False),
            _ref("SBQQ__Product__c", "Product2"),
            Field("SBQQ__Number__c", "double", label="#"),
            Field("SBQQ__Quantity__c", "double", nillable=False, label="Quantity"),
            Field("SBQQ__PriorQuantity__c", "double", label="Prior Quantity"),
            Field(
                "SBQQ__EffectiveQuantity__c",
                "double",
                calculated=True,
                formula="SBQQ__Quantity__c - BLANKVALUE(SBQQ__PriorQuantity__c, 0)",
                label="Effective Quantity",
            ),
            Field("SBQQ__ListPrice__c", "currency", label="List Unit Price"),
            Field("SBQQ__NetPrice__c", "currency", label="Net Unit Price"),
            Field(
                "SBQQ__NetTotal__c",
                "currency",
                calculated=True,
                formula="SBQQ__NetPrice__c * SBQQ__EffectiveQuantity__c",
                label="Net Total",
            ),
            Field("SBQQ__ProrateMultiplier__c", "double", label="Prorate Multiplier"),
            # Usually blank: a line inherits its quote's dates through the effective ones.
            Field("SBQQ__StartDate__c", "date", label="Start Date"),
            Field("SBQQ__EndDate__c", "date", label="End Date"),
            Field(
                "SBQQ__EffectiveStartDate__c",
                "date",
                calculated=True,
                formula="BLANKVALUE(SBQQ__StartDate__c, SBQQ__Quote__r.SBQQ__StartDate__c)",
                label="Effective Start Date",
            ),
            Field(
                "SBQQ__EffectiveEndDate__c",
                "date",
                calculated=True,
                formula="BLANKVALUE(SBQQ__EndDate__c, SBQQ__Quote__r.SBQQ__EndDate__c)",
                label="Effective End Date",
            ),
            Field("SBQQ__SubscriptionTerm__c", "double", label="Subscription Term"),
            _pick("SBQQ__SubscriptionPricing__c", ("Fixed Price", "Percent Of Total")),
            _pick("SBQQ__ChargeType__c", CPQ_CHARGE_TYPES, label="Charge Type"),
            _pick("SBQQ__BillingFrequency__c", CPQ_BILLING_FREQUENCIES, label="Billing Frequency"),
            _ref("SBQQ__UpgradedSubscription__c", "SBQQ__Subscription__c"),
            _ref("SBQQ__RenewedSubscription__c", "SBQQ__Subscription__c"),
            _currency_field(),
            # The org's own formula fields for m3ter (the setup package creates them): CPQ's net
            # unit price covers the line's prorated term, m3ter prices per billing period.
            Field(
                "M3ter_Monthly_Unit_Price__c",
                "currency",
                calculated=True,
                formula=MONTHLY_UNIT_PRICE,
                scale=6,
                label="m3ter Monthly Unit Price",
            ),
            Field(
                "M3ter_Monthly_Amount__c",
                "currency",
                calculated=True,
                formula=MONTHLY_AMOUNT,
                scale=6,
                label="m3ter Monthly Amount",
            ),
            owned=False,
            label="Quote Line",
        ),
        _sobject(
            "SBQQ__Subscription__c",
            "a0S",
            _str("Name", 80, nillable=False, auto_number=True),
            _ref("SBQQ__Account__c", "Account"),
            _ref("SBQQ__Contract__c", "Contract"),
            _ref("SBQQ__Product__c", "Product2"),
            Field("SBQQ__Number__c", "double", label="#"),
            Field("SBQQ__Quantity__c", "double", nillable=False, label="Quantity"),
            Field("SBQQ__RenewalQuantity__c", "double", label="Renewal Quantity"),
            Field("SBQQ__ListPrice__c", "currency", label="List Price"),
            Field("SBQQ__NetPrice__c", "currency", label="Net Price"),
            Field("SBQQ__ProrateMultiplier__c", "double", label="Prorate Multiplier"),
            # Stored dates; the Start and End Date formulas fall back to the contract's.
            Field("SBQQ__SubscriptionStartDate__c", "date", label="Subscription Start Date"),
            Field("SBQQ__SubscriptionEndDate__c", "date", label="Subscription End Date"),
            Field(
                "SBQQ__StartDate__c",
                "date",
                calculated=True,
                formula="BLANKVALUE(SBQQ__SubscriptionStartDate__c, SBQQ__Contract__r.StartDate)",
                label="Start Date",
            ),
            Field(
                "SBQQ__EndDate__c",
                "date",
                calculated=True,
                formula="BLANKVALUE(SBQQ__SubscriptionEndDate__c, SBQQ__Contract__r.EndDate)",
                label="End Date",
            ),
            Field("SBQQ__TerminatedDate__c", "date", label="Terminated Date"),
            _ref("SBQQ__RevisedSubscription__c", "SBQQ__Subscription__c"),
            _ref("SBQQ__QuoteLine__c", "SBQQ__QuoteLine__c"),
            _ref("SBQQ__OrderProduct__c", "OrderItem"),
            _pick("SBQQ__ChargeType__c", CPQ_CHARGE_TYPES, label="Charge Type"),
            _pick("SBQQ__BillingFrequency__c", CPQ_BILLING_FREQUENCIES, label="Billing Frequency"),
            _currency_field(),
            label="Subscription",
        ),
    )


def _cpq_fields() -> dict[str, tuple[Field, ...]]:
    return {
        "Opportunity": (
            _ref("SBQQ__PrimaryQuote__c", "SBQQ__Quote__c"),
            _ref("SBQQ__AmendedContract__c", "Contract"),
            _ref("SBQQ__RenewedContract__c", "Contract"),
            Field("SBQQ__Contracted__c", "boolean", nillable=False, label="Contracted"),
            Field("SBQQ__Ordered__c", "boolean", nillable=False, label="Ordered"),
        ),
        "Contract": (
            _ref("SBQQ__Quote__c", "SBQQ__Quote__c"),
            _ref("SBQQ__Opportunity__c", "Opportunity"),
            _ref("SBQQ__Order__c", "Order"),
            _ref("SBQQ__RenewalOpportunity__c", "Opportunity"),
            Field("SBQQ__RenewalForecast__c", "boolean", nillable=False, label="Renewal Forecast"),
            Field("SBQQ__RenewalQuoted__c", "boolean", nillable=False, label="Renewal Quoted"),
            Field("SBQQ__RenewalTerm__c", "double", label="Renewal Term"),
            Field("SBQQ__AmendmentStartDate__c", "date", label="Amendment Start Date"),
        ),
        "Order": (
            _ref("SBQQ__Quote__c", "SBQQ__Quote__c"),
            Field("SBQQ__Contracted__c", "boolean", nillable=False, label="Contracted"),
            _pick("SBQQ__ContractingMethod__c", ("By Subscription End Date", "Single Contract")),
        ),
        "OrderItem": (
            _ref("SBQQ__QuoteLine__c", "SBQQ__QuoteLine__c"),
            _ref("SBQQ__Subscription__c", "SBQQ__Subscription__c"),
            _ref("SBQQ__RevisedOrderProduct__c", "OrderItem"),
            Field("SBQQ__Contracted__c", "boolean", nillable=False, label="Contracted"),
            _pick(
                "SBQQ__ContractAction__c",
                ("New", "Quantity Increase", "Quantity Decrease", "Product Swap", "Renew"),
            ),
            _pick("SBQQ__ChargeType__c", CPQ_CHARGE_TYPES, label="Charge Type"),
            _pick("SBQQ__BillingFrequency__c", CPQ_BILLING_FREQUENCIES, label="Billing Frequency"),
            Field("SBQQ__OrderedQuantity__c", "double", label="Ordered Quantity"),
        ),
    }


OrgKind = Literal["demo", "cpq"]


def org_schema(kind: OrgKind = "demo") -> OrgSchema:
    """The demo org, or the demo org with Salesforce CPQ installed; either with m3sync's
    write-back fields, as `m3sync setup salesforce` deploys them."""
    schema = demo_schema()
    if kind == "cpq":
        schema = schema.with_fields(_cpq_fields()).with_objects(_cpq_objects())
    return with_status_fields(schema)


def with_status_fields(schema: OrgSchema) -> OrgSchema:
    """The schema with the status fields of every active row of the shipped write-back table
    (`mappings/writeback.yaml`) on the objects the org has and that lack them."""
    extra: dict[str, tuple[Field, ...]] = {}
    for name, fields in status_fields().items():
        obj = schema.sobject(name)
        if obj is not None:
            extra[obj.name] = tuple(f for f in fields if obj.field(f.name) is None)
    return schema.with_fields(extra)


@cache
def status_fields() -> dict[str, tuple[Field, ...]]:
    """Object -> its write-back fields, each built from the core's definition of its role
    (`pipeline.mapping.writeback.ROLE_FIELDS`), so the org and set-up never disagree."""
    found: dict[str, tuple[Field, ...]] = {}
    for row in load_mappings(SHIPPED_MAPPINGS).writeback:
        if row.active:
            roles = row.fields().items()
            made = tuple(_role_field(name, ROLE_FIELDS[role]) for role, name in roles)
            found[row.object] = found.get(row.object, ()) + made
    return found


def _role_field(name: str, entry: Mapping[str, Any]) -> Field:
    return Field(
        name,
        entry["type"],
        label=entry.get("label") or name,
        length=int(entry.get("length") or 0),
        picklist=tuple(v["value"] for v in entry.get("picklistValues", ())),
    )


def create_table_sql(obj: SObject, schema_name: str = "org") -> str:
    """DDL for the table that holds one object's records (all fields, hidden ones included)."""
    cols = ",\n  ".join(f'"{f.name}" {f.duckdb_type}' for f in obj.fields)
    return f'CREATE TABLE IF NOT EXISTS {schema_name}."{obj.name}" (\n  {cols}\n)'


def add_columns_sql(obj: SObject, existing: frozenset[str], schema_name: str = "org") -> list[str]:
    """DDL that gives a table made before fields were added to its object (an org kept from an
    earlier start, a write-back table grown since) the columns it lacks, empty."""
    return [
        f'ALTER TABLE {schema_name}."{obj.name}" ADD COLUMN "{f.name}" {f.duckdb_type}'
        for f in obj.fields
        if f.name not in existing
    ]
