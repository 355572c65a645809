"""Finding an object a create may have made without its answer arriving.

m3ter has no idempotency key and m3sync never counts on it refusing a duplicate, so before a
create whose answer was lost is sent again (`M3terClient.create`'s `find`), and for every record
an earlier run left uncertain (`load.pending`), the object is looked up where it can only be:

- by code, in the narrowest list m3ter offers: `codes` (accounts, contracts, compound
  aggregations), a plan's product, a pricing's plan, an account's account plans, an account's
  plan groups (the whole organization's for a group no account owns);
- plan group links, which have no code: by their group and plan, among the group's links;
- commitments, which have no code: by the ExternalMapping written with them, then by a natural
  key compared by value (numbers as numbers, `null`, `""` and absent alike) among the account's
  commitments no other record maps;
- ExternalMappings: by their external id.

These lists grow with one account's or one plan's objects, never with the organization's.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from pipeline.load.client import Client
from pipeline.load.current import Current
from pipeline.load.entities import CODE_FILTERED, EXTERNAL_SYSTEM, LoadEntity
from pipeline.m3ter.echo import same
from pipeline.m3ter.errors import M3terRejected

NATURAL_KEY = ("accountId", "contractId", "currency", "startDate", "endDate", "amount")


def by_code(
    client: Client, current: Current, spec: LoadEntity, code: str, body: dict[str, Any]
) -> dict[str, Any] | None:
    """The object of `spec` holding `code`, read now from the narrowest list that holds it."""
    collection = spec.collection
    if collection in CODE_FILTERED:
        candidates: Iterable[dict[str, Any]] = client.list(collection, codes=[code])
    elif collection == "plans":
        if body.get("accountId"):
            candidates = client.list(collection, accountId=[body["accountId"]])
        else:
            templates = {t["id"]: t for t in current.listing("plantemplates")}
            product = (templates.get(body.get("planTemplateId") or "") or {}).get("productId")
            candidates = client.list(collection, productId=product)
    elif collection == "pricings":
        side = {"planId": body["planId"]} if body.get("planId") else {}
        side = side or {"planTemplateId": body.get("planTemplateId")}
        candidates = client.list(collection, **side)
    elif collection == "accountplans":
        candidates = client.list(collection, account=body.get("accountId"), includeall=True)
    elif collection == "plangroups":
        narrow = {"accountId": [body["accountId"]]} if body.get("accountId") else {}
        candidates = client.list(collection, **narrow)
    else:
        raise ValueError(f"no lookup by code for {collection}")
    return next((obj for obj in candidates if obj.get("code") == code), None)


def by_key(client: Client, spec: LoadEntity, body: dict[str, Any]) -> dict[str, Any] | None:
    """The object of a code-less entity whose natural key (`spec.natural_key`) is the body's."""
    if spec.collection != "plangrouplinks":
        raise ValueError(f"no lookup by natural key for {spec.collection}")
    candidates = client.list(spec.collection, planGroup=body["planGroupId"])
    key = {name: body.get(name) for name in spec.natural_key}
    return next((obj for obj in candidates if all(obj.get(n) == v for n, v in key.items())), None)


def commitment(
    client: Client, table: str, source_id: str, body: dict[str, Any]
) -> tuple[dict[str, Any] | None, bool]:
    """The commitment of a source record and whether its ExternalMapping exists.

    First through the ExternalMapping; failing that, an unmapped commitment of the account whose
    natural key equals the body's by value: one a run made before it died, or whose answer was
    lost, before it could write the mapping.
    """
    for mapping in external_mappings(client, table, source_id):
        if mapping.get("m3terEntity") != "Commitment":
            continue
        try:
            return client.get("commitments", mapping["m3terId"]), True
        except M3terRejected as exc:
            if exc.status != 404:
                raise  # a mapping left pointing at a deleted commitment is passed over
    for candidate in client.list("commitments", accountId=body.get("accountId")):
        if not same_natural_key(body, candidate):
            continue
        mapped = client.pages("externalmappings", "external", "Commitment", candidate["id"])
        if not any(m.get("externalSystem") == EXTERNAL_SYSTEM for m in mapped):
            return candidate, False
    return None, False


def same_natural_key(body: dict[str, Any], commitment: dict[str, Any]) -> bool:
    """Whether m3ter's commitment has the body's account, contract, currency, dates and amount,
    compared through m3ter's echo."""
    return all(same(name, body.get(name), commitment.get(name)) for name in NATURAL_KEY)


def external_mappings(client: Client, table: str, source_id: str) -> list[dict[str, Any]]:
    """The ExternalMappings of one Salesforce record."""
    return list(client.pages("externalmappings", "externalid", EXTERNAL_SYSTEM, table, source_id))


def external_mapping(
    client: Client, table: str, source_id: str, entity: str, m3ter_id: str
) -> dict[str, Any] | None:
    """The ExternalMapping of one record to one m3ter object, if it exists."""
    return next(
        (
            m
            for m in external_mappings(client, table, source_id)
            if m.get("m3terEntity") == entity and m.get("m3terId") == m3ter_id
        ),
        None,
    )
