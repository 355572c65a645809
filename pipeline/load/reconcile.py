"""Reconcile one staged entity into m3ter: plan the fewest writes, apply them, journal each.

Desired = the staged rows of the partitions (their latest versions); current = m3ter's objects
those rows and their references name (`current.py`), found by code where m3ter lists by code, by
the id `load.id_map` remembers where it does not. The diff of the fields each row's mapping sets,
through m3ter's echo, gives each record one action; a second run with no Salesforce change plans
no write. Applying runs the writes on a few threads under the client's pacing; a record m3ter
refuses is journaled with m3ter's message and planned again by the next run, and never stops the
others. No write relies on m3ter refusing a duplicate: a create whose answer was lost, or that an
earlier run left uncertain, is looked up first (`find.py`).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from typing import Any, Literal

from pipeline.load import find
from pipeline.load.client import Client
from pipeline.load.current import Current
from pipeline.load.entities import (
    CODE_FILTERED,
    ENTITIES,
    EXTERNAL_SYSTEM,
    REFERENCE_DATA,
    LoadEntity,
)
from pipeline.load.groups import DISAGREEMENT, REFUSED
from pipeline.load.journal import Key, Knowledge, Known
from pipeline.load.payloads import UnknownReference, body_of, changes, full_body, row_fields
from pipeline.m3ter.errors import M3terAuthError, M3terError, M3terRejected, M3terStaleVersion
from pipeline.mapping.compiler import IDENTITY
from pipeline.mapping.spec import Entity

Kind = Literal["create", "update", "unchanged", "end_date", "delete", "reject"]
Status = Literal["planned", "applied", "unchanged", "rejected", "failed"]
WRITES: tuple[Kind, ...] = ("create", "update", "end_date", "delete")
BY_COLLECTION: dict[str, Entity] = {spec.collection: entity for entity, spec in ENTITIES.items()}


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
    fields: frozenset[str] = frozenset()  # the m3ter fields the row decides
    # A code-less object found without its ExternalMapping (a run died between the two
    # writes): the mapping is written now instead of a second object.
    adopt: bool = False

    @property
    def writes(self) -> bool:
        return self.kind in WRITES or self.adopt

    @property
    def key(self) -> Key:
        return (self.source_object, self.source_id)


@dataclass(frozen=True)
class Outcome:
    action: Action
    status: Status
    m3ter_id: str | None = None
    version: int | None = None
    message: str | None = None


def prepare(
    spec: LoadEntity, rows: Sequence[dict[str, Any]], current: Current, knowledge: Knowledge
) -> None:
    """Read, in batches, every object the rows and their references name."""
    if spec.collection in CODE_FILTERED:
        # by code: the id map's objects hold the rows' codes too
        current.fetch_codes(spec.collection, (_code(row) for row in rows))
    else:
        # by the id map: the record's own object, else (a line that replaced another) the
        # object of its code
        mine = knowledge.of(spec.entity)
        keys = [(row["_source_object"], row["_source_id"]) for row in rows]
        held = [mine.ids[k] for k in keys if k in mine.ids]
        continued = (mine.codes.get(_code(row)) for row in rows if spec.has_code)
        current.fetch_ids(spec.collection, [*held, *(i for i in continued if i)])
    live = [row for row in rows if not row["_tombstone"]]
    for ref in spec.references:
        codes = {row[ref.column] for row in live if row.get(ref.column)}
        if not codes:
            continue
        if ref.collection in CODE_FILTERED:
            current.fetch_codes(ref.collection, codes)
        elif ref.collection in REFERENCE_DATA:
            current.listing(ref.collection)
        else:
            theirs = knowledge.of(BY_COLLECTION[ref.collection])
            current.fetch_ids(ref.collection, (theirs.codes[c] for c in codes if c in theirs.codes))
    if spec.collection == "plangroups":
        # m3ter lists plan groups by account, not by code: an account's groups, or the whole
        # organization's when a row's group belongs to no account.
        if any(not row.get("accountCode") for row in live):
            current.listing(spec.collection)
        else:
            accounts = (current.held_id("accounts", row["accountCode"]) for row in live)
            current.fetch_by(spec.collection, "accountId", (a for a in accounts if a))
    elif spec.collection == "plangrouplinks":
        found = (current.held_id("plangroups", row.get("planGroupCode")) for row in live)
        current.fetch_each(spec.collection, "planGroup", (g for g in found if g))


def plan(
    entity: Entity,
    rows: Iterable[dict[str, Any]],
    current: Current,
    knowledge: Knowledge,
) -> list[Action]:
    """One action per staged row: what m3ter needs so that it equals the row."""
    spec = ENTITIES[entity]
    rows = list(rows)
    prepare(spec, rows, current, knowledge)
    mine = knowledge.of(entity)
    listed = _Listed(spec, current) if current.whole and not spec.has_code else None
    actions = []
    for row in rows:
        key = {
            "entity": entity,
            "source_object": row["_source_object"],
            "source_id": row["_source_id"],
            "partition": row["_partition"],
        }
        found = _find(spec, row, current, mine, listed)
        if row["_tombstone"]:
            if found is not None:
                actions.append(_ending(spec, key, row, found))
            continue
        disagreement = row.get(DISAGREEMENT)
        if disagreement:
            if found is not None:
                message = f"{disagreement}; the object m3ter holds is kept as it is"
                actions.append(Action("unchanged", message=message, **_identity(found), **key))
            else:
                actions.append(Action("reject", code=row.get("code"), message=disagreement, **key))
            continue
        refusal = row.get(REFUSED)
        if refusal:
            if found is not None:
                actions.append(_giving_way(key, found, refusal))
            else:
                actions.append(Action("reject", code=row.get("code"), message=refusal, **key))
            continue
        try:
            body = body_of(spec, row, current.resolve)
        except UnknownReference as exc:
            actions.append(Action("reject", code=row.get("code"), message=str(exc), **key))
            continue
        adopt = False
        if found is None and (row["_source_object"], row["_source_id"]) in mine.uncertain:
            found, adopt = _look_up(spec, row, body, current)
        if found is None and listed is not None:
            found = listed.adopt(body)
            adopt = found is not None
        fields = row_fields(spec, row)
        if found is None:
            unmappable = None if spec.has_code else _unmappable(spec, row, current)
            if unmappable is not None:
                actions.append(Action("reject", message=unmappable, **key))
                continue
            actions.append(Action("create", code=row.get("code"), body=body, fields=fields, **key))
            continue
        diff = changes(body, found, fields)
        actions.append(
            Action(
                "update" if diff else "unchanged",
                code=row.get("code"),
                m3ter_id=found["id"],
                version=found.get("version"),
                body=full_body(spec, body, found, fields),
                changes=diff,
                fields=fields,
                adopt=adopt,
                **key,
            )
        )
    return actions


def _code(row: dict[str, Any]) -> str:
    """A row's code; a tombstone has none, and its code was its identity (its source Id, or
    the line it replaced) unless a mapping set one."""
    return str(row.get("code") or row.get(IDENTITY) or row["_source_id"])


def _find(
    spec: LoadEntity,
    row: dict[str, Any],
    current: Current,
    mine: Known,
    listed: _Listed | None,
) -> dict[str, Any] | None:
    """The object m3ter holds for a row, as far as the run has read: the one the id map names,
    else (for coded entities) the first holding its code."""
    known_id = mine.ids.get((row["_source_object"], row["_source_id"]))
    if known_id is not None:
        obj = current.get(spec.collection, known_id)
        if obj is not None:
            return obj
    if spec.natural_key:
        key = _natural_key(spec, row, current)
        return None if key is None else current.matching(spec.collection, key)
    if spec.has_code:
        holders = current.with_code(spec.collection, _code(row))
        return holders[0] if holders else None
    if listed is not None:
        found = listed.external.get((row["_source_object"], row["_source_id"]))
        return None if found is None else current.get(spec.collection, found)
    return None


def _natural_key(spec: LoadEntity, row: dict[str, Any], current: Current) -> dict[str, str] | None:
    """The natural key of a row's object as m3ter ids, if every object it names was read."""
    key = {}
    for ref in spec.references:
        if ref.field not in spec.natural_key:
            continue
        code = row.get(ref.column)
        found = current.resolve(ref.collection, code) if code else None
        if found is None:
            return None
        key[ref.field] = found
    return key


def _unmappable(spec: LoadEntity, row: dict[str, Any], current: Current) -> str | None:
    """Why the org would refuse a code-less object's ExternalMapping, found before the object is
    made: without its mapping nothing could find it again, and each run would make another.

    The configuration's shape is not documented beyond its names; one this does not read as
    expected refuses nothing here, and a refusal of the mapping itself is journaled instead.
    """
    configuration = current.mapping_configuration()
    if not configuration:
        return None
    keyed = f"a {spec.name} has no code, so m3sync keys it by an ExternalMapping"
    entities = configuration.get("m3terEntities")
    if isinstance(entities, list) and spec.name not in entities:
        return (
            f"m3ter's external mapping configuration does not permit {spec.name}: {keyed}; "
            "permit it in m3ter"
        )
    systems = configuration.get("externalSystems")
    if not isinstance(systems, list):
        return None
    table = row["_source_object"]
    for system in systems:
        if not isinstance(system, dict) or system.get("name") != EXTERNAL_SYSTEM:
            continue
        tables = system.get("externalTables")
        if system.get("allowCustomExternalTables") or not isinstance(tables, list):
            return None
        if table in tables:
            return None
        return (
            f"m3ter's external mapping configuration has no table {table} for "
            f"{EXTERNAL_SYSTEM} and allows no custom tables: {keyed}; add the table or allow "
            "custom external tables in m3ter"
        )
    return (
        f"m3ter's external mapping configuration has no external system {EXTERNAL_SYSTEM}: "
        f"{keyed}; configure it in m3ter"
    )


def _look_up(
    spec: LoadEntity, row: dict[str, Any], body: dict[str, Any], current: Current
) -> tuple[dict[str, Any] | None, bool]:
    """An uncertain record's object, read now: (object, whether its mapping must be written)."""
    client = current.client
    if spec.natural_key:
        found, adopt = find.by_key(client, spec, body), False
    elif spec.has_code:
        found = find.by_code(client, current, spec, _code(row), body)
        adopt = False
    else:
        found, mapped = find.commitment(client, row["_source_object"], row["_source_id"], body)
        adopt = found is not None and not mapped
    if found is not None:
        current.remember(spec.collection, found)
    return found, adopt


class _Listed:
    """For a full reconcile of a code-less entity: every ExternalMapping, and the objects no
    mapping names, by natural key, so that an orphan is adopted rather than made twice."""

    def __init__(self, spec: LoadEntity, current: Current) -> None:
        self.external = {
            (m["externalTable"], m["externalId"]): m["m3terId"]
            for m in current.client.list("externalmappings", externalSystemId=EXTERNAL_SYSTEM)
            if m.get("m3terEntity") == spec.name and m.get("externalSystem") == EXTERNAL_SYSTEM
        }
        mapped = set(self.external.values())
        self.orphans = [obj for obj in current.listing(spec.collection) if obj["id"] not in mapped]

    def adopt(self, body: dict[str, Any]) -> dict[str, Any] | None:
        """The first orphan whose natural key is the body's, taken so no other row adopts it."""
        for index, orphan in enumerate(self.orphans):
            if find.same_natural_key(body, orphan):
                return self.orphans.pop(index)
        return None


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
    ending = {"endDate": end}
    return Action(
        "end_date",
        body=full_body(spec, ending, found, ["endDate"]),
        changes={"endDate": (current_end, end)},
        fields=frozenset({"endDate"}),
        **common,
        **key,
    )


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
    # Objects that give up time go first, then other changes, then new objects: an account
    # plan cut short must end before the one that supersedes it moves in (another account's,
    # after a merge) or is created.
    done: list[Outcome] = []
    with ThreadPoolExecutor(max_workers=max(1, concurrency)) as pool:
        for wave in range(3):
            done += pool.map(run, [a for a in actions if a.writes and write_wave(a) == wave])
    return settled + done


def write_wave(action: Action) -> int:
    """0 for a write that only ends or shortens an object, 2 for a create, 1 for the rest."""
    if action.kind == "create":
        return 2
    if action.kind in ("end_date", "delete"):
        return 0
    before, after = action.changes.get("endDate", (None, None))
    if set(action.changes) == {"endDate"} and after and (not before or str(after) < str(before)):
        return 0
    return 1


def _apply_one(client: Client, action: Action, current: Current) -> Outcome:
    spec = ENTITIES[action.entity]
    try:
        if action.kind == "create":
            return _create(client, spec, action, current)
        assert action.m3ter_id is not None
        if action.adopt:
            _map_external(client, spec, action, action.m3ter_id)
            if action.kind == "unchanged":
                return Outcome(action, "applied", action.m3ter_id, action.version)
        if action.kind == "delete":
            try:
                client.delete(spec.collection, action.m3ter_id)
            except M3terRejected as exc:
                if exc.status != 404:
                    raise  # a 404 is a delete already done (its answer lost) or done by hand
            current.forget(spec.collection, action.m3ter_id)
            return Outcome(action, "applied", action.m3ter_id, action.version)
        return _put(client, spec, action, current)
    except M3terRejected as exc:
        return Outcome(action, "rejected", action.m3ter_id, action.version, exc.message)
    except M3terAuthError:
        raise  # the org refuses us: no other record would fare better
    except M3terError as exc:
        return Outcome(action, "failed", action.m3ter_id, action.version, exc.message)


def _create(client: Client, spec: LoadEntity, action: Action, current: Current) -> Outcome:
    """Create, or find what a lost answer made; a create m3ter refuses is looked up too (the
    object may be ours already), and an object found is brought to what the row says."""
    assert action.body is not None
    body = action.body

    def look() -> dict[str, Any] | None:
        if spec.natural_key:
            return find.by_key(client, spec, body)
        if spec.has_code:
            assert action.code is not None
            return find.by_code(client, current, spec, action.code, body)
        return find.commitment(client, action.source_object, action.source_id, body)[0]

    try:
        obj = client.create(spec.collection, body, find=look)
    except M3terRejected:
        found = look()
        if found is None:
            raise
        obj = found
    current.remember(spec.collection, obj)
    if not spec.has_code:
        try:
            _map_external(client, spec, action, obj["id"])
        except M3terRejected as exc:
            # Made, and kept in the id map, but nothing else could find it again.
            message = f"made, but m3ter refused its ExternalMapping: {exc.message}"
            return Outcome(action, "applied", obj["id"], obj.get("version"), message)
    if changes(body, obj, action.fields):
        existing = replace(
            action,
            kind="update",
            m3ter_id=obj["id"],
            version=obj.get("version"),
            body=full_body(spec, body, obj, action.fields),
        )
        return replace(_put(client, spec, existing, current), action=action)
    return Outcome(action, "applied", obj["id"], obj.get("version"))


def _map_external(client: Client, spec: LoadEntity, action: Action, m3ter_id: str) -> None:
    """The ExternalMapping of a code-less object, found first if a lost answer made it."""
    client.create(
        "externalmappings",
        {
            "externalSystem": EXTERNAL_SYSTEM,
            "externalTable": action.source_object,
            "externalId": action.source_id,
            "m3terEntity": spec.name,
            "m3terId": m3ter_id,
        },
        find=lambda: find.external_mapping(
            client, action.source_object, action.source_id, spec.name, m3ter_id
        ),
    )


def _put(client: Client, spec: LoadEntity, action: Action, current: Current) -> Outcome:
    """A full PUT with the version we read; if the object moved on meanwhile (someone's edit, or
    this very PUT applied with its answer lost), apply the change to it as it is now, and write
    again only if it still differs."""
    assert action.body is not None and action.m3ter_id is not None
    body, version = action.body, action.version
    for attempt in range(2):
        try:
            obj = client.update(spec.collection, action.m3ter_id, {**body, "version": version})
        except M3terStaleVersion as stale:
            if attempt:
                raise
            fresh = stale.current
            current.remember(spec.collection, fresh)
            if not changes(body, fresh, action.fields):
                return Outcome(action, "applied", fresh["id"], fresh.get("version"))
            body = full_body(spec, body, fresh, action.fields)
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
