"""Field plans: which columns an extract selects, checked against describe before any job starts."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable, Collection, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from pipeline.extract.errors import FieldNotFound
from pipeline.extract.objects import SourceObject

Describe = Callable[[str], dict[str, Any]]

# describe `type` -> DuckDB column type of the raw table
DUCKDB_TYPES = {
    "boolean": "BOOLEAN",
    "int": "BIGINT",
    "double": "DOUBLE",
    "currency": "DOUBLE",
    "percent": "DOUBLE",
    "date": "DATE",
    "datetime": "TIMESTAMP",
}
# Compound fields cannot be selected in Bulk API queries; their parts can.
UNSELECTABLE_TYPES = frozenset({"address", "location", "base64"})
STAMP = "SystemModstamp"
# Read with every deletable object's rows: a line created as another is deleted may be its
# replacement (`staging/successions.py`).
CREATED = "CreatedDate"


@dataclass(frozen=True)
class Column:
    path: str  # as selected and as named in the raw table, e.g. `Order.Account.Region__c`
    type: str  # describe type

    @property
    def duckdb_type(self) -> str:
        return DUCKDB_TYPES.get(self.type, "VARCHAR")


@dataclass(frozen=True)
class FieldPlan:
    """The columns of one object's extract, with the stamps of every parent they read through."""

    sobject: str
    columns: tuple[Column, ...]
    parents: tuple[str, ...]  # relationship prefixes, e.g. ("Order", "Order.Account")
    soft_delete: bool
    # The integration user, the stamps (as in `stamps`) of objects m3sync writes sync statuses
    # back to, and when it began to: a change there since then whose last writer is that user
    # is m3sync's own write-back, which no window reads (`writeback/`).
    writer: str | None = None
    written: tuple[str, ...] = ()
    written_since: dt.datetime | None = None

    @property
    def stamps(self) -> tuple[str, ...]:
        """The modification stamps that make a row new: its own and each parent's."""
        return (STAMP, *(f"{parent}.{STAMP}" for parent in self.parents))

    def column(self, path: str) -> Column:
        return next(c for c in self.columns if c.path == path)


def _fields_by_name(describe: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {f["name"].lower(): f for f in describe["fields"]}


def _relationships(describe: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {
        f["relationshipName"].lower(): f for f in describe["fields"] if f.get("relationshipName")
    }


def resolve_path(sobject: str, path: str, describe: Describe) -> tuple[str, str, list[str]]:
    """Canonical path, field type and canonical parent prefixes of one field or relationship
    path (`resolve_field`)."""
    canonical, field, prefixes = resolve_field(sobject, path, describe)
    return canonical, field["type"], prefixes


def resolve_field(
    sobject: str, path: str, describe: Describe
) -> tuple[str, dict[str, Any], list[str]]:
    """Canonical path, the describe entry of the field it ends on, and canonical parent
    prefixes of one field or relationship path.

    Matches case-insensitively; raises FieldNotFound when any step is missing,
    hidden by field-level security, polymorphic, too deep or not selectable in bulk queries.
    """
    parts = path.split(".")
    current = sobject
    canonical: list[str] = []
    prefixes: list[str] = []
    for depth, relationship in enumerate(parts[:-1]):
        described = describe(current)
        field = _relationships(described).get(relationship.lower())
        if field is None:
            raise FieldNotFound(sobject, path, f"{current} has no relationship {relationship!r}")
        targets = field.get("referenceTo") or []
        if len(targets) != 1:
            raise FieldNotFound(
                sobject,
                path,
                f"{current}.{relationship} is polymorphic ({targets}); select a "
                "field of the lookup itself instead",
            )
        if depth >= 4:
            raise FieldNotFound(sobject, path, "relationship paths are limited to 5 levels")
        canonical.append(field["relationshipName"])
        prefixes.append(".".join(canonical))
        current = targets[0]
    field = _fields_by_name(describe(current)).get(parts[-1].lower())
    if field is None:
        raise FieldNotFound(sobject, path, f"{current} has no field {parts[-1]!r}")
    if field["type"] in UNSELECTABLE_TYPES:
        raise FieldNotFound(
            sobject,
            path,
            f"{current}.{field['name']} is a {field['type']} field, which bulk "
            "queries cannot select",
        )
    canonical.append(field["name"])
    return ".".join(canonical), field, prefixes


_UNSTAMPED_INPUTS = re.compile(r"\b(TODAY|NOW|TIMENOW)\s*\(|\.", re.IGNORECASE)


def changes_unstamped(field: Mapping[str, Any]) -> bool:
    """Whether a field (its describe entry) is calculated in a way that can change its value
    while no `SystemModstamp` moves: a roll-up or a formula describe does not show, or a
    formula over a parent's field (`Account.Region__c`) or the date (`TODAY()`). A formula over
    the record's own fields changes only when they do, which moves the record's stamp."""
    if not field.get("calculated"):
        return False
    formula = field.get("calculatedFormula")
    return not formula or bool(_UNSTAMPED_INPUTS.search(formula))


def plan_fields(
    source: SourceObject,
    describe: Describe,
    extra: Iterable[str] = (),
    *,
    writer: str | None = None,
    written_back: Collection[str] = (),
    written_since: dt.datetime | None = None,
) -> FieldPlan:
    """Resolve an object's fields (defaults plus `extra`) against describe, in a stable order.

    `written_back` names the objects whose sync status the integration user `writer` has
    written back since `written_since`. Raises FieldNotFound naming object and field for
    anything the integration user cannot see.
    """
    described = describe(source.name)
    names = _fields_by_name(described)
    soft_delete = "isdeleted" in names
    deletable = ["IsDeleted", *([CREATED] if CREATED.lower() in names else [])]
    wanted = ["Id", STAMP, *(deletable if soft_delete else [])]
    if source.all_fields:
        wanted += [f["name"] for f in described["fields"] if f["type"] not in UNSELECTABLE_TYPES]
    wanted += [*source.fields, *extra]

    columns: dict[str, Column] = {}
    parents: dict[str, None] = {}
    for path in wanted:
        canonical, kind, prefixes = resolve_path(source.name, path, describe)
        columns.setdefault(canonical, Column(canonical, kind))
        parents.update(dict.fromkeys(prefixes))
    written: list[str] = [STAMP] if source.name in written_back else []
    for parent in parents:
        stamp, kind, _ = resolve_path(source.name, f"{parent}.{STAMP}", describe)
        columns.setdefault(stamp, Column(stamp, kind))
        if object_at(source.name, parent, describe) in written_back:
            written.append(stamp)
    if not writer or written_since is None:
        written = []
    return FieldPlan(
        source.name,
        tuple(columns.values()),
        tuple(parents),
        soft_delete,
        writer if written else None,
        tuple(written),
        written_since if written else None,
    )


def object_at(sobject: str, prefix: str, describe: Describe) -> str:
    """The object a relationship prefix of `sobject` lands on (`Order.Account` -> Account)."""
    current = sobject
    for relationship in prefix.split("."):
        current = _relationships(describe(current))[relationship.lower()]["referenceTo"][0]
    return current
