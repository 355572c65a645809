"""Staged rows as m3ter request bodies, and the comparison that decides whether one changed.

A staged row is flat, with references as codes and nested values as JSON; a body is what m3ter
takes: ids for references, `address` as an object, absent fields left out (a PUT replaces the
whole object, so leaving a field out clears it, as the staged null says).

m3sync decides only the fields a row's mapping sets (the row's `_fields`): those are compared,
through m3ter's echo (`pipeline/m3ter/echo.py`), and written; every other field of the object is
m3ter's own and is sent back as m3ter holds it.
"""

from __future__ import annotations

import datetime as dt
import json
import math
from collections.abc import Callable, Iterable, Mapping
from decimal import Decimal
from typing import Any

from pipeline.load.entities import COMPUTED, READ_ONLY, LoadEntity
from pipeline.m3ter.echo import is_blank, same, same_map
from pipeline.mapping.compiler import CUSTOM_FIELDS, FIELDS, SEGMENT
from pipeline.mapping.targets import TARGETS

Resolve = Callable[[str, str], str | None]  # (collection, code) -> id
PRICE_COLUMNS = ("unitPrice", "fixedPrice")
BANDS = "pricingBands"
WHOLE_MAPS = frozenset({CUSTOM_FIELDS, SEGMENT})  # maps m3sync decides whole


class UnknownReference(ValueError):
    """A staged code names no m3ter object: the row is rejected, the others go on."""


def field_of(spec: LoadEntity, column: str) -> str:
    """The m3ter field (a dotted path for a nested member) a staged column sets."""
    if column in PRICE_COLUMNS:
        return BANDS
    for ref in spec.references:
        if ref.column == column:
            return ref.field
    return column


def managed_fields(spec: LoadEntity) -> frozenset[str]:
    """Every m3ter field a mapping of `spec` may set: what a row of unknown origin decides."""
    fields = {field_of(spec, target.name) for target in TARGETS[spec.entity]}
    if not spec.sends_code:
        fields.discard("code")
    fields.add(CUSTOM_FIELDS)
    if spec.entity == "pricings":
        fields.add(SEGMENT)
    return frozenset(fields)


def row_fields(spec: LoadEntity, row: Mapping[str, Any]) -> frozenset[str]:
    """The m3ter fields the row's mapping sets (all a mapping may set, for a row staged before
    rows named them)."""
    columns = row.get(FIELDS)
    if columns is None or (isinstance(columns, float) and math.isnan(columns)):
        return managed_fields(spec)
    return frozenset(
        field_of(spec, column) for column in columns if spec.sends_code or column != "code"
    )


def body_of(spec: LoadEntity, row: Mapping[str, Any], resolve: Resolve) -> dict[str, Any]:
    """The m3ter body of one staged row; raises UnknownReference for a code m3ter lacks."""
    references = {r.column: r for r in spec.references}
    body: dict[str, Any] = {}
    for name, value in row.items():
        if name.startswith("_") or value is None or (name == "code" and not spec.sends_code):
            continue
        if isinstance(value, float) and math.isnan(value):
            continue
        if name in references:
            ref = references[name]
            found = resolve(ref.collection, value)
            if found is None:
                raise UnknownReference(f"{name} {value!r}: no m3ter {ref.collection} has this code")
            body[ref.field] = found
        elif name in WHOLE_MAPS:
            body[name] = json.loads(value)
        elif "." in name:
            parent, child = name.split(".", 1)
            body.setdefault(parent, {})[child] = value
        else:
            body[name] = _plain(value)
    return body


def _plain(value: Any) -> Any:
    if isinstance(value, list):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, dt.date | dt.datetime):
        return value.isoformat()
    if isinstance(value, Decimal):
        return float(value)
    return value


def value_at(obj: Mapping[str, Any], path: str) -> Any:
    """A field's value, following a dotted path into nested objects."""
    parent, _, member = path.partition(".")
    value = obj.get(parent)
    if not member:
        return value
    return value.get(member) if isinstance(value, dict) else None


def changes(
    desired: Mapping[str, Any], current: Mapping[str, Any], fields: Iterable[str]
) -> dict[str, tuple[Any, Any]]:
    """field -> (current, desired) for each of `fields` whose value m3ter holds otherwise."""
    found = {}
    for path in sorted(fields):
        before, after = value_at(current, path), value_at(desired, path)
        if path in WHOLE_MAPS:
            equal = same_map(after, before)
        else:
            equal = same(path.rpartition(".")[2], after, before)
        if not equal:
            found[path] = (before, after)
    return found


def full_body(
    spec: LoadEntity,
    desired: Mapping[str, Any],
    current: Mapping[str, Any],
    fields: Iterable[str],
) -> dict[str, Any]:
    """The whole object to PUT: `fields` as desired, every other field as m3ter holds it.

    What m3ter answers and never takes (ids, versions, audit and derived fields) stays out, and
    so do blanks: m3ter's echo of a field never given (`""`, `false`, `0`) cannot be told from a
    value set on purpose, and sending it back would turn "unset" into a value.
    """
    skipped = READ_ONLY | COMPUTED.get(spec.entity, frozenset())
    body = {k: v for k, v in current.items() if k not in skipped and not is_blank(v)}
    for path in fields:
        parent, _, member = path.partition(".")
        wanted = value_at(desired, path)
        if not member:
            if wanted is None:
                body.pop(parent, None)
            else:
                body[parent] = wanted
            continue
        nested = dict(body.get(parent) or {})
        if wanted is None:
            nested.pop(member, None)
        else:
            nested[member] = wanted
        if nested:
            body[parent] = nested
        else:
            body.pop(parent, None)
    return body
