"""Load one staged entity for a range of partitions into m3ter, and journal what happened.

Before its first create a run writes the creates it is about to send (`load.pending`); when its
writes are done it journals every outcome (`load.journal`, `load.id_map`). A run killed halfway
leaves its pending creates uncertain, and the next run looks each up before making it, so it
converges without duplicates (`pipeline/load/journal.py`).
"""

from __future__ import annotations

import datetime as dt
import itertools
import json
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import duckdb

from pipeline.load import groups
from pipeline.load.client import Client
from pipeline.load.coverage import template_products
from pipeline.load.current import PLANNED, Current
from pipeline.load.entities import ENTITIES
from pipeline.load.journal import Knowledge, refused_sql, write_journal, write_pending
from pipeline.load.pricing_windows import pricing_rows
from pipeline.load.reconcile import Action, Outcome, apply, counts, plan
from pipeline.load.supersede import account_plan_rows
from pipeline.mapping.spec import Entity
from pipeline.staging.stage import staged_table
from pipeline.warehouse import Warehouse

# Objects listed with their changed fields in a result: enough to read, not a dump.
LISTED_CHANGES = 50


@dataclass(frozen=True)
class LoadResult:
    entity: Entity
    dry_run: bool
    actions: dict[str, int]  # planned actions by kind
    outcomes: dict[str, int]  # `<kind>:<status>` counts
    rejects: list[tuple[str, str]]  # (source id, message) of refused records
    changed: list[dict[str, Any]]  # objects to create or change, with fields before -> after
    api_calls: int
    writes: int
    seconds: float
    run_id: str = ""
    planned: list[Action] = field(default_factory=list, repr=False)  # every action, in order
    # (source id, message) of writes still failing after the client's retries (429, 5xx,
    # timeouts): not refusals, so the run that left them is not done; the next retries them.
    failures: list[tuple[str, str]] = field(default_factory=list)

    def unfinished(self) -> str | None:
        """Why the run that made this result is not done, if writes still failed."""
        if not self.failures:
            return None
        source, message = self.failures[0]
        return (
            f"{self.entity}: {len(self.failures):,} writes still failing after retries (first: "
            f"{source}: {message}); the others were applied and journaled, and the next run "
            "retries these"
        )


def staged_rows(
    warehouse: Warehouse,
    entity: Entity,
    partitions: Sequence[str] | None,
    current: Current | None = None,
) -> list[dict[str, Any]]:
    """The m3ter objects the records staged in `partitions` (all when None) make, from the
    latest staged version of every record in them (`groups.py`); for account plans also those
    their start dates supersede (`supersede.py`), with products from `current`'s plan
    templates, and for pricings those their windows overlap (`pricing_windows.py`)."""
    table = staged_table(entity)
    if not warehouse.partitions(table):
        return []
    con = warehouse.connect()
    try:
        if not ENTITIES[entity].has_code:
            # Code-less objects (commitments) are one per record, found by ExternalMapping.
            where = (
                "WHERE _partition IN (SELECT unnest($partitions)) OR (_source_object, _source_id) "
                f"IN ({refused_sql(warehouse)})"
                if partitions
                else ""
            )
            params = {"partitions": list(partitions), "entity": entity} if partitions else {}
            return _rows(
                con.execute(
                    f"SELECT * FROM {table.sql} {where} ORDER BY _source_object, _source_id",
                    params,
                )
            )
        groups.objects(warehouse, con, entity, partitions)
        if entity == "account_plans":
            products = template_products(current) if current else {}
            return account_plan_rows(warehouse, con, products)
        if entity == "pricings":
            return pricing_rows(con)
        return _rows(
            con.execute(
                f"SELECT * EXCLUDE ({groups.TOUCHED}) FROM {groups.OBJECTS} "
                f"WHERE {groups.TOUCHED} ORDER BY _source_object, _source_id"
            )
        )
    finally:
        con.close()


def _rows(cursor: duckdb.DuckDBPyConnection) -> list[dict[str, Any]]:
    names = [d[0] for d in cursor.description]
    return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]


def load(
    client: Client,
    warehouse: Warehouse,
    entity: Entity,
    partitions: Sequence[str] | None,
    *,
    dry_run: bool = False,
    concurrency: int = 4,
    current: Current | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> LoadResult:
    """Plan, and unless `dry_run`, apply and journal; `current` may be shared across the
    entities of a run (a dry run must not share it with a run that writes); `progress` hears
    (writes done, writes planned) after each write."""
    started = time.monotonic()
    before = client.spent()
    current = current or Current(client)
    knowledge = Knowledge(warehouse)
    rows = staged_rows(warehouse, entity, partitions, current)
    actions = plan(entity, rows, current, knowledge)
    kinds: dict[str, int] = {}
    for action in actions:
        kinds[action.kind] = kinds.get(action.kind, 0) + 1
    run_id = f"{dt.datetime.now(dt.UTC):%Y%m%dT%H%M%S}-{uuid.uuid4().hex[:8]}"
    if dry_run:
        outcomes = [Outcome(a, "planned", a.m3ter_id, a.version, a.message) for a in actions]
        # Later entities of the same dry run may reference what this one would create.
        for action in actions:
            if action.kind == "create" and action.code:
                current.remember(
                    ENTITIES[entity].collection,
                    {"id": f"{PLANNED}{action.code})", "code": action.code},
                )
    else:
        write_pending(
            warehouse, entity, run_id, [a for a in actions if a.kind == "create" or a.adopt]
        )
        outcomes = apply(client, actions, current, concurrency, _counter(actions, progress))
        write_journal(warehouse, entity, run_id, outcomes)
    spent = client.spent() - before
    return LoadResult(
        entity=entity,
        dry_run=dry_run,
        actions=dict(sorted(kinds.items())),
        outcomes=counts(outcomes),
        rejects=[
            (o.action.source_id, o.message or "")
            for o in outcomes
            if o.status in ("rejected", "failed")
        ],
        changed=_changed(actions),
        failures=[(o.action.source_id, o.message or "") for o in outcomes if o.status == "failed"],
        api_calls=spent.calls,
        writes=spent.writes,
        seconds=time.monotonic() - started,
        run_id=run_id,
        planned=actions,
    )


def _counter(
    actions: Sequence[Action], progress: Callable[[int, int], None] | None
) -> Callable[[Outcome], None] | None:
    if progress is None:
        return None
    total = sum(1 for a in actions if a.writes)
    done = itertools.count(1)
    lock = threading.Lock()

    def count(_: Outcome) -> None:
        with lock:
            progress(next(done), total)

    return count


def _changed(actions: Sequence[Action]) -> list[dict[str, Any]]:
    listed = []
    for action in actions:
        if not action.writes:
            continue
        fields = action.changes or {
            name: (None, value) for name, value in (action.body or {}).items()
        }
        listed.append(
            {
                "action": action.kind,
                "source": f"{action.source_object} {action.source_id}",
                "code": action.code,
                "changes": {name: [_short(b), _short(a)] for name, (b, a) in fields.items()},
            }
        )
        if len(listed) >= LISTED_CHANGES:
            break
    return listed


def _short(value: Any) -> Any:
    text = json.dumps(value, default=str)
    return value if len(text) <= 80 else text[:77] + "..."
