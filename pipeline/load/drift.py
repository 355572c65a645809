"""A full reconcile: the whole staged state against m3ter, with drift told apart from backlog.

A partition run only looks at what changed in Salesforce. Objects someone edits or deletes in
m3ter by hand are found only by comparing everything, which is what this does. `load.id_map`
remembers the version of every object as m3sync last wrote or saw it, so a difference splits in
two:

- **drift**: m3ter changed behind m3sync's back (its version moved on from the one we recorded,
  or an object we made is gone);
- **pending**: Salesforce changed and the change is not loaded yet (the object is still at the
  version we wrote, or was never made).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from pipeline.load.client import Client
from pipeline.load.current import Current
from pipeline.load.entities import ORDER
from pipeline.load.journal import ID_MAP
from pipeline.load.reconcile import Action
from pipeline.load.run import LoadResult, load
from pipeline.mapping.spec import Entity
from pipeline.warehouse import Warehouse

Cause = Literal["changed_in_m3ter", "deleted_in_m3ter", "pending"]
LISTED = 50  # drifted objects listed per entity


@dataclass(frozen=True)
class Drifted:
    entity: Entity
    source: str  # Salesforce object and record Id
    code: str | None
    cause: Cause
    action: str
    changes: dict[str, tuple[Any, Any]]


@dataclass
class EntityDrift:
    entity: Entity
    causes: dict[str, int] = field(default_factory=dict)  # cause -> objects
    listed: list[Drifted] = field(default_factory=list)  # up to LISTED, drift first
    load: LoadResult | None = None


@dataclass(frozen=True)
class ReconcileResult:
    applied: bool
    entities: list[EntityDrift]

    @property
    def drift(self) -> int:
        return sum(n for e in self.entities for c, n in e.causes.items() if c != "pending")

    @property
    def pending(self) -> int:
        return sum(e.causes.get("pending", 0) for e in self.entities)


def _recorded(warehouse: Warehouse) -> dict[tuple[str, str, str], tuple[str | None, int | None]]:
    """(entity, source object, source id) -> (m3ter id, version) as last journaled."""
    if not warehouse.partitions(ID_MAP):
        return {}
    con = warehouse.connect()
    try:
        rows = con.execute(
            f"SELECT entity, source_object, source_id, m3ter_id, version FROM {ID_MAP.sql}"
        ).fetchall()
    finally:
        con.close()
    return {(e, o, i): (m, v) for e, o, i, m, v in rows}


def cause_of(action: Action, recorded: tuple[str | None, int | None] | None) -> Cause | None:
    """Why an action is needed, or None when it is not (unchanged, or refused before m3ter)."""
    if action.kind in ("unchanged", "reject"):
        return None
    known_id, known_version = recorded or (None, None)
    if action.kind == "create":
        return "deleted_in_m3ter" if known_id else "pending"
    moved = known_version is not None and action.version not in (None, known_version)
    if known_id == action.m3ter_id and moved:
        return "changed_in_m3ter"
    return "pending"


def full_reconcile(
    client: Client,
    warehouse: Warehouse,
    *,
    apply: bool = False,
    concurrency: int = 4,
    entities: Sequence[Entity] = ORDER,
) -> ReconcileResult:
    """Diff every staged object against m3ter, entity by entity in dependency order; write the
    differences (drift and pending alike) only when `apply` is set."""
    recorded = _recorded(warehouse)
    current = Current(client, whole=True)
    found = []
    for entity in entities:
        result = load(
            client,
            warehouse,
            entity,
            None,
            dry_run=not apply,
            concurrency=concurrency,
            current=current,
        )
        drift = EntityDrift(entity, load=result)
        drifted: list[Drifted] = []
        for action in result.planned:
            cause = cause_of(action, recorded.get((entity, action.source_object, action.source_id)))
            if cause is None:
                continue
            drift.causes[cause] = drift.causes.get(cause, 0) + 1
            drifted.append(
                Drifted(
                    entity,
                    f"{action.source_object} {action.source_id}",
                    action.code,
                    cause,
                    action.kind,
                    action.changes,
                )
            )
        drifted.sort(key=lambda d: d.cause == "pending")
        drift.listed = drifted[:LISTED]
        drift.causes = dict(sorted(drift.causes.items()))
        found.append(drift)
    return ReconcileResult(applied=apply, entities=found)
