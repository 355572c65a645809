"""How an m3ter answer shows an object: every field of the response model, as m3ter writes it.

A stored object holds what a client sent (with documented defaults); an answer adds every field
that was never sent, with the value m3ter shows for it (`Field.unset`), writes integral numbers
without a fraction and date-times with milliseconds. A client that compares what it sent with what
it reads back must allow for all of it.
"""

from __future__ import annotations

import copy
from typing import Any

from pipeline.sandbox.m3ter.entities import Entity, Field
from pipeline.sandbox.m3ter.validation import AUDIT_FIELDS, format_datetime, parse_datetime

# Derived fields that have no value for an object, as answered.
COMPUTED_UNSET: dict[str, Any] = {"segmentString": "", "segments": []}


def present(entity: Entity, obj: dict[str, Any], computed: dict[str, Any]) -> dict[str, Any]:
    """The answer for a stored object and the read-only fields derived for it."""
    answer: dict[str, Any] = {"id": obj["id"]}
    for spec in entity.fields:
        answer[spec.name] = shown(spec, obj.get(spec.name))
    for name in entity.computed:
        answer[name] = number(computed.get(name, copy.deepcopy(COMPUTED_UNSET.get(name))))
    for name in AUDIT_FIELDS[1:]:
        if name in obj:
            answer[name] = obj[name]
    for name in ("dtCreated", "dtLastModified"):
        stamp = parse_datetime(answer[name]) if isinstance(answer.get(name), str) else None
        if stamp is not None:
            answer[name] = format_datetime(stamp)
    return answer


def shown(spec: Field, value: Any) -> Any:
    if value is None:
        return copy.deepcopy(spec.unset)
    if spec.kind == "datetime" and isinstance(value, str):
        stamp = parse_datetime(value)
        return format_datetime(stamp) if stamp is not None else value
    if spec.kind == "object" and isinstance(value, dict):
        return {item.name: shown(item, value.get(item.name)) for item in spec.items}
    if spec.kind == "object_list" and isinstance(value, list):
        return [
            {item.name: shown(item, member.get(item.name)) for item in spec.items}
            if isinstance(member, dict)
            else member
            for member in value
        ]
    return number(value)


def number(value: Any) -> Any:
    """[assume: pessimistic] m3ter writes an integral number without its fraction (`1000`, not
    `1000.0`), in maps and lists too."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, dict):
        return {k: number(v) for k, v in value.items()}
    if isinstance(value, list):
        return [number(v) for v in value]
    return value
