"""Reconcile one staged entity into m3ter: plan the fewest writes, apply them, journal each.

Desired = the staged rows of the partitions (their latest versions); current = m3ter's objects,
listed a page of 100 at a time and matched by code (Commitments, which have no code, through the
ExternalMapping written when they were created). The diff of normalized payloads gives each
record one action; a second run with no Salesforce change plans no write. Applying runs the
writes on a few threads under the client's rate limit; a record m3ter refuses is journaled with
m3ter's message and planned again by the next run, and never stops the others.
"""

from __future__ import annotations

import datetime as dt
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

from pipeline.load.entities import (
    COMPUTED,
    ENTITIES,
    EXTERNAL_SYSTEM,
    READ_ONLY,
    LoadEntity,
)
from pipeline.load.payloads import UnknownReference, body_of, changes, managed_fields
from pipeline.load.supersede import OVERLAP
from pipeline.m3ter.client import M3terSpend
from pipeline.m3ter.errors import M3terAuthError, M3terError, M3terRejected, M3terStaleVersion
from pipeline.mapping.spec import Entity

Kind = Literal["create", "update", "unchanged", "end_date", "delete", "reject"]
Status = Literal["planned", "applied", "unchanged", "rejected", "failed"]
WRITES: tuple[Kind, ...] = ("create", "update", "end_date", "delete")


class Client(Protocol):
    """What the reconciler needs of `pipeline.m3ter.client.M3terClient`."""

    def list(self, collection: str, **filters: Any) -> Iterator[dict[str, Any]]: ...

    def get(self, collection: str, object_id: str) -> dict[str, Any]: ...

    def create(self, collection: str, body: dict[str, Any]) -> dict[str, Any]: ...

    def update(self, collection: str, object_id: str, body: dict[str, Any]) -> dict[str, Any]: ...

    def delete(self, collection: str, object_id: str) -> dict[str, Any]: ...

    def spent(self) -> M3terSpend: ...


@dataclass(frozen=True)
class Action:
    kind: Kind
    entity: Entity
    source_object: str
    source_id: str
    partition: str
    code: str | None = None
    m3ter_id: str | None = None
    version: int | None = None
    body: dict[str, Any] | None = None
    changes: dict[str, tuple[Any, Any]] = field(default_factory=dict)
    message: str | None = None
    # A code-less object found without its ExternalMapping (a run died between the two
    # writes): the mapping is written now instead of a second object.
    adopt: bool = False

    @property
    def writes(self) -> bool:
        return self.kind in WRITES or self.adopt


@dataclass(frozen=True)
class Outcome:
    action: Action
    status: Status
    m3ter_id: str | None = None
    version: int | None = None
    message: str | None = None


class Current:
    """m3ter's objects, each collection listed once per run and kept up to date by its writes."""

    def __init__(self, client: Client) -> None:
        self._client = client
        self._by_code: dict[str, dict[str, dict[str, Any]]] = {}
        self._by_id: dict[str, dict[str, dict[str, Any]]] = {}
        self._lock = threading.Lock()

    def _load(self, collection: str) -> None:
        if collection in self._by_id:
            return
        objects = list(self._client.list(collection))
        self._by_id[collection] = {obj["id"]: obj for obj in objects}
        self._by_code[collection] = {obj["code"]: obj for obj in objects if obj.get("code")}

    def by_code(self, collection: str, code: str) -> dict[str, Any] | None:
        with self._lock:
            self._load(collection)
            return self._by_code[collection].get(code)

    def by_id(self, collection: str, object_id: str) -> dict[str, Any] | None:
        with self._lock:
            self._load(collection)
            return self._by_id[collection].get(object_id)

    def objects(self, collection: str) -> list[dict[str, Any]]:
        with self._lock:
            self._load(collection)
            return list(self._by_id[collection].values())

    def resolve(self, collection: str, code: str) -> str | None:
        found = self.by_code(collection, code)
        return None if found is None else found["id"]

    def remember(self, collection: str, obj: dict[str, Any]) -> None:
        with self._lock:
            self._load(collection)
            self._by_id[collection][obj["id"]] = obj
            if obj.get("code"):
                self._by_code[collection][obj["code"]] = obj

    def external_ids(self, m3ter_entity: str) -> dict[tuple[str, str], str]:
        """(Salesforce object, record Id) -> m3ter id, from the ExternalMappings we wrote."""
        return {
            (m["externalTable"], m["externalId"]): m["m3terId"]
            for m in self._client.list("externalmappings", externalSystemId=EXTERNAL_SYSTEM)
            if m.get("m3terEntity") == m3ter_entity and m.get("externalSystem") == EXTERNAL_SYSTEM
        }


def plan(entity: Entity, rows: Iterable[dict[str, Any]], current: Current) -> list[Action]:
    """One action per staged row: what m3ter needs so that it equals the row."""
    spec = ENTITIES[entity]
    external = current.external_ids(spec.name) if not spec.has_code else {}
    orphans = _orphans(spec, current, external) if not spec.has_code else {}
    actions = []
    for row in rows:
        key = {
            "entity": entity,
            "source_object": row["_source_object"],
            "source_id": row["_source_id"],
            "partition": row["_partition"],
        }
        found = _find(spec, row, current, external)
        if row["_tombstone"]:
            if found is not None:
                actions.append(_ending(spec, key, row, found))
            continue
        if row.get(OVERLAP):
            message = (
                f"starts when account plan {row[OVERLAP]} of the same account and product does; "
                "m3ter allows one active account plan per product"
            )
            if found is not None:
                actions.append(_giving_way(key, found, message))
            else:
                actions.append(Action("reject", code=row.get("code"), message=message, **key))
            continue
        try:
            body = body_of(spec, row, current.resolve)
        except UnknownReference as exc:
            actions.append(Action("reject", code=row.get("code"), message=str(exc), **key))
            continue
        adopt = False
        if found is None:
            found = orphans.pop(_natural_key(body), None)
            adopt = found is not None
        if found is None:
            actions.append(Action("create", code=row.get("code"), body=body, **key))
            continue
        diff = changes(spec, body, found)
        kind: Kind = "update" if diff else "unchanged"
        actions.append(
            Action(
                kind,
                code=row.get("code"),
                m3ter_id=found["id"],
                version=found.get("version"),
                body=_full(spec, body, found),
                changes=diff,
                adopt=adopt,
                **key,
            )
        )
    return actions


_NATURAL_KEY = ("accountId", "contractId", "currency", "startDate", "endDate", "amount")


def _natural_key(body: dict[str, Any]) -> tuple[Any, ...]:
    return tuple(str(body.get(name)) for name in _NATURAL_KEY)


def _orphans(
    spec: LoadEntity, current: Current, external: dict[tuple[str, str], str]
) -> dict[tuple[Any, ...], dict[str, Any]]:
    """Code-less objects no ExternalMapping names, by their natural key."""
    mapped = set(external.values())
    return {
        _natural_key(obj): obj
        for obj in current.objects(spec.collection)
        if obj["id"] not in mapped
    }


def _find(
    spec: LoadEntity,
    row: dict[str, Any],
    current: Current,
    external: dict[tuple[str, str], str],
) -> dict[str, Any] | None:
    if spec.has_code:
        # A tombstone has no code: the code it had was its source Id unless a mapping set one.
        code = row.get("code") or row["_source_id"]
        return current.by_code(spec.collection, code)
    found = external.get((row["_source_object"], row["_source_id"]))
    return None if found is None else current.by_id(spec.collection, found)


def _full(spec: LoadEntity, desired: dict[str, Any], found: dict[str, Any]) -> dict[str, Any]:
    """A PUT replaces the whole object: keep m3ter's fields the mappings do not decide."""
    skipped = READ_ONLY | COMPUTED.get(spec.entity, frozenset()) | managed_fields(spec)
    kept = {k: v for k, v in found.items() if k not in skipped and v is not None}
    return {**kept, **desired}


def _identity(found: dict[str, Any]) -> dict[str, Any]:
    """The Action fields that name an object m3ter holds."""
    return {"code": found.get("code"), "m3ter_id": found["id"], "version": found.get("version")}


def _giving_way(key: dict[str, Any], found: dict[str, Any], reason: str) -> Action:
    """A same-start rival that m3ter already holds (loaded before the account plan that keeps
    the slot was staged) is deleted while it has not started, so every load order ends in the
    same state; once it bills, it stays, and m3ter refuses the other with its message."""
    common = _identity(found)
    today = dt.datetime.now(dt.UTC).date().isoformat()
    if str(found.get("startDate") or "")[:10] > today:
        return Action("delete", message=f"{reason}; it had not started", **common, **key)
    return Action("unchanged", message=f"{reason}; kept, it has started billing", **common, **key)


def _ending(
    spec: LoadEntity, key: dict[str, Any], row: dict[str, Any], found: dict[str, Any]
) -> Action:
    """The source is gone: end the object the day after, or delete it if it never started.

    Billing history is never deleted: an object whose start is before the end is only ended,
    and objects without an end date (accounts, plans, compound aggregations) stay as they are.
    """
    common = _identity(found)
    if spec.end_kind is None:
        return Action(
            "unchanged", message="source gone; kept (it has no end date)", **common, **key
        )
    stamp: dt.datetime = row["_version_stamp"]
    day = stamp.date() + dt.timedelta(days=1)
    end = day.isoformat() if spec.end_kind == "date" else f"{day.isoformat()}T00:00:00Z"
    start = str(found.get("startDate") or "")[:10]
    if start and start >= day.isoformat():
        return Action("delete", message="source gone before the object started", **common, **key)
    current_end = found.get("endDate")
    if current_end and str(current_end)[:10] <= day.isoformat():
        return Action("unchanged", message="source gone; already ended", **common, **key)
    skipped = READ_ONLY | COMPUTED.get(spec.entity, frozenset())
    body = {k: v for k, v in found.items() if k not in skipped and v is not None}
    body["endDate"] = end
    return Action("end_date", body=body, changes={"endDate": (current_end, end)}, **common, **key)


def apply(
    client: Client,
    actions: Sequence[Action],
    current: Current,
    concurrency: int = 4,
    progress: Callable[[Outcome], None] | None = None,
) -> list[Outcome]:
    """Carry out the writes, `concurrency` at a time; the client paces and retries each call."""

    def run(action: Action) -> Outcome:
        outcome = _apply_one(client, action, current)
        if progress is not None:
            progress(outcome)
        return outcome

    settled = [
        Outcome(
            a, "rejected" if a.kind == "reject" else "unchanged", a.m3ter_id, a.version, a.message
        )
        for a in actions
        if not a.writes
    ]
    # Changes to existing objects go first: an account plan cut short must end before the one
    # that supersedes it is created.
    done: list[Outcome] = []
    with ThreadPoolExecutor(max_workers=max(1, concurrency)) as pool:
        for wave in (False, True):
            done += pool.map(run, [a for a in actions if a.writes and (a.kind == "create") == wave])
    return settled + done


def _apply_one(client: Client, action: Action, current: Current) -> Outcome:
    spec = ENTITIES[action.entity]
    try:
        if action.kind == "create":
            assert action.body is not None
            obj = client.create(spec.collection, action.body)
            if not spec.has_code:
                _map_external(client, spec, action, obj["id"])
            current.remember(spec.collection, obj)
            return Outcome(action, "applied", obj["id"], obj.get("version"))
        assert action.m3ter_id is not None
        if action.adopt:
            _map_external(client, spec, action, action.m3ter_id)
            if action.kind == "unchanged":
                return Outcome(action, "applied", action.m3ter_id, action.version)
        if action.kind == "delete":
            client.delete(spec.collection, action.m3ter_id)
            return Outcome(action, "applied", action.m3ter_id, action.version)
        return _put(client, spec, action, current)
    except M3terRejected as exc:
        return Outcome(action, "rejected", action.m3ter_id, action.version, exc.message)
    except M3terAuthError:
        raise  # the org refuses us: no other record would fare better
    except M3terError as exc:
        return Outcome(action, "failed", action.m3ter_id, action.version, exc.message)


def _map_external(client: Client, spec: LoadEntity, action: Action, m3ter_id: str) -> None:
    client.create(
        "externalmappings",
        {
            "externalSystem": EXTERNAL_SYSTEM,
            "externalTable": action.source_object,
            "externalId": action.source_id,
            "m3terEntity": spec.name,
            "m3terId": m3ter_id,
        },
    )


def _put(client: Client, spec: LoadEntity, action: Action, current: Current) -> Outcome:
    """A full PUT with the version we read; if someone changed the object meanwhile, read it
    again, and write again only if it still differs."""
    assert action.body is not None and action.m3ter_id is not None
    body, version = action.body, action.version
    for attempt in range(2):
        try:
            obj = client.update(spec.collection, action.m3ter_id, {**body, "version": version})
        except M3terStaleVersion:
            if attempt:
                raise
            fresh = client.get(spec.collection, action.m3ter_id)
            wanted = {k: v for k, v in body.items() if k in managed_fields(spec)}
            if action.kind == "update" and not changes(spec, wanted, fresh):
                current.remember(spec.collection, fresh)
                return Outcome(action, "unchanged", fresh["id"], fresh.get("version"))
            body = _full(spec, wanted, fresh)
            version = fresh.get("version")
            continue
        current.remember(spec.collection, obj)
        return Outcome(action, "applied", obj["id"], obj.get("version"))
    raise AssertionError("unreachable")


def counts(outcomes: Iterable[Outcome]) -> dict[str, int]:
    """Outcomes by `<action>:<status>`, e.g. `create:applied`, `update:rejected`."""
    found: dict[str, int] = {}
    for outcome in outcomes:
        key = f"{outcome.action.kind}:{outcome.status}"
        found[key] = found.get(key, 0) + 1
    return dict(sorted(found.items()))
