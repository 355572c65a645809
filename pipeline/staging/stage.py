"""Stage one m3ter entity for a range of partitions: raw rows -> staged rows + rejects.

One DuckDB statement maps and resolves every row (the compiled mappings); set-based SQL catches
what pandera cannot see row by row (conversion failures, a record taken by two mappings, a code
used twice); pandera checks the flat columns. Rejected rows go to `staged.rejects` with their
reason and the rest are written, each partition replacing its previous file atomically.
"""

from __future__ import annotations

import copy
import datetime as dt
import shutil
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import duckdb
import pandas as pd
import pandera.pandas as pa
import pyarrow

from pipeline.extract.run import raw_table
from pipeline.extract.window import WHOLE
from pipeline.mapping.compiler import (
    CONFLICT,
    CUSTOM_FIELDS,
    ERRORS,
    INTERNAL,
    SEGMENT,
    SEGMENT_WILDCARDS,
    CompiledEntity,
)
from pipeline.mapping.spec import Entity
from pipeline.mapping.targets import has_code
from pipeline.staging import successions
from pipeline.staging.schemas import MESSAGES, SCHEMAS
from pipeline.warehouse import Table, Warehouse
from pipeline.warehouse.sql import identifier, literal, no_rows

REJECTS = Table("staged", "rejects")
PREVIEW_ROWS = 5
_PRICE_COLUMNS = ("unitPrice", "fixedPrice")


class StageError(RuntimeError):
    """The stage cannot run as asked (missing raw partitions or columns); nothing is written."""


def latest_rejects_sql(warehouse: Warehouse) -> str:
    """Each record's latest reject per entity, with the code its row would have had."""
    if not warehouse.partitions(REJECTS):
        return no_rows("entity, _source_object, _source_id, _partition, message, code")
    return f"""SELECT entity, _source_object, _source_id, _partition, message,
            coalesce(json_extract_string("row", '$.code'), _source_id) AS code
        FROM {REJECTS.sql}
        QUALIFY row_number() OVER (PARTITION BY entity, _source_object, _source_id
                                   ORDER BY _partition DESC, message) = 1"""


def staged_table(entity: Entity) -> Table:
    """Staged views show one row per source record: the latest version staged in any partition."""
    return Table(
        "staged",
        entity,
        latest_by=("_source_object", "_source_id"),
        order_by=("_version_stamp", "_staged_at"),
    )


@dataclass(frozen=True)
class StageSettings:
    # DuckDB's working memory for the stage; it spills to disk beyond this.
    memory_mb: int = 2048


@dataclass(frozen=True)
class StageResult:
    entity: Entity
    table: str
    rows_by_partition: dict[str, int]
    tombstones: int
    rejects_by_check: dict[str, int]
    segment_wildcards: int  # null segment values sent as m3ter's wildcard `*`
    rows_with_wildcards: int
    preview: list[dict[str, Any]]
    seconds: float
    rejected_rows: int = 0  # rows with at least one reject
    profile: dict[str, float] = field(default_factory=dict)  # seconds per phase

    @property
    def rows(self) -> int:
        """Rows written, tombstones included."""
        return sum(self.rows_by_partition.values())

    @property
    def rejects(self) -> int:
        return sum(self.rejects_by_check.values())

    @property
    def reject_share(self) -> float:
        """Rejected rows over rows that were meant to be loaded (tombstones are not)."""
        desired = self.rows - self.tombstones + self.rejected_rows
        return self.rejected_rows / desired if desired else 0.0


def stage(
    warehouse: Warehouse,
    compiled: CompiledEntity,
    partitions: Sequence[str] | None,
    settings: StageSettings = StageSettings(),
) -> StageResult:
    """Stage `compiled.entity` for `partitions` (None: the entity's sources are read whole)."""
    started = time.monotonic()
    profile: dict[str, float] = {}
    keys = list(partitions) if partitions else [WHOLE]
    # A spill directory of its own: two partition runs may stage at once.
    work = warehouse.root / "tmp" / f"stage-{compiled.entity}-{uuid.uuid4().hex}"
    work.mkdir(parents=True)
    con = duckdb.connect(
        config={
            "memory_limit": f"{settings.memory_mb}MB",
            "temp_directory": str(work / "spill"),
            "preserve_insertion_order": False,
        }
    )
    try:
        con.execute("SET TimeZone = 'UTC'")
        clock = _Clock(profile)
        relations = {s: _relation(con, warehouse, compiled, s, keys) for s in compiled.sources}
        clock("check raw")
        staged_at = dt.datetime.now(dt.UTC).replace(tzinfo=None)
        for source in compiled.sources:
            if compiled.succeeds(source):
                obj = compiled.source(source)
                relations[source] = successions.continued(
                    con, warehouse, obj, relations[source], keys, staged_at
                )
        clock("match replaced lines (SQL)")
        _candidates(con, compiled, relations)
        clock("map and resolve (SQL)")
        _sql_rejects(con, compiled)
        clock("set checks (SQL)")
        _pandera_rejects(con, compiled.entity)
        clock("validate (pandera)")
        rows = warehouse.write_partitions(
            con,
            staged_table(compiled.entity),
            _staged_query(compiled, staged_at),
            [],
            "_partition",
            cover=keys,
        )
        clock("write staged")
        warehouse.write_partitions(
            con,
            REJECTS,
            _rejects_query(compiled, staged_at),
            [],
            "_partition",
            cover=keys,
            file_prefix=f"{compiled.entity}.",
        )
        clock("write rejects")
        result = _summary(con, compiled, rows, started, profile)
    finally:
        con.close()
        shutil.rmtree(work, ignore_errors=True)
    return result


class _Clock:
    def __init__(self, profile: dict[str, float]) -> None:
        self._profile = profile
        self._last = time.perf_counter()

    def __call__(self, phase: str) -> None:
        now = time.perf_counter()
        self._profile[phase] = round(now - self._last, 3)
        self._last = now


def _relation(
    con: duckdb.DuckDBPyConnection,
    warehouse: Warehouse,
    compiled: CompiledEntity,
    source: str,
    keys: Sequence[str],
) -> str:
    """The raw rows of `source` in `keys`, one per record and partition, as a SQL source."""
    obj = compiled.source(source)
    table = raw_table(obj)
    wanted = keys if obj.partitioned else [WHOLE]
    paths, missing = warehouse.partition_files(table, wanted)
    if missing:
        shown = ", ".join(missing[:5]) + (" ..." if len(missing) > 5 else "")
        raise StageError(
            f"{table.qualified} has no partition {shown}: extract it before staging "
            f"{compiled.entity}"
        )
    files = "[" + ", ".join(literal(str(p)) for p in paths) + "]"
    source_sql = f"read_parquet({files})"
    present = {row[0] for row in con.execute(f"DESCRIBE SELECT * FROM {source_sql}").fetchall()}
    needed = {c for m in compiled.mappings if m.source == source for c in m.columns}
    absent = sorted(needed - present)
    if absent:
        raise StageError(
            f"{table.qualified} lacks {', '.join(absent)}, which the {compiled.entity} mappings "
            "read: extract it again with the current mappings"
        )
    if obj.partitioned:
        # A raw partition file holds one row per record (the extract's promise), so no
        # de-duplication is needed; a duplicate is rejected by `one_row_per_record`.
        return f"(SELECT * FROM {source_sql})"
    return f"(SELECT * REPLACE ({literal(keys[0])} AS _partition) FROM {source_sql})"


def _candidates(
    con: duckdb.DuckDBPyConnection, compiled: CompiledEntity, relations: dict[str, str]
) -> None:
    mapped = compiled.sql(lambda source: relations[source], extra=("_partition",))
    # Rows are named by the temporary table's rowid (`_row` in `rejected`).
    con.execute(f"CREATE TEMP TABLE candidates AS {mapped}")
    con.execute('CREATE TEMP TABLE rejected (_row BIGINT, "check" VARCHAR, message VARCHAR)')


def _sql_rejects(con: duckdb.DuckDBPyConnection, compiled: CompiledEntity) -> None:
    """Rules over several rows, or over values pandera never sees."""
    con.execute(
        f"INSERT INTO rejected SELECT rowid, 'conversion', unnest({ERRORS}) "
        f"FROM candidates WHERE len({ERRORS}) > 0"
    )
    con.execute(
        f"""
        INSERT INTO rejected
        SELECT rowid, 'one_mapping_per_record',
               _source_object || ' ' || _source_id || ' is taken by several mappings ('
               || {CONFLICT} || '); keep one'
        FROM candidates WHERE {CONFLICT} IS NOT NULL
        """
    )
    # The extract writes one row per record and partition; copies of a record (a raw file
    # written by hand, or a broken extract) cannot say which is right, so none is staged.
    con.execute(
        """
        INSERT INTO rejected
        SELECT rowid, 'one_row_per_record',
               _source_object || ' ' || _source_id || ' has '
               || count(*) OVER source_key || ' rows in raw partition ' || _partition
               || '; the extract keeps one row per record'
        FROM candidates
        WINDOW source_key AS (PARTITION BY _partition, _source_object, _source_id)
        QUALIFY count(*) OVER source_key > 1
        """
    )
    if has_code(compiled.entity):
        # A code read from a field names one record's object; rows of a mapping that computes
        # its code share objects, and the load checks that they agree (`load/groups.py`).
        con.execute(
            """
            INSERT INTO rejected
            SELECT rowid, 'unique_code',
                   'code ' || code || ' is staged for several records in partition ' || _partition
            FROM candidates WHERE NOT _tombstone AND code IS NOT NULL AND NOT _grouped
            WINDOW code_key AS (PARTITION BY _partition, code)
            QUALIFY min(_source_id) OVER code_key <> max(_source_id) OVER code_key
                 OR min(_source_object) OVER code_key <> max(_source_object) OVER code_key
            """
        )


def _pandera_rejects(con: duckdb.DuckDBPyConnection, entity: Entity) -> None:
    """Check the flat columns with the entity's pandera model; failures become rejects."""
    schema = SCHEMAS[entity].to_schema()
    columns = list(schema.columns)
    numeric = {name for name, col in schema.columns.items() if str(col.dtype) == "float64"}
    select = ", ".join(
        f"CAST({identifier(c)} AS DOUBLE) AS {identifier(c)}" if c in numeric else identifier(c)
        for c in columns
    )
    table = con.sql(
        # Rows whose values did not convert are rejected already, and their nulls would only
        # repeat that reason.
        f"SELECT rowid AS _row, {select} FROM candidates "
        f"WHERE NOT _tombstone AND len({ERRORS}) = 0 ORDER BY rowid"
    ).to_arrow_table()
    frame = table.to_pandas(types_mapper=_arrow_strings)
    # pandera checks the columns and names each failing value. The model's checks across
    # columns run as pandera Checks too, read as masks: reshaping their failures row by row
    # into pandera's report costs many times what the checks do.
    by_column = copy.copy(schema)
    by_column.checks = []
    found = []
    try:
        by_column.validate(frame, lazy=True)
    except pa.errors.SchemaErrors as errors:
        found.append(_failure_rows(errors.failure_cases, frame))
    for check in schema.checks:
        passed = check(frame).check_output.fillna(False).astype(bool)
        failed = frame["_row"][~passed].to_numpy()
        if len(failed):
            found.append(
                pd.DataFrame({"_row": failed, "check": check.name, "message": MESSAGES[check.name]})
            )
    if not found:
        return
    con.register("pandera_rejects", pd.concat(found, ignore_index=True))
    con.execute('INSERT INTO rejected SELECT _row, "check", message FROM pandera_rejects')
    con.unregister("pandera_rejects")


def _arrow_strings(arrow_type: pyarrow.DataType) -> Any:
    if arrow_type in (pyarrow.string(), pyarrow.large_string(), pyarrow.string_view()):
        return pd.StringDtype("pyarrow")
    return None


def _failure_rows(failures: pd.DataFrame, frame: pd.DataFrame) -> pd.DataFrame:
    """One (row, check, message) per failing row and check, from pandera's failure cases."""
    unplaced = failures[failures["index"].isna()]
    if len(unplaced):
        # A column missing or of the wrong type: a bug in the stage, not a bad record.
        raise StageError(f"staged columns do not match their schema: {unplaced.to_dict('records')}")
    rows = frame["_row"].to_numpy()
    check = failures["check"].astype(str)
    out = pd.DataFrame(
        {
            "_row": rows[failures["index"].astype(int).to_numpy()],
            # `str_matches('^…$')` -> `str_matches`: the rule's name, without its arguments
            "check": check.str.split("(", n=1).str[0].to_numpy(),
            "message": (
                failures["column"].astype(str)
                + " = "
                + failures["failure_case"].astype(str).map(repr)
                + " fails "
                + check
            ).to_numpy(),
        }
    )
    required = out["check"] == "not_nullable"
    out.loc[required, "message"] = (
        failures["column"].astype(str).to_numpy()[required] + " is required"
    )
    return out.drop_duplicates(subset=["_row", "check"]).astype({"_row": "int64"})


def _staged_query(compiled: CompiledEntity, staged_at: dt.datetime) -> str:
    columns = [c for c in compiled.columns if c not in INTERNAL]
    select = [identifier(c) for c in columns if c not in _PRICE_COLUMNS]
    if compiled.entity == "pricings":
        # One band from zero: a unit price per unit and a fixed price per period.
        select.insert(
            columns.index("startDate"),
            "CASE WHEN _tombstone THEN NULL ELSE [{'lowerLimit': 0.0::DOUBLE, "
            "'fixedPrice': coalesce(\"fixedPrice\", 0.0::DOUBLE), "
            '\'unitPrice\': coalesce("unitPrice", 0.0::DOUBLE)}] END AS "pricingBands"',
        )
    select += ["_partition", f"TIMESTAMP {literal(str(staged_at))} AS _staged_at"]
    return (
        f"SELECT {', '.join(select)} FROM candidates WHERE rowid NOT IN (SELECT _row FROM rejected)"
    )


def _rejects_query(compiled: CompiledEntity, staged_at: dt.datetime) -> str:
    row = ", ".join(
        f"{identifier(c)} := c.{identifier(c)}" for c in compiled.columns if c not in INTERNAL
    )
    return f"""
        SELECT {literal(compiled.entity)} AS entity, c._partition, c._source_object,
               c._source_id, c._mapping, r."check", r.message,
               CAST(to_json(struct_pack({row})) AS VARCHAR) AS "row",
               TIMESTAMP {literal(str(staged_at))} AS _staged_at
        FROM rejected r JOIN candidates c ON c.rowid = r._row
    """


def _summary(
    con: duckdb.DuckDBPyConnection,
    compiled: CompiledEntity,
    rows: dict[str, int],
    started: float,
    profile: dict[str, float],
) -> StageResult:
    by_check = dict(
        con.execute('SELECT "check", count(*) FROM rejected GROUP BY 1 ORDER BY 1').fetchall()
    )
    (rejected_rows,) = con.execute("SELECT count(DISTINCT _row) FROM rejected").fetchone() or (0,)
    (tombstones,) = con.execute(
        "SELECT count(*) FROM candidates WHERE _tombstone "
        "AND rowid NOT IN (SELECT _row FROM rejected)"
    ).fetchone() or (0,)
    wildcards, with_wildcards = 0, 0
    if SEGMENT_WILDCARDS in compiled.columns:
        wildcards, with_wildcards = con.execute(
            f"SELECT coalesce(sum({SEGMENT_WILDCARDS}), 0), "
            f"count(*) FILTER ({SEGMENT_WILDCARDS} > 0) "
            "FROM candidates WHERE NOT _tombstone AND rowid NOT IN (SELECT _row FROM rejected)"
        ).fetchone() or (0, 0)
    shown = [c for c in compiled.columns if c not in (*INTERNAL, CUSTOM_FIELDS, SEGMENT)]
    preview_sql = (
        f"SELECT {', '.join(identifier(c) for c in shown)} FROM candidates "
        "WHERE NOT _tombstone AND rowid NOT IN (SELECT _row FROM rejected) "
        f"ORDER BY rowid LIMIT {PREVIEW_ROWS}"
    )
    cursor = con.execute(preview_sql)
    names = [d[0] for d in cursor.description]
    preview = [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]
    return StageResult(
        entity=compiled.entity,
        table=staged_table(compiled.entity).qualified,
        rows_by_partition=rows,
        tombstones=int(tombstones),
        rejects_by_check={str(k): int(v) for k, v in by_check.items()},
        segment_wildcards=int(wildcards),
        rows_with_wildcards=int(with_wildcards),
        preview=preview,
        seconds=time.monotonic() - started,
        profile=profile,
        rejected_rows=int(rejected_rows),
    )
