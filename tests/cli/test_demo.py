"""`m3sync demo` end to end: what m3ter holds afterwards equals an oracle computed from the org.

The demo runs once, as a user runs it (a real process, real HTTPS sockets, no mocks), and the
sandbox then serves the same state again. The Salesforce org is read with simple-salesforce and
m3ter with plain `requests`; the oracle below turns the org's records into the m3ter objects the
shipped mappings (`mappings/*.yaml`) call for, by hand, without the pipeline's own mapping,
staging or load code, so that the two only agree if the pipeline does what the mappings say.

What the oracle encodes (per-record Python; each rule names where it comes from):

- `where`: Account `Type != 'Prospect'` (SOQL: a null type passes), Contract
  `Status = 'Activated'` (without regard to case), the agreement's `Sync_To_M3ter__c` for its
  lines and commitments, `Prepayment_Amount__c != null` for commitments, and the pricing
  mapping chosen by the product's aggregation code or calculation;
- a deleted record (`IsDeleted`, read with queryAll) is a tombstone: the load end-dates the
  object it made, or makes none if there is none (DESIGN §7); the demo loads every partition in
  one run, so a record deleted in the org's history never reaches m3ter;
- fields: `code` is the record's Id, dates are `YYYY-MM-DD` for contracts and commitments and
  `...T00:00:00Z` for pricings and account plans, inclusive Salesforce ends move to the next
  day, a price becomes one band from zero, null values leave their key out (also in
  `customFields` and `address`), a null segment value is the wildcard `*`, hardcoded values
  (`daysBeforeBillDue: 30`, `commitmentFeeBillInAdvance: true` on orders, segment
  `tier: Standard` for assets); m3ter's echo of a field never given (`""`, `false`) reads as
  absent, and its date-times are compared to the second;
- m3ter's refusals: an account without an e-mail address, a reference to an object m3ter does
  not hold (so nothing referring to a refused account exists), a contract of another account,
  required dates, starts not before ends, a segment the aggregation does not define;
- product mapping resolution (`mappings/product_mappings.yaml`, the org's `ProductMapping__mdt`):
  a product's plan template by the agreement's billing frequency and currency;
- supersession (`pipeline/load/supersede.py`, README "Account plans of one product"): per
  account and m3ter product (the plan template's), an account plan ends where the next one
  starts; of two starting together the smaller code keeps the slot and the other is not loaded.
"""

from __future__ import annotations

import datetime as dt
import itertools
import json
import subprocess
from collections import defaultdict
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import duckdb
import pytest
from simple_salesforce import Salesforce

from pipeline.salesforce.session import salesforce_session
from tests.m3ter_state import M3ter, read_m3ter
from tests.processes import M3SYNC, run_demo, sandbox_process
from tests.shipped import shipped

HISTORY_DAYS = 30
ORG = ("--accounts", "20", "--seed", "4", "--history-days", str(HISTORY_DAYS))
SAMPLE = 3  # agreements of each kind compared field by field

# ---- Salesforce ---------------------------------------------------------------------------------

SOQL = {
    "Account": "Name, Type, Billing_Email__c, CurrencyIsoCode, BillingStreet, BillingCity, "
    "BillingState, BillingPostalCode, BillingCountry, Region__c, Tier__c, Industry",
    "Contract": "AccountId, ContractNumber, Status, StartDate, EndDate, Billing_Frequency__c",
    "Product2": "Name, ProductCode, M3ter_Aggregation_Code__c, M3ter_Plan_Template_Code__c, "
    "M3ter_Calculation__c, M3ter_Product_Code__c",
    "Order": "AccountId, ContractId, Name, OrderNumber, Sync_To_M3ter__c, Prepayment_Amount__c, "
    "CurrencyIsoCode, EffectiveDate, EndDate, Billing_Frequency__c",
    "OrderItem": "OrderId, Product2Id, UnitPrice, ServiceDate, EndDate",
    "Opportunity": "AccountId, ContractId, Name, Sync_To_M3ter__c, Prepayment_Amount__c, "
    "CurrencyIsoCode, Service_Start_Date__c, Service_End_Date__c, Billing_Frequency__c",
    "OpportunityLineItem": "OpportunityId, Product2Id, UnitPrice, ServiceDate, End_Date__c",
    "Quote": "AccountId, ContractId, Name, QuoteNumber, Sync_To_M3ter__c, Prepayment_Amount__c, "
    "CurrencyIsoCode, Service_Start_Date__c, Service_End_Date__c, Billing_Frequency__c",
    "QuoteLineItem": "QuoteId, Product2Id, UnitPrice, ServiceDate, End_Date__c",
    "Asset": "AccountId, Product2Id, SerialNumber, Price, InstallDate, UsageEndDate, "
    "Sync_To_M3ter__c, CurrencyIsoCode",
}
# Custom metadata has no IsDeleted and is read with query, not queryAll.
METADATA_SOQL = {
    "ProductMapping__mdt": "DeveloperName, Product_Code__c, Billing_Frequency__c, Currency__c, "
    "Plan_Template_Code__c, Active__c",
}
Org = dict[str, dict[str, dict[str, Any]]]  # object -> Id -> record


def read_org(info: dict[str, Any]) -> Org:
    """Every record of the objects the mappings read, deleted ones included (queryAll)."""
    sf = Salesforce(
        username=info["username"],
        password=info["password"],
        security_token=info["security_token"],
        session=salesforce_session(info["ca_file"], login_url=info["url"]),
    )
    org: Org = {}
    for sobject, fields in SOQL.items():
        answer = sf.query_all(
            f"SELECT Id, IsDeleted, {fields} FROM {sobject}", include_deleted=True
        )
        org[sobject] = {
            r["Id"]: {k: v for k, v in r.items() if k != "attributes"} for r in answer["records"]
        }
    for sobject, fields in METADATA_SOQL.items():
        answer = sf.query_all(f"SELECT Id, {fields} FROM {sobject}")
        org[sobject] = {
            r["Id"]: {k: v for k, v in r.items() if k != "attributes"} for r in answer["records"]
        }
    return org


# ---- m3ter --------------------------------------------------------------------------------------

# ---- m3ter's objects, as the oracle writes them -----------------------------------------------

Key = tuple[str, str]  # (collection, code); commitments: ("commitments", "<Object>/<Id>")
Objects = dict[Key, dict[str, Any]]

# m3ter's reference fields, and the field holding the referenced object's code in our shape.
REFERENCES = {
    "accountId": ("accounts", "accountCode"),
    "contractId": ("contracts", "contractCode"),
    "planId": ("plans", "planCode"),
    "planTemplateId": ("plantemplates", "planTemplateCode"),
    "aggregationId": ("aggregations", "aggregationCode"),
    "compoundAggregationId": ("compoundaggregations", "compoundAggregationCode"),
}
# The fields the shipped mappings decide, per collection (m3ter's own, such as id, version,
# dtCreated or a computed productId, are not compared).
MAPPED = {
    "accounts": (
        "code",
        "name",
        "emailAddress",
        "currency",
        "address",
        "daysBeforeBillDue",
        "customFields",
    ),
    "contracts": ("code", "name", "accountId", "startDate", "endDate", "customFields"),
    "plans": ("code", "name", "planTemplateId", "customFields"),
    "pricings": (
        "code",
        "planId",
        "aggregationId",
        "compoundAggregationId",
        "startDate",
        "endDate",
        "pricingBands",
        "cumulative",
        "segment",
    ),
    "accountplans": ("code", "accountId", "planId", "contractId", "startDate", "endDate"),
    "commitments": (
        "accountId",
        "contractId",
        "amount",
        "currency",
        "startDate",
        "endDate",
        "commitmentFeeBillInAdvance",
    ),
}


def actual_objects(state: M3ter) -> Objects:
    """m3ter's objects in the oracle's shape: references as codes, commitments keyed by the
    ExternalMapping that names their Salesforce record, numbers as floats."""
    codes = {
        collection: {o["id"]: o.get("code") for o in state[collection]}
        for collection in {c for c, _ in REFERENCES.values()}
    }
    external = {
        m["m3terId"]: f"{m['externalTable']}/{m['externalId']}"
        for m in state["externalmappings"]
        if m["externalSystem"] == "Salesforce" and m["m3terEntity"] == "Commitment"
    }
    found: Objects = {}
    for collection, names in MAPPED.items():
        for obj in state[collection]:
            shaped: dict[str, Any] = {}
            for name in names:
                value = obj.get(name)
                if name in REFERENCES and value is not None:
                    target, renamed = REFERENCES[name]
                    shaped[renamed] = codes[target].get(value, f"(unknown id {value})")
                elif name == "segment":
                    shaped[name] = value or {}  # m3ter answers an unsegmented pricing's as {}
                elif name == "pricingBands":
                    shaped[name] = [
                        {k: float(band[k]) for k in ("lowerLimit", "fixedPrice", "unitPrice")}
                        for band in value or []
                    ]
                elif name == "address" and value is not None:
                    shaped[name] = compact({k: unechoed(v) for k, v in value.items()}) or None
                elif name == "amount" and value is not None:
                    shaped[name] = float(value)
                else:
                    shaped[name] = unechoed(value)
            code = obj.get("code") if collection != "commitments" else external.get(obj["id"])
            found[(collection, code or f"(no code: id {obj['id']})")] = compact(shaped)
    return found


def unechoed(value: Any) -> Any:
    """What m3ter answers for a field never given (`""`, `false`) read as absent, and its
    date-times (`...T00:00:00.000Z`) to the second, as the oracle writes them."""
    if value == "" or value is False:
        return None
    if isinstance(value, str) and value.endswith(".000Z") and "T" in value:
        return value.removesuffix(".000Z") + "Z"
    return value


def compact(values: dict[str, Any]) -> dict[str, Any]:
    """Null values leave their key out, as they do in what the pipeline sends."""
    return {k: v for k, v in values.items() if v is not None}


# ---- the oracle ---------------------------------------------------------------------------------

REGION_TIER = frozenset({"api_calls", "compute_hours"})
REGION = frozenset({"gatewayRequests", "storage_gb", "inference_calls"})
TIER = frozenset({"active_users", "support_hours"})
UNSEGMENTED = frozenset({"transfer_gb", "messages_sent", "support_tickets"})


@dataclass(frozen=True)
class Agreement:
    """How one kind of Salesforce agreement reads (mappings/*.yaml, per source object)."""

    header: str  # Order, Opportunity, Quote, Asset
    line: str  # OrderItem, ... (Asset: the asset is its own line)
    parent: str | None  # the line's lookup to its header
    price: str
    start: str
    end: str
    plan_field: str  # the plan's custom field
    plan_value: str  # ... and the header field it takes
    commitment_dates: tuple[str, str] | None = None  # the header's service start and end
    tier_literal: bool = False  # asset pricings segment on tier 'Standard', not the account's


AGREEMENTS = {
    "Order": Agreement(
        "Order",
        "OrderItem",
        "OrderId",
        "UnitPrice",
        "ServiceDate",
        "EndDate",
        "salesforceOrderNumber",
        "OrderNumber",
        ("EffectiveDate", "EndDate"),
    ),
    "Opportunity": Agreement(
        "Opportunity",
        "OpportunityLineItem",
        "OpportunityId",
        "UnitPrice",
        "ServiceDate",
        "End_Date__c",
        "salesforceOpportunity",
        "Name",
        ("Service_Start_Date__c", "Service_End_Date__c"),
    ),
    "Quote": Agreement(
        "Quote",
        "QuoteLineItem",
        "QuoteId",
        "UnitPrice",
        "ServiceDate",
        "End_Date__c",
        "salesforceQuoteNumber",
        "QuoteNumber",
        ("Service_Start_Date__c", "Service_End_Date__c"),
    ),
    "Asset": Agreement(
        "Asset",
        "Asset",
        None,
        "Price",
        "InstallDate",
        "UsageEndDate",
        "serialNumber",
        "SerialNumber",
        tier_literal=True,
    ),
}


def next_day(day: str | None) -> str | None:
    """An inclusive Salesforce end date as m3ter's exclusive one."""
    return None if day is None else (dt.date.fromisoformat(day) + dt.timedelta(days=1)).isoformat()


def instant(day: str | None) -> str | None:
    return None if day is None else f"{day}T00:00:00Z"


def ordered(start: str | None, end: str | None) -> bool:
    """m3ter needs a start, and an end (exclusive) after it when there is one."""
    return start is not None and (end is None or start < end)


@dataclass
class Oracle:
    """The m3ter objects the org's records call for, and why some are not there."""

    objects: Objects = field(default_factory=dict)
    # account plan code -> the code of the account plan whose start ends it
    superseded_by: dict[str, str] = field(default_factory=dict)
    # account plan code -> the code that keeps the slot they both start in
    rivals: dict[str, str] = field(default_factory=dict)
    # line Id -> its pricing, for every line a pricing mapping takes
    lines: dict[str, dict[str, Any]] = field(default_factory=dict)
    # the lines m3ter must bill: an account plan on the line's plan over its service period (or
    # until a later agreement of the account for the product supersedes it)
    billable: set[str] = field(default_factory=set)

    def get(self, key: Key) -> dict[str, Any] | None:
        return self.objects.get(key)


def lines_of(org: Org, kind: Agreement) -> Iterator[tuple[dict[str, Any], dict[str, Any]]]:
    """(line, header) pairs of one kind of agreement."""
    for line in org[kind.line].values():
        header = line if kind.parent is None else org[kind.header].get(line[kind.parent])
        if header is not None:
            yield line, header


def object_code(
    kind: Agreement, line: dict[str, Any], header: dict[str, Any], product: dict[str, Any]
) -> str | None:
    """The code of the plan and account plan a line bills on: its agreement's and product's
    (`{OrderId}_{Product2.M3ter_Product_Code__c}`), or an Asset's own Id."""
    if kind.parent is None:
        return line["Id"]
    code = product["M3ter_Product_Code__c"]
    return None if code is None else f"{header['Id']}_{code}"


def plan_template(
    org: Org, product: dict[str, Any], header: dict[str, Any], kind: Agreement
) -> str | None:
    """product_mappings.yaml: the template of the most specific active row for the product,
    the agreement's billing frequency (a frequency outranks a currency) and its currency, else
    the product's own (plans.yaml)."""
    frequency = (header.get("Billing_Frequency__c") or "").lower() if kind.parent else ""
    currency = header.get("CurrencyIsoCode") or ""
    best: tuple[int, str] | None = None
    for row in org["ProductMapping__mdt"].values():
        if not row["Active__c"] or row["Product_Code__c"] != product["ProductCode"]:
            continue
        if row["Billing_Frequency__c"] and row["Billing_Frequency__c"].lower() != frequency:
            continue
        if row["Currency__c"] and row["Currency__c"] != currency:
            continue
        rank = 2 * bool(row["Billing_Frequency__c"]) + bool(row["Currency__c"])
        if best is None or rank > best[0]:
            best = (rank, row["Plan_Template_Code__c"])
    return best[1] if best else product["M3ter_Plan_Template_Code__c"]


def taken(record: dict[str, Any], header: dict[str, Any]) -> bool:
    """The mappings take a line when neither it nor its agreement is deleted and the agreement
    says Sync_To_M3ter__c (a deleted record is a tombstone, and m3ter never held it)."""
    return not record["IsDeleted"] and not header["IsDeleted"] and header["Sync_To_M3ter__c"]


def segment_of(
    aggregation: str, account: dict[str, Any] | None, tier_literal: bool
) -> dict[str, str] | None:
    """pricings.yaml: the segment of the pricing mapping the aggregation code selects."""
    # A blank Salesforce value is m3ter's wildcard, sent as `*`.
    region = (account or {}).get("Region__c") or "*"
    tier = "Standard" if tier_literal else (account or {}).get("Tier__c") or "*"
    if aggregation in REGION_TIER:
        return {"region": region, "tier": tier}
    if aggregation in REGION:
        return {"region": region}
    if aggregation in TIER:
        return {"tier": tier}
    return None


def segment_defined(aggregation: dict[str, Any], segment: dict[str, str] | None) -> bool:
    """m3ter prices only segments its aggregation defines, every segmented field given."""
    fields = aggregation.get("segmentedFields") or []
    if not fields:
        return not segment
    return segment is not None and any(s == segment for s in aggregation["segments"])


def build_oracle(org: Org, state: M3ter) -> Oracle:
    """The m3ter objects `org` calls for under the shipped mappings, written out by hand.

    From m3ter it reads only the reference configuration it was seeded with (plan templates'
    products, aggregations' segments), never what the pipeline wrote.
    """
    oracle = Oracle()
    out = oracle.objects
    products = org["Product2"]
    template_product = {t["code"]: t["productId"] for t in state["plantemplates"]}
    aggregations = {a["code"]: a for a in state["aggregations"]}

    # accounts.yaml: Type != 'Prospect' (SOQL keeps a null type); m3ter needs an e-mail address.
    for a in org["Account"].values():
        prospect = (a["Type"] or "").lower() == "prospect"
        if a["IsDeleted"] or prospect or not a["Billing_Email__c"]:
            continue
        address = {
            "addressLine1": a["BillingStreet"],
            "locality": a["BillingCity"],
            "region": a["BillingState"],
            "postCode": a["BillingPostalCode"],
            "country": a["BillingCountry"],
        }
        out[("accounts", a["Id"])] = compact(
            {
                "code": a["Id"],
                "name": a["Name"],
                "emailAddress": a["Billing_Email__c"],
                "currency": a["CurrencyIsoCode"],
                "address": compact(address) or None,
                "daysBeforeBillDue": 30,
                "customFields": compact(
                    {"region": a["Region__c"], "tier": a["Tier__c"], "industry": a["Industry"]}
                ),
            }
        )

    def has(collection: str, code: str | None) -> bool:
        return code is None or (collection, code) in out

    def contract_of(account: str, contract: str | None) -> bool:
        """m3ter: a linked contract must exist and belong to the same account."""
        if contract is None:
            return True
        return has("contracts", contract) and org["Contract"][contract]["AccountId"] == account

    # contracts.yaml: Status = 'Activated'; m3ter needs the account and both dates in order.
    for c in org["Contract"].values():
        end = next_day(c["EndDate"])
        if c["IsDeleted"] or (c["Status"] or "").lower() != "activated":
            continue
        if not has("accounts", c["AccountId"]) or end is None or not ordered(c["StartDate"], end):
            continue
        out[("contracts", c["Id"])] = compact(
            {
                "code": c["Id"],
                "name": c["ContractNumber"],
                "accountCode": c["AccountId"],
                "startDate": c["StartDate"],
                "endDate": end,
                "customFields": compact({"billingFrequency": c["Billing_Frequency__c"]}),
            }
        )

    # plans.yaml and pricings.yaml: Orders, Opportunities and Quotes at agreement level (one plan
    # and one account plan per agreement and m3ter product, a pricing per line on that plan);
    # an Asset is an agreement of its own. Account plans are collected for supersession.
    members: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for kind in AGREEMENTS.values():
        for line, header in lines_of(org, kind):
            product = products.get(line["Product2Id"] or "")
            if not taken(line, header) or product is None:
                continue
            group = object_code(kind, line, header, product)
            if group is None:
                continue
            template = plan_template(org, product, header, kind)
            if template is not None:
                name = product["Name"]
                if kind.parent is not None:
                    name = f"{header['Name']}: {product['M3ter_Product_Code__c']}"
                out[("plans", group)] = {
                    "code": group,
                    "name": name,
                    "planTemplateCode": template,
                    "customFields": compact({kind.plan_field: header[kind.plan_value]}),
                }
            account = org["Account"].get(header["AccountId"] or "")
            start, end = instant(line[kind.start]), instant(next_day(line[kind.end]))
            code = product["M3ter_Aggregation_Code__c"]
            pricing: dict[str, Any] = {
                "code": line["Id"],
                "planCode": group,
                "startDate": start,
                "endDate": end,
                "pricingBands": [
                    {
                        "lowerLimit": 0.0,
                        "fixedPrice": 0.0,
                        "unitPrice": float(line[kind.price] or 0),
                    }
                ],
                # `cumulative: false` (hardcoded) is what m3ter answers for it unset: not compared
            }
            if product["M3ter_Calculation__c"] is not None:
                pricing.update(compoundAggregationCode=code, segment={})
            elif code in REGION_TIER | REGION | TIER | UNSEGMENTED:
                segment = segment_of(code, account, kind.tier_literal)
                pricing.update(aggregationCode=code, segment=segment or {})
                if not segment_defined(aggregations[code], segment):
                    pricing = {}
            else:
                pricing = {}
            if pricing and ordered(start, end) and template is not None:
                out[("pricings", line["Id"])] = compact(pricing)
                oracle.lines[line["Id"]] = pricing
            if ordered(start, end) and template is not None:
                members[group].append(
                    {
                        "code": group,
                        "accountCode": header["AccountId"],
                        "planCode": group,
                        "startDate": start,
                        "endDate": end,
                        "contractCode": header.get("ContractId") if kind.parent else None,
                        "_product": template_product.get(template, f"template:{template}"),
                    }
                )
    # combine: the first line's start, the last line's end (an open end is the latest)
    candidates = []
    for rows in members.values():
        ends = [row["endDate"] for row in rows]
        candidates.append(
            {
                **rows[0],
                "startDate": min(row["startDate"] for row in rows),
                "endDate": None if None in ends else max(ends),
            }
        )

    # account_plans.yaml, with supersession per account and product over every staged one.
    groups: dict[tuple[str, str], list[dict[str, Any]]] = defaultdict(list)
    for plan in candidates:
        groups[(plan["accountCode"], plan["_product"])].append(plan)
    for group in groups.values():
        group.sort(key=lambda p: (p["startDate"], p["code"]))
        holders = []
        for plan in group:
            if holders and holders[-1]["startDate"] == plan["startDate"]:
                oracle.rivals[plan["code"]] = holders[-1]["code"]
            else:
                holders.append(plan)
        for plan, successor in itertools.pairwise(holders):
            if plan["endDate"] is None or plan["endDate"] > successor["startDate"]:
                plan["endDate"] = successor["startDate"]
                oracle.superseded_by[plan["code"]] = successor["code"]
        for plan in holders:
            account, contract = plan["accountCode"], plan["contractCode"]
            refers = has("accounts", account) and has("plans", plan["planCode"])
            if refers and contract_of(account, contract):
                shaped = {k: v for k, v in plan.items() if k != "_product"}
                out[("accountplans", plan["code"])] = compact(shaped)

    for line_id, pricing in oracle.lines.items():
        group = pricing["planCode"]
        held = out.get(("accountplans", group))
        if held is None or ("pricings", line_id) not in out or ("plans", group) not in out:
            continue
        end, held_end = pricing.get("endDate"), held.get("endDate")
        covers = held_end is None or (end is not None and held_end >= end)
        if held["startDate"] <= pricing["startDate"] and (covers or group in oracle.superseded_by):
            oracle.billable.add(line_id)

    # commitments.yaml: synced agreements with a prepayment; matched by their ExternalMapping.
    for kind in AGREEMENTS.values():
        if kind.commitment_dates is None:
            continue
        for h in org[kind.header].values():
            if h["IsDeleted"] or not h["Sync_To_M3ter__c"] or h["Prepayment_Amount__c"] is None:
                continue
            start, end = h[kind.commitment_dates[0]], next_day(h[kind.commitment_dates[1]])
            account, contract = h["AccountId"], h["ContractId"]
            if end is None or not ordered(start, end) or not h["Prepayment_Amount__c"] > 0:
                continue
            if not has("accounts", account) or not contract_of(account, contract):
                continue
            out[("commitments", f"{kind.header}/{h['Id']}")] = compact(
                {
                    "accountCode": account,
                    "contractCode": contract,
                    "amount": float(h["Prepayment_Amount__c"]),
                    "currency": h["CurrencyIsoCode"],
                    "startDate": start,
                    "endDate": end,
                    "commitmentFeeBillInAdvance": True if kind.header == "Order" else None,
                }
            )
    return oracle


# ---- the demo, once -----------------------------------------------------------------------------


@dataclass
class Demo:
    root: Path
    result: subprocess.CompletedProcess[str]
    env: dict[str, str]
    sandbox: dict[str, Any]  # the serving sandbox's sandbox.json
    org: Org
    oracle: Oracle
    actual: Objects
    state: M3ter


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Demo]:
    """`m3sync demo --no-serve` over the demo org, then `m3sync sandbox up` on its state."""
    root = tmp_path_factory.mktemp("demo")
    result, env = run_demo(root, *ORG)
    if result.returncode != 0:
        pytest.fail(f"m3sync demo failed:\n{result.stdout}\n{result.stderr}")
    demo_org = json.loads((root / "sandbox" / "sandbox.json").read_text())["salesforce"]
    with sandbox_process(root / "sandbox", *ORG) as (_, info):
        # The org is regenerated when its date changes: a run across midnight UTC compares
        # m3ter with another org.
        assert info["salesforce"]["history_from"] == demo_org["history_from"], "new day, new org"
        org = read_org(info["salesforce"])
        state = read_m3ter(info["m3ter"])
        oracle = build_oracle(org, state)
        yield Demo(root, result, env, info, org, oracle, actual_objects(state), state)


# ---- comparing ----------------------------------------------------------------------------------


def objects_of(org: Org, header: str, header_id: str) -> list[Key]:
    """Every m3ter object one agreement may make: a plan and account plan per m3ter product (an
    Asset's own), a pricing per line, its commitment, its account and its contract."""
    kind = AGREEMENTS[header]
    record = org[header][header_id]
    keys: list[Key] = []
    for line, h in sorted(lines_of(org, kind), key=lambda pair: pair[0]["Id"]):
        if h["Id"] != header_id:
            continue
        keys.append(("pricings", line["Id"]))
        product = org["Product2"].get(line["Product2Id"] or "")
        group = object_code(kind, line, h, product) if product else None
        if group is not None:
            keys += [("plans", group), ("accountplans", group)]
    if kind.commitment_dates is not None:
        keys.append(("commitments", f"{header}/{header_id}"))
    keys.append(("accounts", record["AccountId"]))
    if record.get("ContractId"):
        keys.append(("contracts", record["ContractId"]))
    return keys


def compare(demo: Demo, keys: Iterable[Key]) -> None:
    """m3ter holds exactly what the oracle says for each key (None: no such object)."""
    keys = list(dict.fromkeys(keys))
    expected = {key: demo.oracle.get(key) for key in keys}
    actual = {key: demo.actual.get(key) for key in keys}
    assert actual == expected


def synced(demo: Demo, header: str) -> list[str]:
    """Live agreements of a kind that are flagged for m3ter and have lines, first Ids first."""
    kind = AGREEMENTS[header]
    with_lines = {h["Id"] for line, h in lines_of(demo.org, kind) if not line["IsDeleted"]}
    return sorted(
        h["Id"]
        for h in demo.org[header].values()
        if not h["IsDeleted"] and h["Sync_To_M3ter__c"] and h["Id"] in with_lines
    )


def assert_agreements_match(demo: Demo, header: str) -> None:
    sample = synced(demo, header)[:SAMPLE]
    assert len(sample) == SAMPLE, f"the demo org has fewer than {SAMPLE} synced {header}s"
    keys = [key for header_id in sample for key in objects_of(demo.org, header, header_id)]
    # The sample must bill something: plans, pricings and account plans the oracle expects.
    made = {key[0] for key in keys if key in demo.oracle.objects}
    assert {"plans", "pricings", "accountplans", "accounts"} <= made
    compare(demo, keys)


# ---- the tests ----------------------------------------------------------------------------------


def test_demo_extracts_stages_and_loads_the_demo_org(demo: Demo):
    out = demo.result.stdout
    assert demo.result.returncode == 0, out + demo.result.stderr
    assert "raw.order_item" in out and "raw.product2" in out
    catalog = duckdb.connect(str(demo.root / "warehouse" / "warehouse.duckdb"), read_only=True)
    try:
        tables = ("account", "order", "order_item", "opportunity", "quote", "asset", "contract")
        rows = sum(catalog.execute(f"SELECT count(*) FROM raw.{t}").fetchone()[0] for t in tables)
        assert rows > 0
        raw = catalog.execute(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = 'raw'"
        ).fetchall()
        assert {name for (name,) in raw} == {obj.table for obj in shipped().objects}
        applied = catalog.execute(
            "SELECT count(*) FROM load.journal WHERE status = 'applied'"
        ).fetchone()[0]
    finally:
        catalog.close()
    assert "staged.pricings" in out and "Load into m3ter" in out
    assert applied > 0
    assert (demo.root / "dagster" / "dagster.yaml").exists()
    assert "m3sync ui --sandbox" in out


def test_m3ter_holds_exactly_the_objects_the_oracle_expects(demo: Demo):
    """Beyond the samples: no object missing, none extra, and none with another value."""
    keys = sorted(set(demo.oracle.objects) | set(demo.actual))
    wrong = [k for k in keys if demo.oracle.get(k) != demo.actual.get(k)]
    shown = [f"{k}: m3ter {demo.actual.get(k)} != oracle {demo.oracle.get(k)}" for k in wrong[:5]]
    assert not wrong, f"{len(wrong)} of {len(keys)} objects differ, e.g.\n" + "\n".join(shown)


def test_order_items_become_plans_pricings_and_account_plans(demo: Demo):
    assert_agreements_match(demo, "Order")


def test_opportunity_line_items_become_plans_pricings_and_account_plans(demo: Demo):
    assert_agreements_match(demo, "Opportunity")


def test_quote_line_items_become_plans_pricings_and_account_plans(demo: Demo):
    assert_agreements_match(demo, "Quote")


def test_assets_become_plans_pricings_and_account_plans(demo: Demo):
    assert_agreements_match(demo, "Asset")


def test_accounts_become_m3ter_accounts(demo: Demo):
    live = sorted(
        a["Id"]
        for a in demo.org["Account"].values()
        if not a["IsDeleted"] and a["Type"] != "Prospect" and a["Billing_Email__c"]
    )
    # With and without a region or tier (custom fields leave null keys out).
    blank = [i for i in live if not demo.org["Account"][i]["Region__c"]]
    blank += [i for i in live if not demo.org["Account"][i]["Tier__c"]]
    assert blank, "the demo org has no account with a blank region or tier"
    compare(demo, [("accounts", i) for i in [*live[:SAMPLE], *blank[:2]]])


def test_activated_contracts_become_m3ter_contracts(demo: Demo):
    activated = sorted(
        c["Id"]
        for c in demo.org["Contract"].values()
        if not c["IsDeleted"] and c["Status"] == "Activated"
    )
    assert len(activated) >= SAMPLE
    compare(demo, [("contracts", i) for i in activated[:SAMPLE]])


def test_contracts_not_activated_are_not_in_m3ter(demo: Demo):
    drafts = sorted(
        c["Id"]
        for c in demo.org["Contract"].values()
        if not c["IsDeleted"] and c["Status"] != "Activated"
    )
    assert drafts, "the demo org has no contract that is not activated"
    assert all(demo.oracle.get(("contracts", i)) is None for i in drafts)
    compare(demo, [("contracts", i) for i in drafts])


def test_prepayments_become_commitments_keyed_by_their_external_mapping(demo: Demo):
    keys = []
    for header in ("Order", "Opportunity", "Quote"):
        prepaid = [
            i
            for i in synced(demo, header)
            if demo.org[header][i]["Prepayment_Amount__c"] is not None
        ]
        assert prepaid, f"the demo org has no synced {header} with a prepayment"
        keys += [("commitments", f"{header}/{i}") for i in prepaid[:2]]
    made = {code.split("/")[0] for collection, code in keys if demo.oracle.get((collection, code))}
    assert made == {"Order", "Opportunity", "Quote"}
    compare(demo, keys)


def test_prospects_and_accounts_without_email_are_not_in_m3ter(demo: Demo):
    org = demo.org
    prospects = sorted(a["Id"] for a in org["Account"].values() if a["Type"] == "Prospect")
    no_email = sorted(
        a["Id"] for a in org["Account"].values() if not a["IsDeleted"] and not a["Billing_Email__c"]
    )
    assert prospects and no_email, "the demo org lacks a prospect or an account without e-mail"
    refused = [("accounts", i) for i in [*prospects, *no_email]]
    # Nothing that refers to the refused account exists either: its contracts, account plans and
    # commitments. The plans and pricings of its deals do exist, as they refer to no account.
    deals = [
        key
        for header in AGREEMENTS
        for h in org[header].values()
        if h["AccountId"] in no_email and taken(h, h)
        for key in objects_of(org, header, h["Id"])
    ]
    referring = [
        ("contracts", c["Id"]) for c in org["Contract"].values() if c["AccountId"] in no_email
    ]
    referring += [k for k in deals if k[0] in ("accountplans", "commitments")]
    assert any(k[0] == "accountplans" for k in referring), "the account has no synced deal"
    assert all(demo.oracle.get(k) is None for k in [*refused, *referring])
    compare(demo, [*refused, *referring, *deals])


def source_of(org: Org, code: str) -> str:
    """The kind of line an account plan code comes from: an Asset's Id, or an agreement's Id
    and a product code."""
    record = code.split("_", 1)[0]
    return next(
        kind.line
        for kind in AGREEMENTS.values()
        if record in org[kind.header] or record in org[kind.line]
    )


def first_of_each_source(org: Org, codes: Iterable[str]) -> list[str]:
    """The first code of each kind of line, so every source kind is sampled."""
    firsts: dict[str, str] = {}
    for code in sorted(codes):
        firsts.setdefault(source_of(org, code), code)
    return sorted(firsts.values())


def test_superseded_account_plans_end_where_the_next_begins(demo: Demo):
    oracle = demo.oracle
    cut = [code for code in oracle.superseded_by if oracle.get(("accountplans", code))]
    sample = first_of_each_source(demo.org, cut)
    assert sample, "the demo org has no overlapping account plans of one account and product"
    for code in sample:
        plan, successor = oracle.objects[("accountplans", code)], oracle.superseded_by[code]
        assert plan["endDate"] == oracle.objects[("accountplans", successor)]["startDate"]
    compare(
        demo, [("accountplans", c) for code in sample for c in (code, oracle.superseded_by[code])]
    )


def test_account_plans_starting_together_keep_the_smaller_code(demo: Demo):
    oracle = demo.oracle
    rivals = [
        code for code, holder in oracle.rivals.items() if oracle.get(("accountplans", holder))
    ]
    sample = first_of_each_source(demo.org, rivals)
    assert sample, "the demo org has no account plans of one product starting together"
    assert all(oracle.rivals[code] < code for code in sample)
    keys = [("accountplans", c) for code in sample for c in (code, oracle.rivals[code])]
    # The loser's plan is still made: only the account plan competes for the slot.
    keys += [("plans", code) for code in sample]
    compare(demo, keys)


def test_deleted_deal_records_leave_nothing_in_m3ter(demo: Demo):
    org, keys = demo.org, []
    for header, kind in AGREEMENTS.items():
        # A deleted agreement that was flagged for m3ter: none of its objects may exist.
        gone = sorted(
            h["Id"] for h in org[header].values() if h["IsDeleted"] and h["Sync_To_M3ter__c"]
        )
        keys += [k for i in gone[:2] for k in objects_of(org, header, i) if k[0] != "accounts"]
        if kind.parent is not None:
            # A deleted line of a live, synced agreement: its siblings are loaded, it is not.
            lines = sorted(
                line["Id"]
                for line, h in lines_of(org, kind)
                if line["IsDeleted"] and not h["IsDeleted"] and h["Sync_To_M3ter__c"]
            )
            keys += [("pricings", i) for i in lines[:2]]
    records = [k for k in keys if k[0] in ("plans", "pricings", "accountplans", "commitments")]
    assert len(records) >= 6, "the demo org has too few deleted synced deal records"
    assert all(demo.oracle.get(k) is None for k in records)
    compare(demo, keys)


def test_agreements_not_flagged_for_sync_are_not_in_m3ter(demo: Demo):
    keys = []
    for header in AGREEMENTS:
        unflagged = sorted(
            h["Id"]
            for h in demo.org[header].values()
            if not h["IsDeleted"] and not h["Sync_To_M3ter__c"]
        )
        keys += [k for i in unflagged[:2] for k in objects_of(demo.org, header, i)]
    assert sum(1 for k in keys if k[0] == "plans") >= 4
    compare(demo, keys)


# ---- billing -------------------------------------------------------------------------------------


def billed_lines(demo: Demo) -> set[str]:
    """The lines m3ter bills, read from m3ter's objects alone: a pricing whose plan an account
    plan attaches from the pricing's start to its end, or to where the account's next account
    plan for the same m3ter product begins."""
    actual, state = demo.actual, demo.state
    product_of_template = {t["code"]: t["productId"] for t in state["plantemplates"]}
    plans = {code: obj for (collection, code), obj in actual.items() if collection == "plans"}
    held = [obj for (collection, _), obj in actual.items() if collection == "accountplans"]

    def product(account_plan: dict[str, Any]) -> str | None:
        plan = plans.get(account_plan["planCode"], {})
        return product_of_template.get(plan.get("planTemplateCode"))

    starts = {(p["accountCode"], product(p), p["startDate"]) for p in held}
    billed = set()
    for (collection, code), pricing in actual.items():
        if collection != "pricings" or pricing.get("planCode") not in plans:
            continue
        end = pricing.get("endDate")
        for p in held:
            if p["planCode"] != pricing["planCode"] or p["startDate"] > pricing["startDate"]:
                continue
            held_end = p.get("endDate")
            superseded = (p["accountCode"], product(p), held_end) in starts
            if held_end is None or (end is not None and held_end >= end) or superseded:
                billed.add(code)
    return billed


def coverage_rows(demo: Demo) -> list[tuple[Any, ...]]:
    catalog = duckdb.connect(str(demo.root / "warehouse" / "warehouse.duckdb"), read_only=True)
    try:
        return catalog.execute(
            "SELECT source_id, billable, root_entity, reason FROM load.coverage"
        ).fetchall()
    finally:
        catalog.close()


def test_m3ter_bills_exactly_the_lines_the_oracle_expects(demo: Demo):
    billed = billed_lines(demo)
    assert billed == demo.oracle.billable
    # Lines of one agreement that bill one m3ter product share its plan, and all bill.
    shared = defaultdict(list)
    for line_id, pricing in demo.oracle.lines.items():
        shared[pricing["planCode"]].append(line_id)
    together = [ids for ids in shared.values() if len(ids) > 1]
    assert together, "no agreement of the demo org sells two products of one m3ter product"
    assert any(set(ids) <= billed for ids in together)


def test_coverage_says_which_lines_bill_as_m3ter_does(demo: Demo):
    rows = coverage_rows(demo)
    assert {source for source, billable, _, _ in rows if billable} == billed_lines(demo)
    assert all(reason for _, billable, _, reason in rows if not billable)


def test_no_line_is_lost_to_the_way_deals_are_modelled(demo: Demo):
    """Every line that does not bill is explained by the org's data: a refused account, two
    agreements of one account starting the same product on the same day; never a line of an
    agreement that another line of it displaces."""
    unbilled = [(root, reason) for _, billable, root, reason in coverage_rows(demo) if not billable]
    assert all("sync_level agreement" not in reason for _, reason in unbilled)
    assert all("not over the line" not in reason for _, reason in unbilled)
    assert {root for root, _ in unbilled} <= {"accounts", "account_plans"}


def test_products_sold_annually_or_in_euros_bill_on_their_own_plan_templates(demo: Demo):
    templates = {obj["planTemplateCode"] for (c, _), obj in demo.actual.items() if c == "plans"}
    assert {"api_platform_annual", "api_platform_eur"} & templates
    assert "api_platform_standard" in templates
    plans = [k for k in demo.oracle.objects if k[0] == "plans"]
    resolved = [
        k for k in plans if demo.oracle.objects[k]["planTemplateCode"].endswith(("_annual", "_eur"))
    ]
    assert resolved, "the demo org sells no resolved product annually or in euros"
    compare(demo, resolved[:10])


def test_the_coverage_command_reports_what_the_demo_summary_does(demo: Demo):
    summary = next(
        line for line in demo.result.stdout.splitlines() if line.startswith("Billing coverage")
    )
    result = subprocess.run(
        [
            M3SYNC,
            "coverage",
            "--by",
            "month",
            "--sandbox",
            str(demo.root / "sandbox" / "sandbox.json"),
            "--warehouse",
            str(demo.root / "warehouse"),
        ],
        capture_output=True,
        text=True,
        check=False,
        env=demo.env,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert summary in result.stdout
    assert "Billing coverage by month" in result.stdout
    catalog = duckdb.connect(str(demo.root / "warehouse" / "warehouse.duckdb"), read_only=True)
    try:
        months = [
            m for (m,) in catalog.execute("SELECT DISTINCT month FROM load.coverage").fetchall()
        ]
    finally:
        catalog.close()
    assert months and all(month in result.stdout for month in months if month)
