"""Checking a mapping set against the org: every field reference must resolve for the integration
user, and every problem is reported at once, each naming file, mapping, key and field."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from pipeline.extract.errors import FieldNotFound
from pipeline.extract.plan import resolve_path
from pipeline.mapping.errors import SegmentError
from pipeline.mapping.segments import parse_segments, resolve_segments
from pipeline.mapping.spec import Entity, MappingRecord, MappingSet
from pipeline.salesforce.errors import SalesforceExtractError

Describe = Callable[[str], dict[str, Any]]
# What describe() raises for an object the org does not have or hides from the integration user.
UNDESCRIBABLE = (SalesforceExtractError, ValueError, LookupError)


def reference_problems(mappings: MappingSet, describe: Describe) -> list[str]:
    """One line per field, custom field or segment that does not resolve on its source object."""
    problems: list[str] = []
    for entity, record in mappings:
        problems += _record_problems(mappings, entity, record, describe)
    return problems


def _record_problems(
    mappings: MappingSet, entity: Entity, record: MappingRecord, describe: Describe
) -> list[str]:
    try:
        describe(record.object)
    except UNDESCRIBABLE as exc:
        label = mappings.label(entity, record.name, "object")
        return [f"{label}: object: {record.object!r} cannot be described ({exc})"]
    problems = []
    for key, paths in (("fields", record.fields), ("custom_fields", record.custom_fields)):
        for target, path in paths.items():
            try:
                resolve_path(record.object, path, describe)
            except FieldNotFound as exc:
                label = mappings.label(entity, record.name, key, target)
                problems.append(
                    f"{label}: {key} key {target!r}: {path!r} does not resolve on "
                    f"{record.object} ({exc.reason}; fields hidden by field-level security "
                    "count as missing)"
                )
    if record.segments:
        location = mappings.locate(entity, record.name, "segments")
        try:
            resolve_segments(
                parse_segments(record.segments),
                source_object=record.object,
                describe=describe,
                file=str(location) if location else entity,
                mapping=record.name,
            )
        except SegmentError as exc:
            problems += str(exc).splitlines()
    return problems
