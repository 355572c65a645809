"""Stage 1,000,000 OrderItems into plans, pricings and account plans, beside a per-record mapper.

Run: `uv run --frozen python -m tests.benchmarks.bench_stage [--rows 1000000] [--days 30]`

A fresh warehouse gets a raw `order_item` table generated in DuckDB SQL over daily partitions:
about 70% of orders synced, aggregation codes spread over the ones the shipped pricing mappings'
`where` clauses name plus compound products and a few unpriced ones, regions and tiers sometimes
null (segment values sent as m3ter's wildcard), ~2% deleted rows (which the stage tries to pair
with replacements, `staging/successions.py`) and ~0.5% bad rows (end before start, a negative
price). The shipped OrderItem mappings of plans, pricings and account plans are then staged by
`pipeline.staging.stage.stage` (one DuckDB statement maps and resolves, SQL set checks, pandera,
Parquet writes), one entity after another, each with its profile.

The baseline then works as a record-at-a-time connector does, in this process: the same raw rows
read as Python dicts (timed apart), and for each row and each mapping its `where` evaluated, one
output dict built (code = Id, dates in m3ter's wire form, inclusive end date + 1 day, the unit
price as one band, custom fields, the segment text parsed and resolved per row with null values
sent as the wildcard `*`), a tombstone for a deleted or unmatched row; then the same rules
checked per record (the pandera model's checks, one mapping per record, unique codes) and the
rows written with pyarrow. Both sides must agree on rows, tombstones, rejected rows and wildcard
segment values. Each phase resets this process's peak RSS first and reports its own.

Targets: mapping and segment resolution >= 20x the baseline's; the whole stage under 8 s.
"""

from __future__ import annotations

import argparse
import datetime as dt
import gc
import json
import os
import re
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq

from pipeline.extract.objects import SourceObject
from pipeline.extract.plan import DUCKDB_TYPES, resolve_path
from pipeline.extract.run import raw_table
from pipeline.mapping.compiler import (
    CUSTOM_FIELDS,
    ERRORS,
    GROUPED,
    SEGMENT,
    SEGMENT_WILDCARDS,
    CompiledEntity,
    CompiledSet,
    compile_mappings,
)
from pipeline.mapping.files import load_mappings
from pipeline.mapping.spec import Entity, MappingRecord, MappingSet
from pipeline.mapping.targets import DATETIME_KINDS, NUMBER_KINDS, TEXT_KINDS, targets
from pipeline.mapping.templates import is_template, parse_template
from pipeline.staging.schemas import SCHEMAS
from pipeline.staging.stage import StageResult, stage
from pipeline.warehouse import Warehouse
from pipeline.warehouse.sql import literal
from tests.benchmarks.bench_bulk2_download import peak_rss_mb, reset_peak_rss
from tests.shipped import MAPPINGS_DIR, describe, shipped

SOURCE = "OrderItem"
ENTITIES: tuple[Entity, ...] = ("plans", "pricings", "account_plans")
MAP_PHASE = "map and resolve (SQL)"
FIRST_DAY = dt.date(2024, 6, 1)
ITEMS_PER_ORDER = 20
ACCOUNTS = 5_000
COMPOUND_CODES = ("blended_compute", "weighted_storage", "premium_requests")
TARGET_RATIO = 20.0
TARGET_STAGE_SECONDS = 8.0


# --- raw data ----------------------------------------------------------------------------------


def pricing_codes(mappings: MappingSet) -> list[str]:
    """The aggregation codes the OrderItem pricing mappings' `where` clauses name."""
    codes: dict[str, None] = {}
    for record in mappings["pricings"]:
        if record.where and " IN " in record.where:
            codes.update(dict.fromkeys(re.findall(r"'([^']+)'", record.where)))
    return list(codes)


def raw_query(rows: int, days: int, codes: list[str]) -> str:
    """1 row per OrderItem, in SQL: every column the mappings read, typed as describe says."""
    plain = 30  # of 40 products: 30 priced by code, 8 compound, 2 with no pricing at all
    code_list = "[" + ", ".join(literal(c) for c in codes) + "]"
    compound_list = "[" + ", ".join(literal(c) for c in COMPOUND_CODES) + "]"
    values = {
        "Id": "'802Hs' || lpad(CAST(i AS VARCHAR), 10, '0') || 'QAA'",
        "Order.Sync_To_M3ter__c": "hash(o, 'sync') % 10 < 7",
        "Order.OrderNumber": "lpad(CAST(o AS VARCHAR), 8, '0')",
        "OrderId": "'801Hs' || lpad(CAST(o AS VARCHAR), 10, '0') || 'QAA'",
        "Order.AccountId": "'001Hs' || lpad(CAST(a AS VARCHAR), 10, '0') || 'QAA'",
        "Order.ContractId": (
            "CASE WHEN hash(o, 'contract') % 10 < 6 "
            "THEN '800Hs' || lpad(CAST(o AS VARCHAR), 10, '0') || 'QAA' END"
        ),
        "Order.Account.Region__c": (
            "CASE WHEN hash(a, 'no region') % 10 > 0 "
            "THEN ['NA', 'EMEA', 'APAC', 'LATAM'][CAST(hash(a, 'region') % 4 AS BIGINT) + 1] END"
        ),
        "Order.Account.Tier__c": (
            "CASE WHEN hash(a, 'no tier') % 20 > 2 "
            "THEN ['Bronze', 'Silver', 'Gold', 'Platinum']"
            "[CAST(hash(a, 'tier') % 4 AS BIGINT) + 1] END"
        ),
        "Product2.Name": "'Product ' || p",
        "Product2.ProductCode": "'P-' || p",
        "Product2.M3ter_Product_Code__c": "'prod_' || (p % 20)",
        "Order.Name": "'Order ' || o",
        "Order.Billing_Frequency__c": "['Monthly', 'Annual'][CAST(hash(o, 'bf') % 2 AS INT) + 1]",
        "Order.CurrencyIsoCode": "'USD'",
        "Product2.M3ter_Plan_Template_Code__c": "'tpl_' || (p % 5)",
        "Product2.M3ter_Aggregation_Code__c": (
            f"CASE WHEN p < {plain} THEN {code_list}[p % {len(codes)} + 1] "
            f"WHEN p < {plain + 8} THEN {compound_list}[p % {len(COMPOUND_CODES)} + 1] "
            "ELSE 'legacy_seats' END"
        ),
        "Product2.M3ter_Calculation__c": (
            f"CASE WHEN p >= {plain} AND p < {plain + 8} "
            "THEN 'aggregations.api_calls * ' || (1 + p % 3) END"
        ),
        "ServiceDate": "start_day",
        "EndDate": "CASE WHEN bad < 3 THEN start_day - 30 ELSE start_day + 364 END",
        "UnitPrice": (
            "CASE WHEN bad IN (3, 4) THEN -1 ELSE 1 END "
            "* (0.01 + (hash(i, 'price') % 100000) / 1000.0)"
        ),
    }
    wanted = list(dict.fromkeys(("Id", *shipped().fields(SOURCE))))
    unknown = [path for path in wanted if path not in values]
    if unknown:
        raise SystemExit(f"the mappings read {unknown}: teach raw_query() to generate them")
    columns = []
    for path in wanted:
        _, sf_type, _ = resolve_path(SOURCE, path, describe)
        duck = DUCKDB_TYPES.get(sf_type, "VARCHAR")
        columns.append(f'CAST({values[path]} AS {duck}) AS "{path}"')
    stamp = "CAST(day AS TIMESTAMP) + to_seconds(CAST(hash(i, 'stamp') % 86400 AS BIGINT))"
    return f"""
        WITH items AS (
            SELECT i, o, d, CAST(DATE {literal(FIRST_DAY.isoformat())} + d AS DATE) AS day,
                   CAST(hash(o, 'account') % {ACCOUNTS} AS BIGINT) AS a,
                   CAST(hash(i, 'product') % 40 AS BIGINT) AS p,
                   CAST(hash(i, 'bad') % 1000 AS BIGINT) AS bad
            FROM (SELECT i, i // {ITEMS_PER_ORDER} AS o,
                         CAST((i // {ITEMS_PER_ORDER}) % {days} AS INTEGER) AS d
                  FROM range({rows}) t(i))
        ), dated AS (
            SELECT *, CAST(day - CAST(hash(o, 'start') % 90 AS INTEGER) AS DATE) AS start_day
            FROM items
        )
        SELECT {", ".join(columns)},
               {stamp} AS "SystemModstamp",
               hash(i, 'deleted') % 100 < 2 AS "IsDeleted",
               {stamp} - to_seconds(CAST(hash(i, 'created') % 2592000 AS BIGINT))
                   AS "CreatedDate",
               {stamp} AS _version_stamp,
               strftime(day, '%Y-%m-%d') AS _partition,
               CAST(day AS TIMESTAMP) + INTERVAL 1 DAY AS _extracted_at
        FROM dated
    """


def write_raw(warehouse: Warehouse, rows: int, days: int, codes: list[str]) -> list[str]:
    keys = [(FIRST_DAY + dt.timedelta(days=d)).isoformat() for d in range(days)]
    con = duckdb.connect()
    try:
        con.execute("SET TimeZone = 'UTC'")
        warehouse.write_partitions(
            con,
            raw_table(SourceObject(SOURCE)),
            raw_query(rows, days, codes),
            [],
            "_partition",
            cover=keys,
        )
    finally:
        con.close()
    return keys


def orderitem_set() -> tuple[MappingSet, CompiledSet]:
    full = load_mappings(MAPPINGS_DIR)
    mappings = MappingSet({e: [r for r in full[e] if r.object == SOURCE] for e in ENTITIES})
    return mappings, compile_mappings(mappings, describe)


# --- pipeline ----------------------------------------------------------------------------------


@dataclass
class PipelineRun:
    result: StageResult
    wall: float
    peak_mb: float

    @property
    def phases(self) -> float:
        return sum(self.result.profile.values())


def run_pipeline(warehouse: Warehouse, compiled: CompiledEntity, keys: list[str]) -> PipelineRun:
    gc.collect()
    reset_peak_rss()
    started = time.perf_counter()
    result = stage(warehouse, compiled, keys)
    wall = time.perf_counter() - started
    run = PipelineRun(result, wall, peak_rss_mb())
    profile = ", ".join(f"{k} {v:.2f}" for k, v in result.profile.items())
    print(
        f"pipeline {compiled.entity:<13} {result.rows:>9,} rows {wall:6.2f} s wall "
        f"(phases {run.phases:.2f} s)  peak RSS {run.peak_mb:6.0f} MB\n    {profile}",
        flush=True,
    )
    return run


# --- baseline: the record-at-a-time connector --------------------------------------------------

Row = dict[str, Any]
ONE_DAY = dt.timedelta(days=1)
_EQUALS_TRUE = re.compile(r"(\S+) = true", re.IGNORECASE)
_NOT_NULL = re.compile(r"(\S+) != null", re.IGNORECASE)
_IN = re.compile(r"(\S+) IN \((.*)\)", re.IGNORECASE)


def where_predicate(where: str | None) -> Callable[[Row], bool]:
    """The shipped `where` forms (`a = true AND b IN (...)`, `b != null`) as a Python test."""
    if not where:
        return lambda row: True
    tests: list[Callable[[Row], bool]] = []
    for part in re.split(r"\s+AND\s+", where.strip(), flags=re.IGNORECASE):
        if match := _EQUALS_TRUE.fullmatch(part):
            tests.append(lambda row, path=match[1]: row[path] is True)
        elif match := _NOT_NULL.fullmatch(part):
            tests.append(lambda row, path=match[1]: row[path] is not None)
        elif match := _IN.fullmatch(part):
            allowed = {v.lower() for v in re.findall(r"'([^']*)'", match[2])}
            tests.append(
                lambda row, path=match[1], allowed=allowed: (
                    row[path] is not None and row[path].lower() in allowed
                )
            )
        else:
            raise SystemExit(f"the baseline cannot evaluate {part!r}: teach where_predicate()")
    return lambda row: all(test(row) for test in tests)


def converter(kind: str, sf_type: str) -> Callable[[Any], Any]:
    """Salesforce value -> m3ter wire value, one value at a time."""
    if kind in TEXT_KINDS:
        return (lambda v: v.isoformat()) if sf_type == "date" else str
    if kind in NUMBER_KINDS:
        return float
    if kind in DATETIME_KINDS and sf_type == "date":
        if kind == "datetime_end":  # inclusive Salesforce end -> exclusive m3ter end
            return lambda v: (v + ONE_DAY).strftime("%Y-%m-%dT00:00:00Z")
        return lambda v: v.strftime("%Y-%m-%dT00:00:00Z")
    raise SystemExit(f"the baseline cannot convert {sf_type} to {kind}: teach converter()")


def parse_and_resolve_segments(text: str | None, row: Row) -> tuple[str | None, int]:
    """The segment object of one row, from the mapping's text; null values are m3ter's wildcard
    (and counted)."""
    text = (text or "").strip()
    if not text:
        return None, 0
    if text.startswith("{"):
        pairs: Iterable[tuple[str, Any]] = json.loads(text).items()
    else:
        pairs = [
            (key.strip(), value.strip())
            for entry in text.split(",")
            if ":" in entry
            for key, value in [entry.split(":", 1)]
        ]
    segment: dict[str, str] = {}
    omitted = 0
    for key, value in pairs:
        if not key or value in (None, ""):
            continue
        if isinstance(value, str) and ("." in value or value.lower().endswith(("__c", "__r"))):
            resolved = row[value]
            if resolved is None or resolved == "":
                omitted += 1
                segment[key] = "*"
                continue
            segment[key] = str(resolved)
        else:
            segment[key] = str(value)
    return json.dumps(segment, separators=(",", ":"), ensure_ascii=False), omitted


@dataclass(frozen=True)
class RecordMapper:
    name: str
    where: Callable[[Row], bool]
    fields: tuple[tuple[str, Callable[[Row], Any]], ...]  # target, its value from a row
    hardcoded: tuple[tuple[str, Any], ...]
    custom_fields: tuple[tuple[str, str, Callable[[Any], Any]], ...]
    segments: str | None
    grouped: bool  # the code is computed: rows sharing it are one object, not a clash


def record_mapper(entity: Entity, record: MappingRecord) -> RecordMapper:
    allowed = targets(entity)

    def read(path: str, kind: str) -> Callable[[Row], Any]:
        canonical, sf_type, _ = resolve_path(record.object, path, describe)
        convert = converter(kind, sf_type)

        def value(row: Row) -> Any:
            raw = row[canonical]
            return None if raw is None else convert(raw)

        return value

    def field(target: str, path: str) -> tuple[str, Callable[[Row], Any]]:
        if not is_template(path):
            return target, read(path, allowed[target].kind)
        # computed text: null when a field it names is blank
        template = parse_template(path)
        pieces = [
            read(part, "text") if is_path else (lambda _row, text=part: text)
            for part, is_path in zip(template.parts, template.is_path, strict=True)
        ]

        def text(row: Row) -> Any:
            values = [piece(row) for piece in pieces]
            return None if any(v is None for v in values) else "".join(map(str, values))

        return target, text

    fields = dict(record.fields)
    if "code" in allowed and "code" not in fields and "code" not in record.hardcoded:
        fields["code"] = "Id"  # m3ter codes default to the record's Id
    custom = tuple(
        (name, resolve_path(record.object, path, describe)[0], str)
        for name, path in record.custom_fields.items()
    )
    return RecordMapper(
        name=record.name,
        where=where_predicate(record.where),
        fields=tuple(field(t, p) for t, p in fields.items()),
        hardcoded=tuple(record.hardcoded.items()),
        custom_fields=custom,
        segments=record.segments,
        grouped=record.grouped,
    )


def output_columns(compiled: CompiledEntity) -> list[str]:
    columns = [c for c in compiled.columns if c != ERRORS]
    return [*columns, "_partition"]


def map_rows(
    entity: Entity, compiled: CompiledEntity, mappers: list[RecordMapper], rows: list[Row]
):
    """One output dict per row and matching mapping, or one tombstone per row none takes."""
    template = dict.fromkeys(output_columns(compiled))
    has_custom = CUSTOM_FIELDS in template
    segmented = SEGMENT in template
    pricing = entity == "pricings"
    out: list[Row] = []
    for row in rows:
        matched = [] if row["IsDeleted"] else [m for m in mappers if m.where(row)]
        meta = {
            "_source_object": SOURCE,
            "_source_id": row["Id"],
            "_version_stamp": row["_version_stamp"],
            "_partition": row["_partition"],
        }
        if not matched:
            record = dict(template)
            record.update(meta)
            record["_tombstone"] = True
            out.append(record)
            continue
        for mapper in matched:
            record = dict(template)
            record.update(meta)
            record["_mapping"] = mapper.name
            record[GROUPED] = mapper.grouped
            record["_tombstone"] = False
            for target, value_of in mapper.fields:
                record[target] = value_of(row)
            for target, value in mapper.hardcoded:
                record[target] = value
            if has_custom:
                custom = {}
                for name, path, convert in mapper.custom_fields:
                    value = row[path]
                    if value is not None:
                        custom[name] = convert(value)
                record[CUSTOM_FIELDS] = json.dumps(custom, separators=(",", ":"))
            if segmented:
                record[SEGMENT], record[SEGMENT_WILDCARDS] = parse_and_resolve_segments(
                    mapper.segments, row
                )
            if pricing:
                unit, fixed = record["unitPrice"], record["fixedPrice"]
                record["pricingBands"] = [
                    {
                        "lowerLimit": 0.0,
                        "fixedPrice": 0.0 if fixed is None else fixed,
                        "unitPrice": 0.0 if unit is None else unit,
                    }
                ]
            out.append(record)
    return out


def _column_test(name: str, stats: dict[str, Any]) -> Callable[[Any], bool]:
    if name == "str_matches":
        pattern = re.compile(stats["pattern"])
        return lambda v: pattern.match(v) is not None
    if name == "str_length":
        low, high = stats["min_value"], stats["max_value"]
        return lambda v: (low is None or len(v) >= low) and (high is None or len(v) <= high)
    if name == "isin":
        allowed = set(stats["allowed_values"])
        return lambda v: v in allowed
    if name == "greater_than_or_equal_to":
        return lambda v: v >= stats["min_value"]
    if name == "greater_than":
        return lambda v: v > stats["min_value"]
    if name == "less_than_or_equal_to":
        return lambda v: v <= stats["max_value"]
    raise SystemExit(f"the baseline cannot check {name}: teach _column_test()")


def _negative(value: float | None) -> bool:
    return value is not None and value < 0


ROW_CHECKS: dict[str, Callable[[Row], bool]] = {
    "start_before_end": lambda r: (
        r["endDate"] is None or r["startDate"] is None or r["startDate"] < r["endDate"]
    ),
    "one_plan_side": lambda r: (r["planCode"] is None) != (r["planTemplateCode"] is None),
    "plan_or_group": lambda r: (r["planCode"] is None) != (r["planGroupCode"] is None),
    "one_aggregation_side": lambda r: (
        (r["aggregationCode"] is None) != (r["compoundAggregationCode"] is None)
    ),
    "a_price": lambda r: r["unitPrice"] is not None or r["fixedPrice"] is not None,
    "no_negative_debit_price": lambda r: (
        not (
            (r["type"] is None or r["type"] == "DEBIT")
            and (_negative(r["unitPrice"]) or _negative(r["fixedPrice"]))
        )
    ),
}


def validate_rows(entity: Entity, out: list[Row]) -> tuple[list[Row], Counter[str], int]:
    """The pandera model's rules and the set checks, one record at a time."""
    schema = SCHEMAS[entity].to_schema()
    columns = [
        (
            name,
            column.nullable,
            [
                (
                    f"{c.name}{sorted(c.statistics.items())}",
                    c.name,
                    _column_test(c.name, c.statistics),
                )
                for c in column.checks
            ],
        )
        for name, column in schema.columns.items()
    ]
    frame_checks = [(c.name, ROW_CHECKS[c.name]) for c in schema.checks]
    taken: Counter[tuple[str, str]] = Counter()
    codes: dict[tuple[str, str], set[str]] = {}
    for record in out:
        if not record["_tombstone"]:
            taken[record["_partition"], record["_source_id"]] += 1
            if record.get("code") is not None and not record[GROUPED]:
                key = (record["_partition"], record["code"])
                codes.setdefault(key, set()).add(record["_source_id"])
    by_check: Counter[str] = Counter()
    kept: list[Row] = []
    rejected = 0
    for record in out:
        if record["_tombstone"]:
            kept.append(record)
            continue
        failed: dict[str, str] = {}
        for name, nullable, tests in columns:
            value = record[name]
            if value is None:
                if not nullable:
                    failed["not_nullable"] = "not_nullable"
                continue
            for key, check, test in tests:
                if not test(value):
                    failed[key] = check
        for check, test in frame_checks:
            if not test(record):
                failed[check] = check
        if taken[record["_partition"], record["_source_id"]] > 1:
            failed["one_mapping_per_record"] = "one_mapping_per_record"
        code = record.get("code")
        if code is not None and not record[GROUPED] and len(codes[record["_partition"], code]) > 1:
            failed["unique_code"] = "unique_code"
        if failed:
            rejected += 1
            by_check.update(failed.values())
        else:
            kept.append(record)
    return kept, by_check, rejected


_ARROW = {
    "VARCHAR": pa.string(),
    "DOUBLE": pa.float64(),
    "BIGINT": pa.int64(),
    "INTEGER": pa.int32(),
    "BOOLEAN": pa.bool_(),
    "TIMESTAMP": pa.timestamp("us"),
    "VARCHAR[]": pa.list_(pa.string()),
}
_BAND = pa.list_(
    pa.struct(
        [("lowerLimit", pa.float64()), ("fixedPrice", pa.float64()), ("unitPrice", pa.float64())]
    )
)


def write_rows(compiled: CompiledEntity, kept: list[Row], directory: Path) -> int:
    """One Parquet file per partition, as the staged table has them (prices in the band)."""
    fields = [
        pa.field(name, _ARROW[kind])
        for name, kind in compiled.columns.items()
        if name != ERRORS and not (compiled.entity == "pricings" and name.endswith("Price"))
    ]
    if compiled.entity == "pricings":
        fields.insert([f.name for f in fields].index("startDate"), pa.field("pricingBands", _BAND))
    fields += [pa.field("_partition", pa.string()), pa.field("_staged_at", pa.timestamp("us"))]
    schema = pa.schema(fields)
    staged_at = dt.datetime.now(dt.UTC).replace(tzinfo=None)
    by_partition: dict[str, list[Row]] = {}
    for record in kept:
        record["_staged_at"] = staged_at
        by_partition.setdefault(record["_partition"], []).append(record)
    directory.mkdir(parents=True, exist_ok=True)
    for key, records in by_partition.items():
        pq.write_table(pa.Table.from_pylist(records, schema=schema), directory / f"{key}.parquet")
    return len(kept)


@dataclass
class BaselineRun:
    rows: int
    tombstones: int
    rejected_rows: int
    rejects_by_check: dict[str, int]
    segment_wildcards: int
    seconds: dict[str, float]
    peak_mb: float


def read_rows(warehouse: Warehouse, keys: list[str]) -> tuple[list[Row], float, float]:
    gc.collect()
    reset_peak_rss()
    started = time.perf_counter()
    paths = [str(warehouse.partition_path(raw_table(SourceObject(SOURCE)), k)) for k in keys]
    con = duckdb.connect()
    try:
        con.execute("SET TimeZone = 'UTC'")
        table = con.sql(
            "SELECT * FROM read_parquet($paths)", params={"paths": paths}
        ).to_arrow_table()
    finally:
        con.close()
    rows = table.to_pylist()
    del table
    seconds = time.perf_counter() - started
    peak = peak_rss_mb()
    print(
        f"baseline read as dicts  {len(rows):>9,} rows {seconds:6.2f} s  peak RSS {peak:6.0f} MB",
        flush=True,
    )
    return rows, seconds, peak


def run_baseline(
    entity: Entity,
    records: Iterable[MappingRecord],
    compiled: CompiledEntity,
    rows: list[Row],
    directory: Path,
) -> BaselineRun:
    gc.collect()
    reset_peak_rss()
    mappers = [record_mapper(entity, r) for r in records]
    seconds = {}
    started = time.perf_counter()
    out = map_rows(entity, compiled, mappers, rows)
    seconds["map and resolve"] = time.perf_counter() - started
    started = time.perf_counter()
    kept, by_check, rejected = validate_rows(entity, out)
    seconds["validate"] = time.perf_counter() - started
    started = time.perf_counter()
    written = write_rows(compiled, kept, directory / entity)
    seconds["write"] = time.perf_counter() - started
    tombstones = sum(1 for r in kept if r["_tombstone"])
    omitted = sum(r.get(SEGMENT_WILDCARDS) or 0 for r in kept if not r["_tombstone"])
    run = BaselineRun(
        written, tombstones, rejected, dict(by_check), omitted, seconds, peak_rss_mb()
    )
    del out, kept
    phases = ", ".join(f"{k} {v:.2f}" for k, v in seconds.items())
    print(
        f"baseline {entity:<13} {written:>9,} rows {sum(seconds.values()):6.2f} s  "
        f"peak RSS {run.peak_mb:6.0f} MB\n    {phases}",
        flush=True,
    )
    return run


# --- report ------------------------------------------------------------------------------------


def agreement(entity: Entity, pipe: StageResult, base: BaselineRun) -> bool:
    pairs = {
        "rows": (pipe.rows, base.rows),
        "tombstones": (pipe.tombstones, base.tombstones),
        "rejected rows": (pipe.rejected_rows, base.rejected_rows),
        "segment wildcards": (pipe.segment_wildcards, base.segment_wildcards),
    }
    same = all(p == b for p, b in pairs.values())
    shown = ", ".join(
        f"{name} {p:,}" + ("" if p == b else f" vs baseline {b:,}")
        for name, (p, b) in pairs.items()
    )
    checks = dict(sorted(pipe.rejects_by_check.items()))
    base_checks = dict(sorted(base.rejects_by_check.items()))
    print(
        f"  {entity:<13} {'agree' if same else 'DISAGREE'}: {shown}; rejects by check "
        f"{checks}" + ("" if checks == base_checks else f" vs baseline {base_checks}")
    )
    return same


def report(
    pipes: dict[Entity, PipelineRun],
    bases: dict[Entity, BaselineRun],
    read_seconds: float,
    read_peak: float,
) -> None:
    print("\nagreement (pipeline vs per-record baseline)")
    agreed = all([agreement(e, pipes[e].result, bases[e]) for e in ENTITIES])

    print("\nmapping and segment resolution")
    header = (
        f"{'entity':<14} {'pipe map+resolve':>16} {'base map+resolve':>16} {'ratio':>7}  "
        f"{'pipe stage (phases)':>19} {'pipe wall':>9} {'base map+val+write':>18}  "
        f"{'pipe peak':>9} {'base peak':>9}"
    )
    print(header)
    print("-" * len(header))
    totals = Counter()
    for entity in (*ENTITIES, "total"):
        if entity == "total":
            pm, bm, ps, pw, bw = (totals[k] for k in ("pm", "bm", "ps", "pw", "bw"))
            pp = max(p.peak_mb for p in pipes.values())
            bp = max(b.peak_mb for b in bases.values())
            print("-" * len(header))
        else:
            pipe, base = pipes[entity], bases[entity]
            pm, bm = pipe.result.profile[MAP_PHASE], base.seconds["map and resolve"]
            ps, pw, bw = pipe.phases, pipe.wall, sum(base.seconds.values())
            pp, bp = pipe.peak_mb, base.peak_mb
            totals.update({"pm": pm, "bm": bm, "ps": ps, "pw": pw, "bw": bw})
        print(
            f"{entity:<14} {pm:>14.2f} s {bm:>14.2f} s {bm / pm:>6.1f}x  "
            f"{ps:>17.2f} s {pw:>7.2f} s {bw:>16.2f} s  {pp:>6.0f} MB {bp:>6.0f} MB"
        )
    print(
        f"(baseline read of the raw rows as dicts, once for all entities: {read_seconds:.2f} s, "
        f"peak RSS {read_peak:.0f} MB; not in the per-entity ratios)"
    )

    phases = list(dict.fromkeys(p for run in pipes.values() for p in run.result.profile))
    print("\npipeline profile (seconds per phase)")
    width = max(len(p) for p in phases)
    print(f"{'phase':<{width}} " + " ".join(f"{e:>13}" for e in ENTITIES) + f" {'total':>8} share")
    whole = sum(run.phases for run in pipes.values())
    for phase in phases:
        cells = [pipes[e].result.profile.get(phase, 0.0) for e in ENTITIES]
        print(
            f"{phase:<{width}} "
            + " ".join(f"{c:>13.2f}" for c in cells)
            + f" {sum(cells):>8.2f} {sum(cells) / whole:>5.0%}"
        )
    print(
        f"{'sum of phases':<{width}} "
        + " ".join(f"{pipes[e].phases:>13.2f}" for e in ENTITIES)
        + f" {whole:>8.2f}"
    )

    # The pipeline's map phase reads its Parquet input; the like-for-like baseline figure counts
    # the mapper's own read of the rows as dicts too (once, for all entities).
    mapping_only = totals["bm"] / totals["pm"]
    ratio = (totals["bm"] + read_seconds) / totals["pm"]
    print(
        f"\nmapping + segment resolution, input read included on both sides: {ratio:.1f}x the "
        f"per-record baseline (target >= {TARGET_RATIO:.0f}x): "
        f"{'met' if ratio >= TARGET_RATIO else 'NOT met'}; "
        f"{mapping_only:.1f}x with the baseline's read left out"
    )
    print(
        f"whole stage, 3 entities: {whole:.2f} s of phases, {totals['pw']:.2f} s wall "
        f"(target < {TARGET_STAGE_SECONDS:.0f} s): "
        f"{'met' if totals['pw'] < TARGET_STAGE_SECONDS else 'NOT met'}"
    )
    print(
        f"counts: {'pipeline and baseline agree' if agreed else 'pipeline and baseline DISAGREE'}"
    )
    print(f"load average at the end: {load()}")


def load() -> str:
    """The machine is shared: the load average says how much of it this run had."""
    return " ".join(f"{x:.2f}" for x in os.getloadavg()) + f" ({os.cpu_count()} CPUs)"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument("--root", type=Path, default=None, help="default: a temporary directory")
    args = parser.parse_args()
    mappings, compiled = orderitem_set()
    print(f"load average at the start: {load()}")
    with tempfile.TemporaryDirectory(dir=args.root) as root:
        warehouse = Warehouse(Path(root) / "warehouse")
        started = time.perf_counter()
        keys = write_raw(warehouse, args.rows, args.days, pricing_codes(mappings))
        print(
            f"raw order_item: {args.rows:,} rows in {len(keys)} partitions, generated in "
            f"{time.perf_counter() - started:.1f} s",
            flush=True,
        )
        pipes = {e: run_pipeline(warehouse, compiled[e], keys) for e in ENTITIES}
        rows, read_seconds, read_peak = read_rows(warehouse, keys)
        bases = {
            e: run_baseline(e, mappings.active(e), compiled[e], rows, Path(root) / "baseline")
            for e in ENTITIES
        }
        report(pipes, bases, read_seconds, read_peak)


if __name__ == "__main__":
    main()
