"""`m3sync doctor`: every precondition of a run against a configured org and m3ter organization,
checked before the first run finds it missing, one line each.

A check that needs an earlier one (a login, compiled mappings) is left out when that one fails:
its failure is the line to fix first.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from pipeline.extract.errors import FieldNotFound
from pipeline.extract.plan import resolve_path
from pipeline.load.entities import ENTITIES as LOAD_ENTITIES
from pipeline.m3ter.client import M3terClient
from pipeline.m3ter.errors import M3terError, M3terForbidden
from pipeline.m3ter.settings import M3terSettings
from pipeline.mapping.compiler import CompiledSet, MappingCompileError, compile_mappings
from pipeline.mapping.errors import MappingError
from pipeline.mapping.source import MappingSource, writeback_on
from pipeline.mapping.spec import MappingSet
from pipeline.mapping.templates import is_template
from pipeline.salesforce.client import SalesforceClient
from pipeline.salesforce.errors import SalesforceExtractError
from pipeline.salesforce.settings import SalesforceSettings
from pipeline.setup.package import read_fields

# Collections the load refers to by code but never writes: they must exist before a run.
CATALOGUE = ("products", "meters", "aggregations", "compoundaggregations", "plantemplates")
# The object whose fields name the m3ter catalogue a line bills against: a field a mapping reads
# through it (`Product2.M3ter_Aggregation_Code__c`) is read in full to check every code.
PRODUCT_OBJECT = "Product2"
_NIL = str(uuid.UUID(int=0))
_SHOWN = 3


@dataclass(frozen=True)
class Check:
    name: str
    ok: bool
    detail: str


def _listed(items: list[str]) -> str:
    more = f" (and {len(items) - _SHOWN} more)" if len(items) > _SHOWN else ""
    return "; ".join(items[:_SHOWN]) + more


def run_checks(
    salesforce: Callable[[], SalesforceSettings],
    m3ter: Callable[[], M3terSettings],
    mappings: MappingSource,
    quota_floor: int = 1_000,
) -> Iterator[Check]:
    """Every check, in the order a run meets them; settings are built lazily so that a missing
    setting is its own red line."""
    compiled: CompiledSet | None = None
    mapping_set: MappingSet | None = None
    try:
        client = SalesforceClient(salesforce())
    except (SalesforceExtractError, ValueError) as exc:
        yield Check("Salesforce login", False, str(exc))
        client = None
    if client is not None:
        yield Check("Salesforce login", True, f"auth {client.settings.auth}")
        version = _api_version(client)
        yield version
        if not version.ok:  # every later call would be refused at that version
            client = None
    if client is not None:
        try:
            mapping_set = mappings.read(lambda: client)
            compiled = compile_mappings(
                mapping_set, client.describe, writeback=writeback_on(os.environ)
            )
        except MappingCompileError as exc:
            yield from _mapping_problems(exc.problems)
        except (MappingError, SalesforceExtractError) as exc:
            yield Check("mappings read", False, str(exc))
        else:
            count = sum(1 for _ in _active(mapping_set))
            yield Check(
                "mapped objects and fields visible",
                True,
                f"{count} active mappings on {len(compiled.objects)} objects compile against "
                "describe",
            )
            yield _sees_all_records(client, compiled)
        yield _quota(client, quota_floor)
    try:
        m3ter_client = M3terClient(m3ter())
        currencies = {c["code"] for c in m3ter_client.read("picklists", "currency")["data"]}
    except (M3terError, ValueError) as exc:
        yield Check("m3ter login", False, str(exc))
        return
    yield Check("m3ter login", True, f"organization {m3ter_client.settings.org_id}")
    loaded = [e for e in LOAD_ENTITIES if compiled[e].mappings] if compiled else list(LOAD_ENTITIES)
    yield _permissions(m3ter_client, loaded)
    if compiled is not None and mapping_set is not None and client is not None:
        yield _codes(m3ter_client, client, mapping_set, compiled)
        yield _currencies(client, compiled, mapping_set, currencies)


def _active(mappings: MappingSet) -> list[tuple[Any, Any]]:
    return [(entity, record) for entity, record in mappings if record.active]


def _api_version(client: SalesforceClient) -> Check:
    wanted = client.settings.api_version
    served = client.api_versions()
    if wanted in served:
        return Check("API version", True, f"{wanted} served (the org's latest is {served[-1]})")
    return Check(
        "API version",
        False,
        f"{wanted} is not served; the org serves {served[0]}-{served[-1]}: set "
        "M3SYNC_SALESFORCE_API_VERSION",
    )


def _mapping_problems(problems: tuple[str, ...]) -> Iterator[Check]:
    objects = [p for p in problems if ": object: " in p]
    fields = [p for p in problems if ": object: " not in p]
    if objects:
        yield Check("mapped objects visible", False, _listed(objects))
    if fields:
        yield Check("mapped fields visible (field-level security)", False, _listed(fields))


def _sees_all_records(client: SalesforceClient, compiled: CompiledSet) -> Check:
    """Sharing silently hides rows from a user without View All Data or View All on an object,
    so an extract would look complete and miss deals."""
    name = "integration user sees every record"
    user = client.user_id()
    assignments = client.query_records(
        "SELECT PermissionSetId, PermissionSet.PermissionsViewAllData "
        f"FROM PermissionSetAssignment WHERE AssigneeId = '{user}'"
    )
    if any(a["PermissionSet"]["PermissionsViewAllData"] for a in assignments):
        return Check(name, True, "View All Data")
    ids = ", ".join(f"'{a['PermissionSetId']}'" for a in assignments) or "''"
    granted = {
        row["SobjectType"]
        for row in client.query_records(
            "SELECT SobjectType FROM ObjectPermissions "
            f"WHERE ParentId IN ({ids}) AND PermissionsViewAllRecords = true"
        )
    }
    needed = sorted(read_fields(compiled, client.describe))
    missing = [o for o in needed if o not in granted]
    if not missing:
        return Check(name, True, f"View All on each of {len(needed)} objects")
    return Check(
        name,
        False,
        f"neither View All Data nor View All on {', '.join(missing)}: sharing can hide their "
        "records (assign the M3sync_Integration permission set)",
    )


def _quota(client: SalesforceClient, floor: int) -> Check:
    remaining, maximum = client.remaining_api_requests()
    detail = f"{remaining:,} of {maximum:,} daily API requests left"
    if remaining < floor:
        return Check("API quota", False, f"{detail}, under the extract's floor of {floor:,}")
    return Check("API quota", True, detail)


def _permissions(client: M3terClient, entities: list[Any]) -> Check:
    """Probes that write nothing: a list, an empty create (refused as invalid when permitted),
    and an update and a delete of an id no object has."""
    # [assume] m3ter checks a permission before the body or the id: a 403 names the missing
    # permission, while a permitted call with an empty body or an unknown id answers 400 or 404.
    collections = sorted(
        {LOAD_ENTITIES[e].collection for e in entities}
        | ({"externalmappings"} if "commitments" in entities else set())
    )
    probes: dict[str, Callable[[str], Any]] = {
        "retrieve": lambda c: next(iter(client.list(c, pageSize=1)), None),
        "create": lambda c: client.create(c, {}),
        "update": lambda c: client.update(c, _NIL, {"version": 1}),
        "delete": lambda c: client.delete(c, _NIL),
    }
    denied = []
    for collection in collections:
        for action, probe in probes.items():
            try:
                probe(collection)
            except M3terForbidden:
                denied.append(f"{action} {collection}")
            except M3terError:
                pass
    if denied:
        return Check("m3ter permissions", False, f"the service user may not {', '.join(denied)}")
    return Check(
        "m3ter permissions",
        True,
        f"retrieve, create, update and delete on {len(collections)} collections",
    )


def _codes(
    m3ter: M3terClient, client: SalesforceClient, mappings: MappingSet, compiled: CompiledSet
) -> Check:
    """Every catalogue code a run will look up: hard-coded in a mapping, in the product mapping
    table, or held by the products a mapping reads them from.

    A product field can feed several references (`M3ter_Aggregation_Code__c` is an aggregation's
    code on some products and a compound aggregation's on others, told apart by the mappings'
    conditions), so a product's code is found if any collection the field feeds holds it, or if
    a mapping of m3sync's own makes it (compound aggregations mapped from products)."""
    made = _made_codes(client, mappings)
    # (collections a code may be in) -> code -> where it comes from
    wanted: dict[frozenset[str], dict[str, str]] = {}
    by_field: dict[str, set[str]] = {}
    for entity, record in _active(mappings):
        for reference in LOAD_ENTITIES[entity].references:
            if reference.collection not in CATALOGUE:
                continue
            where = f"{entity} mapping {record.name!r}"
            value = record.hardcoded.get(reference.column)
            if isinstance(value, str):
                wanted.setdefault(frozenset({reference.collection}), {}).setdefault(value, where)
            path = record.fields.get(reference.column)
            field = _product_field(client, record.object, path) if path else None
            if field is not None:
                by_field.setdefault(field, set()).add(reference.collection)
    for field, collections in by_field.items():
        for code in _product_codes(client, field):
            wanted.setdefault(frozenset(collections), {}).setdefault(code, f"Product2.{field}")
    for row in mappings.products:
        wanted.setdefault(frozenset({"plantemplates"}), {}).setdefault(
            row.plan_template, f"product mapping {row.name!r}"
        )
    existing: dict[str, set[str]] = {}
    for collections, codes in wanted.items():
        for collection in collections:
            existing.setdefault(collection, set())
            existing[collection] |= _existing(m3ter, collection, list(codes))
    missing = [
        f"{' or '.join(sorted(collections))} {code!r} ({where})"
        for collections, codes in wanted.items()
        for code, where in codes.items()
        if not any(code in existing[c] or code in made.get(c, ()) for c in collections)
    ]
    total = sum(len(codes) for codes in wanted.values())
    if missing:
        return Check("m3ter codes exist", False, f"{len(missing)} missing: {_listed(missing)}")
    return Check("m3ter codes exist", True, f"{total} catalogue codes found")


def _made_codes(client: SalesforceClient, mappings: MappingSet) -> dict[str, set[str]]:
    """Codes m3sync's own mappings of products create (collection -> codes)."""
    made: dict[str, set[str]] = {}
    for entity, record in _active(mappings):
        code = record.fields.get("code")
        if record.object != PRODUCT_OBJECT or not code or is_template(code):
            continue
        condition = f" AND ({record.where})" if record.where else ""
        rows = client.query_records(
            f"SELECT {code} FROM {PRODUCT_OBJECT} WHERE {code} != null{condition}"
        )
        made.setdefault(LOAD_ENTITIES[entity].collection, set()).update(str(r[code]) for r in rows)
    return made


def _product_field(client: SalesforceClient, sobject: str, path: str) -> str | None:
    """The product field a path reads (`Product2.M3ter_Aggregation_Code__c` on a line), if it
    reads the product catalogue."""
    if is_template(path):
        return None
    try:
        canonical, _, _ = resolve_path(sobject, path, client.describe)
    except FieldNotFound:
        return None
    if _landing(client, sobject, canonical) != PRODUCT_OBJECT:
        return None
    return canonical.rsplit(".", 1)[-1]


def _product_codes(client: SalesforceClient, field: str) -> list[str]:
    rows = client.query_records(f"SELECT {field} FROM {PRODUCT_OBJECT} WHERE {field} != null")
    return sorted({str(r[field]) for r in rows})


def _landing(client: SalesforceClient, sobject: str, path: str) -> str:
    current = sobject
    for step in path.split(".")[:-1]:
        described = client.describe(current)["fields"]
        field = next(f for f in described if f.get("relationshipName") == step)
        current = field["referenceTo"][0]
    return current


def _existing(client: M3terClient, collection: str, codes: list[str]) -> set[str]:
    found: set[str] = set()
    for start in range(0, len(codes), 50):
        batch = codes[start : start + 50]
        found |= {o["code"] for o in client.list(collection, codes=",".join(batch))}
    return found


def _currencies(
    client: SalesforceClient,
    compiled: CompiledSet,
    mappings: MappingSet,
    org: set[str],
) -> Check:
    """The currencies Salesforce can send: every value of the mapped objects' currency picklist
    and every hard-coded one."""
    needed: dict[str, str] = {}
    for obj in compiled.objects:
        currency = _currency_field(client.describe(obj.name))
        for value in _picklist(currency) if currency is not None else ():
            needed.setdefault(value, f"{obj.name}.CurrencyIsoCode")
    for entity, record in _active(mappings):
        value = record.hardcoded.get("currency")
        if isinstance(value, str):
            needed.setdefault(value, f"{entity} mapping {record.name!r}")
    missing = [f"{code} ({where})" for code, where in needed.items() if code not in org]
    if missing:
        return Check(
            "currencies",
            False,
            f"the m3ter organization lacks {_listed(missing)}; it has {', '.join(sorted(org))}",
        )
    return Check("currencies", True, f"{', '.join(sorted(needed)) or 'none'} all in m3ter")


def _currency_field(described: Mapping[str, Any]) -> Mapping[str, Any] | None:
    return next((f for f in described["fields"] if f["name"] == "CurrencyIsoCode"), None)


def _picklist(entry: Mapping[str, Any]) -> list[str]:
    return [v["value"] for v in entry.get("picklistValues", []) if v.get("active", True)]
