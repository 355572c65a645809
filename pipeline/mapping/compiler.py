"""Mappings compiled to SQL: one statement per m3ter entity over the raw tables.

Each mapping becomes a SELECT over its source object's raw rows: its `where` as a condition,
each target as an expression that turns the Salesforce value into m3ter's wire form
(`targets.py`), `customFields` and the pricing `segment` as JSON text built in the same row
expression, and `_errors`, the values that could not be converted. An entity's statement is the
union of its mappings plus one *tombstone* per source row that no mapping takes any more
(deleted in Salesforce, or no longer matching): the load end-dates what a tombstone names.

Compiling checks every reference against describe (fields hidden by field-level security count
as missing) and reports every problem of the set at once, each naming file, mapping, key and
field. The field paths the compiled mappings read are what the extract selects.
"""

from __future__ import annotations

import datetime as dt
import math
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from difflib import get_close_matches
from typing import Any

from pipeline.extract.errors import FieldNotFound
from pipeline.extract.objects import SourceObject, SourceObjects, source_objects
from pipeline.extract.plan import changes_unstamped, resolve_field
from pipeline.mapping.errors import MappingError, SegmentError
from pipeline.mapping.products import ProductMapping, resolution_sql
from pipeline.mapping.segments import parse_segments, resolve_segments, segment_sql
from pipeline.mapping.spec import ENTITIES, SEGMENTED_ENTITIES, Entity, MappingRecord, MappingSet
from pipeline.mapping.targets import (
    CUSTOM_FIELD_ENTITIES,
    DATE_KINDS,
    DATETIME_KINDS,
    NUMBER_KINDS,
    TARGETS,
    TEXT_KINDS,
    Target,
    has_code,
    targets,
)
from pipeline.mapping.templates import is_template, parse_template
from pipeline.mapping.where import ID_TYPES, NUMBER_TYPES, TEXT_TYPES, WhereError, compile_where
from pipeline.mapping.writeback import StatusFields, compile_rows
from pipeline.salesforce.errors import SalesforceExtractError
from pipeline.warehouse.sql import identifier, literal

Describe = Callable[[str], dict[str, Any]]

# Columns every staged row carries besides the m3ter fields.
META_COLUMNS = (
    "_source_object",
    "_source_id",
    "_mapping",
    "_version_stamp",
    "_tombstone",
    "_fields",
    "_grouped",
    "_combine",
    "_agreement",
    "_identity",
)
CUSTOM_FIELDS = "customFields"
SEGMENT = "segment"
SEGMENT_WILDCARDS = "_segment_wildcards"
# The staged columns a row's mapping sets: the fields m3sync decides on its m3ter object (null
# ones included, to be cleared); the object's other fields are left as m3ter holds them.
FIELDS = "_fields"
# Whether the row's mapping computes its code, so that rows sharing it are one object, and how
# those rows combine the fields they need not agree on (`startDate:earliest`).
GROUPED = "_grouped"
COMBINE = "_combine"
# The agreement a row belongs to: a line's header (its Order, Opportunity or Quote), else the
# record itself; what sync levels and coverage speak of.
AGREEMENT = "_agreement"
# Who a row is across replacements: its mapping's `identity` field, else the record its values
# show it replaced (`CONTINUES`, from `staging/successions.py`), else its own Id. Keys that name
# the record (a default code, `planCode: Id`) name its identity, so a replacement keeps them.
IDENTITY = "_identity"
# The identity a line continues, which the stage's relation supplies for lines without an
# `identity` field (null for the others).
CONTINUES = "_continues"
ERRORS = "_errors"
CONFLICT = "_conflict"
# Columns the stage reads to reject rows, and never writes to a staged table.
INTERNAL = (ERRORS, CONFLICT)

# Salesforce's standard line objects, with the field naming their header. Any other object is
# a line when its mapping says which field names its agreement (`agreement`), and a header of
# its own otherwise.
STANDARD_LINE_HEADERS = {
    "OrderItem": "OrderId",
    "OpportunityLineItem": "OpportunityId",
    "QuoteLineItem": "QuoteId",
}
# Per entity, the field that groups an agreement's lines: the object's own code, or for a
# pricing (one per line) the code of the plan it sits on.
GROUPING_FIELD: dict[Entity, str] = {
    "plans": "code",
    "account_plans": "code",
    "pricings": "planCode",
    "plan_groups": "code",
    "plan_group_links": "code",
}
# Target kinds that name an m3ter object: where the record's Id stands for its identity.
KEY_KINDS = frozenset({"code", "reference"})
# Which target kinds each combine rule can combine.
RULE_KINDS: dict[str, frozenset[str]] = {
    "earliest": DATE_KINDS | DATETIME_KINDS,
    "latest": DATE_KINDS | DATETIME_KINDS,
    "min": DATE_KINDS | DATETIME_KINDS | NUMBER_KINDS | {"integer"},
    "max": DATE_KINDS | DATETIME_KINDS | NUMBER_KINDS | {"integer"},
    "sum": NUMBER_KINDS | {"integer"},
}
TEXT = Target("text", "text")
_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
_DATETIME_TEXT = "%Y-%m-%dT%H:%M:%SZ"
_BIGINT_MIN, _BIGINT_MAX = -(2**63), 2**63 - 1
# What describe() raises for an object the org does not have or hides from the integration user.
_UNDESCRIBABLE = (SalesforceExtractError, ValueError, LookupError)


class MappingCompileError(MappingError):
    """Every problem of a mapping set, one per line."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = tuple(problems)
        super().__init__("\n".join(problems))


@dataclass(frozen=True)
class CompiledMapping:
    entity: Entity
    name: str
    source: str  # the Salesforce object, canonical name
    condition: str  # SQL BOOLEAN over a raw row, never NULL
    values: dict[str, str]  # staged column -> SQL expression over a raw row
    errors: tuple[str, ...]  # SQL expressions: a conversion problem's message, or NULL
    columns: tuple[str, ...]  # raw column paths read
    warnings: tuple[str, ...] = ()
    grouped: bool = False  # the code is computed: rows sharing it are one object
    header: str | None = None  # a line's field naming its agreement; None on a header
    combine: Mapping[str, str] = field(default_factory=dict)  # field -> combine rule
    identity: str | None = None  # the raw column naming the line across replacements

    @property
    def sets(self) -> tuple[str, ...]:
        """The staged columns this mapping fills (its fields, hardcoded values, custom fields
        and segment), in table order."""
        return tuple(name for name in self.values if name != SEGMENT_WILDCARDS)


@dataclass(frozen=True)
class CompiledEntity:
    """One entity's mappings, and the statement that stages a partition of them."""

    entity: Entity
    mappings: tuple[CompiledMapping, ...]
    soft_delete: Mapping[str, bool] = field(default_factory=dict)  # source -> has IsDeleted
    objects: tuple[SourceObject, ...] = ()  # the extracted objects its mappings read

    @property
    def sources(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(m.source for m in self.mappings))

    def source(self, name: str) -> SourceObject:
        return next((o for o in self.objects if o.name == name), SourceObject(name))

    def identity_field(self, source: str) -> str | None:
        """The raw column `source`'s mappings name as its lines' identity (they agree)."""
        return next((m.identity for m in self.mappings if m.source == source and m.identity), None)

    def succeeds(self, source: str) -> bool:
        """Whether `source`'s rows take their identity from successions: deletable lines whose
        mappings name no identity field (the relation then supplies `CONTINUES`)."""
        lines = any(m.header is not None for m in self.mappings if m.source == source)
        return lines and self.soft_delete.get(source, False) and not self.identity_field(source)

    @property
    def columns(self) -> dict[str, str]:
        """Staged column -> DuckDB type, in table order (m3ter fields first, then ours)."""
        columns = {t.name: t.duckdb_type for t in TARGETS[self.entity]}
        if self.entity in CUSTOM_FIELD_ENTITIES:
            columns[CUSTOM_FIELDS] = "VARCHAR"
        if self.entity in SEGMENTED_ENTITIES:
            columns[SEGMENT] = "VARCHAR"
            columns[SEGMENT_WILDCARDS] = "INTEGER"
        columns.update(
            {
                "_source_object": "VARCHAR",
                "_source_id": "VARCHAR",
                "_mapping": "VARCHAR",
                "_version_stamp": "TIMESTAMP",
                "_tombstone": "BOOLEAN",
                FIELDS: "VARCHAR[]",
                GROUPED: "BOOLEAN",
                COMBINE: "VARCHAR[]",
                AGREEMENT: "VARCHAR",
                IDENTITY: "VARCHAR",
                ERRORS: "VARCHAR[]",
                CONFLICT: "VARCHAR",
            }
        )
        return columns

    def sql(self, relation: Callable[[str], str], extra: Sequence[str] = ()) -> str:
        """Every mapped row and every tombstone; `relation(source)` is the raw rows' SQL source.

        The relation must hold one row per record (the latest version in the partition); its
        `extra` columns are passed through after the staged ones.
        """
        if not self.mappings:
            nothing = ", ".join(f"NULL AS {identifier(name)}" for name in extra) or "1"
            return f"SELECT {self._typed({}, extra)} FROM (SELECT {nothing}) AS src WHERE false"
        return "\nUNION ALL\n".join(
            self._source_sql(source, relation(source), extra) for source in self.sources
        )

    def _typed(self, values: Mapping[str, str], extra: Sequence[str]) -> str:
        typed = [
            f"CAST({values.get(name, 'NULL')} AS {kind}) AS {identifier(name)}"
            for name, kind in self.columns.items()
        ]
        typed += [f"src.{identifier(name)} AS {identifier(name)}" for name in extra]
        return ", ".join(typed)

    def _source_sql(self, source: str, relation: str, extra: Sequence[str]) -> str:
        """One scan of `source`'s rows: each takes the first mapping whose condition it meets
        (`_m`), or none (-1, a tombstone); a row that several mappings take names them all in
        `_conflict`, so that it can be rejected rather than staged twice."""
        mappings = [m for m in self.mappings if m.source == source]
        deleted = 'coalesce(src."IsDeleted", false)' if self.soft_delete.get(source) else "false"
        first = " ".join(f"WHEN {m.condition} THEN {i}" for i, m in enumerate(mappings))
        conflict = "NULL"
        if len(mappings) > 1:
            taken = " + ".join(f"CAST({m.condition} AS INTEGER)" for m in mappings)
            names = ", ".join(
                f"CASE WHEN {m.condition} THEN {literal(m.name)} END" for m in mappings
            )
            conflict = f"CASE WHEN NOT {deleted} AND {taken} > 1 THEN concat_ws(', ', {names}) END"
        named = self.identity_field(source)
        identity = 'src."Id"'
        if named:
            identity = f'coalesce(CAST(src.{identifier(named)} AS VARCHAR), src."Id")'
        elif self.succeeds(source):
            identity = f'coalesce(src.{identifier(CONTINUES)}, src."Id")'
        scan = (
            f"SELECT *, CASE WHEN {deleted} THEN -1 {first} ELSE -1 END AS _m, "
            f"{conflict} AS _conflict, {identity} AS {IDENTITY} FROM {relation} AS src"
        )

        def by_mapping(expressions: Sequence[str | None], otherwise: str = "NULL") -> str:
            branches = " ".join(
                f"WHEN {i} THEN {expr}" for i, expr in enumerate(expressions) if expr is not None
            )
            return f"CASE _m {branches} ELSE {otherwise} END" if branches else otherwise

        values = {
            name: by_mapping([m.values.get(name) for m in mappings])
            for name in dict.fromkeys(name for m in mappings for name in m.values)
        }
        values.update(
            {
                "_source_object": literal(source),
                "_source_id": 'src."Id"',
                "_mapping": by_mapping([literal(m.name) for m in mappings]),
                "_version_stamp": 'src."_version_stamp"',
                "_tombstone": "_m = -1",
                FIELDS: by_mapping([_text_list(m.sets) for m in mappings]),
                GROUPED: by_mapping(["true" if m.grouped else "false" for m in mappings]),
                COMBINE: by_mapping(
                    [_text_list([f"{k}:{r}" for k, r in m.combine.items()]) for m in mappings]
                ),
                AGREEMENT: f"src.{identifier(mappings[0].header or 'Id')}",
                IDENTITY: f"src.{identifier(IDENTITY)}",
                ERRORS: by_mapping(
                    [_error_list(m.errors) if m.errors else None for m in mappings],
                    "CAST([] AS VARCHAR[])",
                ),
                CONFLICT: "_conflict",
            }
        )
        return f"SELECT {self._typed(values, extra)} FROM ({scan}) AS src"


@dataclass(frozen=True)
class CompiledSet:
    entities: Mapping[Entity, CompiledEntity]
    objects: SourceObjects = field(default_factory=lambda: SourceObjects((), {}))
    # where sync statuses are written back, when the run writes them (`mapping/writeback.py`)
    writeback: tuple[StatusFields, ...] = ()

    def __getitem__(self, entity: Entity) -> CompiledEntity:
        return self.entities[entity]

    def fields(self, sobject: str) -> tuple[str, ...]:
        """The raw columns every mapping of `sobject` reads: what its extract must select."""
        paths: dict[str, None] = {}
        for compiled in self.entities.values():
            for mapping in compiled.mappings:
                if mapping.source == sobject:
                    paths.update(dict.fromkeys(mapping.columns))
        for row in self.writeback:
            if row.object == sobject and row.key != "Id":
                paths[row.key] = None  # an upsert finds the record by it
        return tuple(paths)

    @property
    def warnings(self) -> tuple[str, ...]:
        return tuple(w for c in self.entities.values() for m in c.mappings for w in m.warnings)


def compile_mappings(
    mappings: MappingSet, describe: Describe, *, writeback: bool = False
) -> CompiledSet:
    """Compile every active mapping, and the write-back rows when `writeback` (a run that
    writes statuses back); raises MappingCompileError listing every problem."""
    problems: list[str] = []
    entities: dict[Entity, CompiledEntity] = {}
    # The first compiled mapping of each object: every entity's lines of it share one identity.
    identities: dict[str, CompiledMapping] = {}
    for entity in ENTITIES:
        compiled: list[CompiledMapping] = []
        soft_delete: dict[str, bool] = {}
        for record in mappings.active(entity):
            result = _compile_record(mappings, entity, record, describe)
            if isinstance(result, list):
                problems += result
                continue
            rival = _rival(compiled, result, "header")
            if rival is not None:
                problems.append(
                    f"{mappings.label(entity, record.name, 'agreement')}: agreement: "
                    f"{result.header or 'none'} differs from mapping {rival.name!r}'s "
                    f"({rival.header or 'none'}): one object's lines have one agreement"
                )
                continue
            rival = _rival([*identities.values(), *compiled], result, "identity")
            if rival is not None:
                problems.append(
                    f"{mappings.label(entity, record.name, 'identity')}: identity: "
                    f"{result.identity or 'none'} differs from mapping {rival.name!r}'s "
                    f"({rival.identity or 'none'}): one object's lines have one identity"
                )
                continue
            identities.setdefault(result.source, result)
            compiled.append(result)
            names = {f["name"] for f in describe(result.source)["fields"]}
            soft_delete[result.source] = "IsDeleted" in names
        entities[entity] = CompiledEntity(entity, tuple(compiled), soft_delete)
    rows: tuple[StatusFields, ...] = ()
    if writeback:
        mapped = {m.source for c in entities.values() for m in c.mappings}
        rows, found = compile_rows(mappings.writeback, mapped, describe)
        problems += found
    if problems:
        raise MappingCompileError(problems)
    objects = source_objects(mappings)
    entities = {
        entity: replace(compiled, objects=objects.by_entity[entity])
        for entity, compiled in entities.items()
    }
    return CompiledSet(entities, objects, rows)


def _rival(
    compiled: Sequence[CompiledMapping], result: CompiledMapping, key: str
) -> CompiledMapping | None:
    """A mapping of the same object that says otherwise about `key`."""
    return next(
        (
            m
            for m in compiled
            if m.source == result.source and getattr(m, key) != getattr(result, key)
        ),
        None,
    )


def _compile_record(
    mappings: MappingSet, entity: Entity, record: MappingRecord, describe: Describe
) -> CompiledMapping | list[str]:
    def label(*path: str) -> str:
        return mappings.label(entity, record.name, *path)

    try:
        described = describe(record.object)
    except _UNDESCRIBABLE as exc:
        return [f"{label('object')}: object: {record.object!r} cannot be described ({exc})"]
    source = described["name"]
    if source != record.object:
        # Raw tables and asset keys derive from the name as the mapping spells it, so two
        # spellings of one object would be two extracts.
        return [f"{label('object')}: object: {record.object!r} is spelled {source!r} in the org"]
    if not described.get("queryable", True):
        return [
            f"{label('object')}: object: the integration user cannot query {source} "
            "(grant Read on it in the integration user's permission set)"
        ]
    builder = _Builder(entity, source, describe)
    problems: list[str] = []
    header = record.agreement or STANDARD_LINE_HEADERS.get(source)
    if header is not None:
        try:
            header, kind = builder.resolve(header)
        except MappingError as exc:
            problems.append(f"{label('agreement')}: agreement: {exc}")
        else:
            if kind not in ("reference", "id"):
                problems.append(
                    f"{label('agreement')}: agreement: {header} is a {kind} field, not the "
                    "lookup naming the line's agreement"
                )
    identity = None
    if record.identity:
        try:
            identity, kind = builder.resolve(record.identity)
        except MappingError as exc:
            problems.append(f"{label('identity')}: identity: {exc}")
        else:
            if header is None:
                problems.append(
                    f"{label('identity')}: identity: only lines are replaced ({source} is "
                    "not a line object)"
                )
            elif kind not in ID_TYPES | TEXT_TYPES:
                problems.append(
                    f"{label('identity')}: identity: {identity} is a {kind} field, not an id "
                    "or text naming the line"
                )
    grain = sync_level_problem(entity, record, source, header)
    if grain:
        problems.append(f"{label('sync_level')}: sync_level: {grain}")
    condition = "true"
    if record.where:
        try:
            where = compile_where(record.where, source, describe)
        except WhereError as exc:
            problems.append(f"{label('where')}: where: {exc}")
        else:
            condition = where.sql
            for column in where.columns:
                builder.resolve(column)
    allowed = targets(entity)
    for section, items in (("fields", record.fields), ("hardcoded", record.hardcoded)):
        for name, value in items.items():
            target = allowed.get(name)
            if target is None:
                problems.append(
                    f"{label(section, name)}: {section} key {name!r}: not a field of m3ter "
                    f"{entity}{_suggestion(name, list(allowed))}"
                )
                continue
            try:
                if section == "fields":
                    builder.field(target, value)
                else:
                    builder.hardcoded(target, value)
            except MappingError as exc:
                problems.append(f"{label(section, name)}: {section} key {name!r}: {exc}")
    if record.product_mapping:
        try:
            builder.product_mapping(record.product_mapping, mappings.products)
        except MappingError as exc:
            problems.append(f"{label('product_mapping')}: {exc}")
    if record.custom_fields and entity not in CUSTOM_FIELD_ENTITIES:
        keys = ", ".join(repr(key) for key in record.custom_fields)
        problems.append(
            f"{label('custom_fields')}: custom_fields key {keys}: m3ter {entity} have no custom "
            "fields"
        )
    elif entity in CUSTOM_FIELD_ENTITIES:
        try:
            builder.custom_fields(record.custom_fields)
        except MappingError as exc:
            problems.append(f"{label('custom_fields')}: {exc}")
    if entity in SEGMENTED_ENTITIES:
        location = mappings.locate(entity, record.name, "segments")
        try:
            builder.segments(record.segments, str(location) if location else entity, record.name)
        except SegmentError as exc:
            problems += str(exc).splitlines()
    for name, rule in record.combine.items():
        target = allowed.get(name)
        if target is not None and target.kind not in RULE_KINDS[rule]:
            problems.append(
                f"{label('combine', name)}: combine key {name!r}: {rule!r} cannot combine "
                f"{_noun(target)}"
            )
    if record.grouped and not has_code(entity):
        problems.append(
            f"{label('fields', 'code')}: fields key 'code': m3ter {entity} have no code"
        )
    if has_code(entity) and "code" not in record.fields and "code" not in record.hardcoded:
        # m3ter codes default to the source record's Id: loads stay idempotent (DESIGN §5).
        builder.field(allowed["code"], "Id")
    if problems:
        return problems
    builder.warnings += [
        f"{label()}: {source}.{path} is calculated (a roll-up, or a formula over a parent, the "
        "date or unknown inputs): its value can change while no SystemModstamp moves, which "
        "daily runs do not see; the refresh (`m3sync refresh`, or the weekly_refresh schedule "
        "switched on) keeps it true"
        for path in builder.calculated
    ]
    return CompiledMapping(
        entity=entity,
        name=record.name,
        source=source,
        condition=condition,
        values=builder.values,
        errors=tuple(builder.errors),
        columns=tuple(builder.columns),
        warnings=tuple(builder.warnings),
        grouped=record.grouped,
        combine=dict(record.combine),
        header=header,
        identity=identity,
    )


def sync_level_problem(
    entity: Entity, record: MappingRecord, source: str, header: str | None
) -> str | None:
    """`sync_level` says the grain m3ter bills at (the connector's two levels).

    `line_item` takes one object per line, so it needs a line object (`header` names its
    agreement). `agreement` on a header (Order, Opportunity, Quote, Asset, a contract) takes the
    header; on a line object it groups the lines of one agreement, which the mapping says by
    computing the grouping code from the header's Id and the product (m3ter bills one account
    plan per account and product).
    """
    sync_level = record.sync_level
    if sync_level is None:
        return None
    is_line = header is not None
    if sync_level == "line_item" and not is_line:
        lines = ", ".join(sorted(STANDARD_LINE_HEADERS))
        return (
            f"'line_item' needs a line object ({lines}, or any object whose mapping names its "
            f"agreement's field in 'agreement'), not {source}"
        )
    grouping = GROUPING_FIELD.get(entity)
    if sync_level == "agreement" and is_line and grouping is None:
        return (
            f"'agreement' needs a header object (Order, Opportunity, Quote, Asset) for "
            f"{entity}, which lines cannot share, not {source}"
        )
    if sync_level == "agreement" and is_line and grouping is not None:
        value = record.fields.get(grouping)
        if not is_template(value):
            now = "the line's Id" if value is None and grouping == "code" else repr(value)
            return (
                f"'agreement' on {source} groups an agreement's lines: compute fields key "
                f"{grouping!r} from the agreement and the product, e.g. "
                f"'{{{header}}}_{{Product2.ProductCode}}' (it is {now}), or sync at 'line_item'"
            )
    return None


class _Builder:
    """The SQL of one mapping's values, collected target by target."""

    def __init__(self, entity: Entity, source: str, describe: Describe) -> None:
        self.entity = entity
        self.source = source
        self.describe = describe
        self.values: dict[str, str] = {}
        self.errors: list[str] = []
        self.columns: dict[str, None] = {}
        self.warnings: list[str] = []
        self.calculated: dict[str, None] = {}  # fields read that change unstamped, in order

    def resolve(self, path: str) -> tuple[str, str]:
        try:
            canonical, field, _ = resolve_field(self.source, path, self.describe)
        except FieldNotFound as exc:
            raise MappingError(
                f"{path!r} does not resolve on {self.source} ({exc.reason}; fields hidden by "
                "field-level security count as missing)"
            ) from None
        self.columns.setdefault(canonical)
        if changes_unstamped(field):
            self.calculated.setdefault(canonical)
        return canonical, field["type"]

    @staticmethod
    def column(canonical: str, target: Target) -> str:
        """The column a value reads: a key naming the record's own Id names its identity."""
        if canonical == "Id" and target.kind in KEY_KINDS:
            return identifier(IDENTITY)
        return identifier(canonical)

    def field(self, target: Target, path: str) -> None:
        if is_template(path):
            self.template(target, path)
            return
        canonical, sf_type = self.resolve(path)
        expr, check = convert(target, self.column(canonical, target), sf_type)
        self.values[target.name] = expr
        if check is not None:
            self.errors.append(
                f"CASE WHEN {check} THEN {literal(target.name + ': ')} || "
                f"CAST({identifier(canonical)} AS VARCHAR) || "
                f"{literal(f' (from {canonical}) is not {_noun(target)}')} END"
            )

    def template(self, target: Target, text: str) -> None:
        """Computed text: null when a field it names is blank, so a required code stays
        required."""
        if target.kind not in TEXT_KINDS:
            raise MappingError(f"computed text cannot become m3ter {_noun(target)}")
        template = parse_template(text)
        pieces = []
        for part, is_path in zip(template.parts, template.is_path, strict=True):
            if not is_path:
                pieces.append(literal(part))
                continue
            canonical, sf_type = self.resolve(part)
            pieces.append(f"({convert(TEXT, self.column(canonical, target), sf_type)[0]})")
        self.values[target.name] = "(" + " || ".join(pieces) + ")"

    def product_mapping(self, lookup: Mapping[str, str], table: Sequence[ProductMapping]) -> None:
        """`planTemplateCode` from the product mapping table, the mapped field as fallback."""
        columns = {}
        for key, path in lookup.items():
            try:
                canonical, sf_type = self.resolve(path)
            except MappingError as exc:
                raise MappingError(f"product_mapping key {key!r}: {exc}") from None
            columns[key] = convert(TEXT, identifier(canonical), sf_type)[0]
        fallback = self.values.get("planTemplateCode", "NULL")
        self.values["planTemplateCode"] = resolution_sql(table, columns, fallback)

    def hardcoded(self, target: Target, value: Any) -> None:
        self.values[target.name] = typed_literal(target, value)

    def custom_fields(self, items: Mapping[str, str]) -> None:
        entries = []
        for name, path in items.items():
            try:
                canonical, sf_type = self.resolve(path)
            except MappingError as exc:
                raise MappingError(f"custom_fields key {name!r}: {exc}") from None
            column = identifier(canonical)
            # m3ter custom field values are strings or numbers; dates go in their wire form.
            value = column if sf_type in NUMBER_TYPES else convert(TEXT, column, sf_type)[0]
            entries.append(f"{{'k': {literal(name)}, 'v': to_json({value})}}")
        if not entries:
            self.values[CUSTOM_FIELDS] = literal("{}")
            return
        kept = f"list_filter([{', '.join(entries)}], lambda e: e.v IS NOT NULL)"
        self.values[CUSTOM_FIELDS] = f"CAST(to_json(map_from_entries({kept})) AS VARCHAR)"

    def segments(self, text: str | None, file: str, mapping: str) -> None:
        parsed = parse_segments(text)
        resolved = resolve_segments(
            parsed, source_object=self.source, describe=self.describe, file=file, mapping=mapping
        )
        self.warnings += [f"{file}: mapping {mapping!r}: segments: {w}" for w in parsed.warnings]
        for segment in resolved:
            if segment.field is not None:
                self.columns.setdefault(segment.field)
        obj, wildcards = segment_sql(resolved, identifier)
        self.values[SEGMENT] = obj
        self.values[SEGMENT_WILDCARDS] = wildcards


def convert(target: Target, column: str, sf_type: str) -> tuple[str, str | None]:
    """The SQL turning a raw column of describe type `sf_type` into `target`'s wire form.

    Returns the expression and, when the value may fail to convert (text read as a number or a
    date), a condition that is true on the rows where it did; those rows are rejected with it.
    """
    kind = target.kind
    text_source = sf_type in TEXT_TYPES or sf_type in ID_TYPES
    if kind in TEXT_KINDS:
        if sf_type == "date":
            return f"strftime({column}, '%Y-%m-%d')", None
        if sf_type == "datetime":
            return f"strftime({column}, '{_DATETIME_TEXT}')", None
        return (column if text_source else f"CAST({column} AS VARCHAR)"), None
    if kind in NUMBER_KINDS or kind == "integer":
        duck = "BIGINT" if kind == "integer" else "DOUBLE"
        if sf_type in NUMBER_TYPES:
            if kind == "integer" and sf_type != "int":
                # try_cast: a fraction, NaN or a value past BIGINT is this row's reject, never
                # a conversion error that stops the whole stage.
                expr = f"try_cast({column} AS BIGINT)"
                return expr, f"({column} IS NOT NULL AND ({expr} IS NULL OR {column} <> {expr}))"
            if sf_type != "int":
                # NaN and infinity are no amount m3ter can bill (nor JSON can carry).
                return f"CAST({column} AS {duck})", f"NOT isfinite({column})"
            return f"CAST({column} AS {duck})", None
        if text_source:
            return _try_cast(column, duck)
    elif kind == "boolean":
        if sf_type == "boolean":
            return column, None
        if text_source:
            return _try_cast(column, "BOOLEAN")
    elif kind in DATE_KINDS or kind in DATETIME_KINDS:
        day = {"date": column, "datetime": f"CAST({column} AS DATE)"}.get(sf_type)
        check = None
        if day is None and text_source:
            day = f"try_cast({column} AS DATE)"
            check = f"({column} IS NOT NULL AND {day} IS NULL)"
        if day is None:
            raise MappingError(f"a {sf_type} field cannot become m3ter {_noun(target)}")
        if sf_type == "datetime" and kind in DATETIME_KINDS:
            return f"strftime({column}, '{_DATETIME_TEXT}')", None
        if sf_type == "datetime" and kind == "date_end":
            # An instant ends its day only at midnight; any later time ends the next day.
            day = (
                f"CASE WHEN {column} = date_trunc('day', {column}) THEN {day} "
                f"ELSE {day} + INTERVAL 1 DAY END"
            )
        elif kind in ("date_end", "datetime_end"):
            # Salesforce end dates are inclusive; m3ter's are exclusive.
            day = f"({day} + INTERVAL 1 DAY)"
        pattern = "%Y-%m-%d" if kind in DATE_KINDS else "%Y-%m-%dT00:00:00Z"
        return f"strftime({day}, '{pattern}')", check
    raise MappingError(f"a {sf_type} field cannot become m3ter {_noun(target)}")


def _try_cast(column: str, duck: str) -> tuple[str, str]:
    expr = f"try_cast({column} AS {duck})"
    if duck == "DOUBLE":  # text such as 'NaN' or 'inf' reads as a double, but is no amount
        return expr, f"({column} IS NOT NULL AND ({expr} IS NULL OR NOT isfinite({expr})))"
    return expr, f"({column} IS NOT NULL AND {expr} IS NULL)"


def typed_literal(target: Target, value: Any) -> str:
    """A hardcoded value as SQL of the target's type; raises MappingError if it is not one."""
    kind = target.kind
    if value is None:
        return "NULL"
    if target.choices and value not in target.choices:
        raise MappingError(f"{value!r} is not one of {', '.join(target.choices)}")
    if kind in TEXT_KINDS and isinstance(value, str):
        if "\x00" in value:
            raise MappingError(f"{value!r} contains a NUL character")
        return literal(value)
    if kind == "boolean" and isinstance(value, bool):
        return "true" if value else "false"
    number = isinstance(value, int | float) and not isinstance(value, bool)
    if kind == "integer" and number and float(value).is_integer():
        if not _BIGINT_MIN <= int(value) <= _BIGINT_MAX:
            raise MappingError(f"{value!r} is out of range for a whole number (64 bits)")
        return str(int(value))
    if kind in NUMBER_KINDS and number and math.isfinite(value):
        return f"CAST({literal(repr(float(value)))} AS DOUBLE)"
    if kind in DATE_KINDS and isinstance(value, str) and _DATE.fullmatch(value):
        day = _parse_date(value)
        if kind == "date_end":
            if day == dt.date.max:
                raise MappingError(
                    f"{value!r} has no next day to end on (m3ter ends are exclusive)"
                )
            day += dt.timedelta(days=1)
        return literal(day.isoformat())
    if kind in DATETIME_KINDS and isinstance(value, str):
        return literal(_parse_datetime(value))
    raise MappingError(f"{value!r} is not {_noun(target)}")


def _parse_date(text: str) -> dt.date:
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        raise MappingError(f"{text!r} is not a date (YYYY-MM-DD)") from None


def _parse_datetime(text: str) -> str:
    try:
        value = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise MappingError(f"{text!r} is not an RFC 3339 date-time") from None
    if value.tzinfo is None:
        raise MappingError(f"{text!r} has no UTC offset (write 2024-01-01T00:00:00Z)")
    return value.astimezone(dt.UTC).strftime(_DATETIME_TEXT)


def _noun(target: Target) -> str:
    nouns = {
        "number": "a number",
        "price": "a number",
        "integer": "a whole number",
        "boolean": "true or false",
        "date": "a date (YYYY-MM-DD)",
        "date_end": "a date (YYYY-MM-DD)",
        "datetime": "a date-time (RFC 3339, with Z)",
        "datetime_end": "a date-time (RFC 3339, with Z)",
    }
    return nouns.get(target.kind, "text")


def _text_list(items: Sequence[str]) -> str:
    return f"CAST([{', '.join(literal(item) for item in items)}] AS VARCHAR[])"


def _error_list(errors: tuple[str, ...]) -> str:
    if not errors:
        return "[]"
    return f"list_filter([{', '.join(errors)}], lambda e: e IS NOT NULL)"


def _suggestion(word: str, options: list[str]) -> str:
    close = get_close_matches(word, options, n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""
