"""Staged rows as m3ter request bodies, and the comparison that decides whether one changed.

A staged row is flat, with references as codes and nested values as JSON; a body is what m3ter
takes: ids for references, `address` as an object, absent fields left out (a PUT replaces the
whole object, so leaving a field out clears it, as the staged null says).
"""

from __future__ import annotations

import datetime as dt
import json
import math
from collections.abc import Callable, Mapping
from decimal import Decimal
from typing import Any

from pipeline.load.entities import DEFAULTS, LoadEntity
from pipeline.mapping.compiler import CUSTOM_FIELDS, SEGMENT
from pipeline.mapping.targets import TARGETS

Resolve = Callable[[str, str], str | None]  # (collection, code) -> id


class UnknownReference(ValueError):
    """A staged code names no m3ter object: the row is rejected, the others go on."""


def managed_fields(spec: LoadEntity) -> frozenset[str]:
    """The m3ter fields the staged rows of `spec` decide; m3ter's other fields are its own."""
    fields: set[str] = {CUSTOM_FIELDS, SEGMENT, "pricingBands"}
    references = {r.column: r.field for r in spec.references}
    for target in TARGETS[spec.entity]:
        if target.name in ("unitPrice", "fixedPrice"):
            continue
        fields.add(references.get(target.name, target.name.split(".", 1)[0]))
    if spec.entity != "pricings":
        fields -= {SEGMENT, "pricingBands"}
    return frozenset(fields)


def body_of(spec: LoadEntity, row: Mapping[str, Any], resolve: Resolve) -> dict[str, Any]:
    """The m3ter body of one staged row; raises UnknownReference for a code m3ter lacks."""
    references = {r.column: r for r in spec.references}
    body: dict[str, Any] = {}
    for name, value in row.items():
        if name.startswith("_") or value is None:
            continue
        if isinstance(value, float) and math.isnan(value):
            continue
        if name in references:
            ref = references[name]
            found = resolve(ref.collection, value)
            if found is None:
                raise UnknownReference(f"{name} {value!r}: no m3ter {ref.collection} has this code")
            body[ref.field] = found
        elif name in (CUSTOM_FIELDS, SEGMENT):
            # A segmented mapping whose every value is null stages `{}`: every key omitted,
            # which m3ter reads as wildcards (DESIGN §6 rule 8); unsegmented ones stage null.
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


def changes(
    spec: LoadEntity, desired: Mapping[str, Any], current: Mapping[str, Any]
) -> dict[str, tuple[Any, Any]]:
    """field -> (current, desired) for every managed field whose value differs."""
    found = {}
    for name in managed_fields(spec):
        before, after = current.get(name), desired.get(name)
        if _normal(name, before) != _normal(name, after):
            found[name] = (before, after)
    return found


def _normal(name: str, value: Any) -> Any:
    """Values as compared: defaults filled in, numbers as floats, band ids and nulls dropped."""
    if value is None:
        value = DEFAULTS.get(name)
    if isinstance(value, bool) or value is None:
        return value
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str):
        return _instant(value)
    if isinstance(value, list):
        return [_normal(name, v) for v in value]
    if isinstance(value, dict):
        return {
            k: _normal(k, v)
            for k, v in value.items()
            if v is not None and not (name == "pricingBands" and k in ("id", "creditTypeId"))
        }
    return value


def _instant(text: str) -> str:
    """m3ter may echo `2024-01-01T00:00:00.000Z` for the `2024-01-01T00:00:00Z` it was sent."""
    if len(text) >= 20 and text[10:11] == "T" and text.endswith("Z"):
        try:
            parsed = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
        except ValueError:
            return text
        return parsed.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    return text
