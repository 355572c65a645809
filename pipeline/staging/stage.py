"""Stage one m3ter entity for a range of partitions: raw rows -> staged rows + rejects.

One DuckDB statement maps and resolves every row (the compiled mappings); set-based SQL catches
what pandera cannot see row by row (conversion failures, a record taken by two mappings, a code
used twice); pandera checks the flat columns. Rejected rows go to `staged.rejects` with their
reason and the rest are written, each partition replacing its previous file atomically.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import duckdb
import pandas as pd
import pandera.pandas as pa
import pyarrow

from pipeline.extract.objects import source_object
from pipeline.extract.run import raw_table
from pipeline.extract.window import WHOLE
from pipeline.mapping.compiler import (
    CUSTOM_FIELDS,
    ERRORS,
    SEGMENT,
    SEGMENT_OMITTED,
    CompiledEntity,
)
from pipeline.mapping.spec import Entity
from pipeline.mapping.targets import has_code
from pipeline.staging.schemas import MESSAGES, SCHEMAS
from pipeline.warehouse import Table, Warehouse
from pipeline.warehouse.sql import identifier, literal

REJECTS = Table("staged", "rejects")
PREVIEW_ROWS = 5
_PRICE_COLUMNS = ("unitPrice", "fixedPrice")


class StageError(RuntimeError):
    """The stage cannot run as asked (missing raw partitions or columns); nothing is written."""


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
    segment_keys_omitted: int  # null segment values left out (read by m3ter as wildcards)
    rows_with_omitted_keys: int
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
    work = warehouse.root / "tmp"
    work.mkdir(parents=True, exist_ok=True)
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
        _candidates(con, compiled, relations)
        clock("map and resolve (SQL)")
        _sql_rejects(con, compiled)
        clock("set checks (SQL)")
        _pandera_rejects(con, compiled.entity)
        clock("validate (pandera)")
        staged_at = dt.datetime.now(dt.UTC).replace(tzinfo=None)
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
    obj = source_object(source)
    table = raw_table(obj)
    wanted = keys if obj.partitioned else [WHOLE]
    paths = [warehouse.partition_path(table, key) for key in wanted]
    missing = [p.stem for p in paths if not p.is_file()]
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
    partition = '"_partition"' if obj.partitioned else f"CAST({literal(keys[0])} AS VARCHAR)"
    return (
        f"(SELECT * REPLACE ({partition} AS _partition) FROM {source_sql} "
        'QUALIFY row_number() OVER (PARTITION BY "Id", "_partition" '
        'ORDER BY "_version_stamp" DESC, "_extracted_at" DESC) = 1)'
    )


def _candidates(
    con: duckdb.DuckDBPyConnection, compiled: CompiledEntity, relations: dict[str, str]
) -> None:
    mapped = compiled.sql(lambda source: relations[source], extra=("_partition",))
    con.execute(
        f"CREATE TEMP TABLE candidates AS SELECT row_number() OVER () AS _row, * FROM ({mapped})"
    )
    con.execute('CREATE TEMP TABLE rejected (_row BIGINT, "check" VARCHAR, message VARCHAR)')


def _sql_rejects(con: duckdb.DuckDBPyConnection, compiled: CompiledEntity) -> None:
    """Rules over several rows, or over values pandera never sees."""
    con.execute(
        f"INSERT INTO rejected SELECT _row, 'conversion', unnest({ERRORS}) "
        f"FROM candidates WHERE len({ERRORS}) > 0"
    )
    con.execute(
        """
        INSERT INTO rejected
        SELECT _row, 'one_mapping_per_record',
               _source_object || ' ' || _source_id || ' is taken by several mappings ('
               || string_agg(_mapping, ', ') OVER key || '); keep one'
        FROM candidates WHERE NOT _tombstone
        WINDOW key AS (PARTITION BY _partition, _source_object, _source_id)
        QUALIFY count(*) OVER key > 1
        """
    )
    if has_code(compiled.entity):
        con.execute(
            """
            INSERT INTO rejected
            SELECT _row, 'unique_code',
                   'code ' || code || ' is staged for several records in partition ' || _partition
            FROM candidates WHERE NOT _tombstone AND code IS NOT NULL
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
        f"SELECT _row, {select} FROM candidates "
        f"WHERE NOT _tombstone AND len({ERRORS}) = 0 ORDER BY _row"
    ).to_arrow_table()
    frame = table.to_pandas(types_mapper=_arrow_strings)
    try:
        schema.validate(frame, lazy=True)
        return
    except pa.errors.SchemaErrors as errors:
        failures = errors.failure_cases
    found = _failure_rows(failures, frame)
    con.register("pandera_rejects", found)
    con.execute('INSERT INTO rejected SELECT _row, "check", message FROM pandera_rejects')
    con.unregister("pandera_rejects")


def _arrow_strings(arrow_type: pyarrow.DataType) -> Any:
    if arrow_type in (pyarrow.string(), pyarrow.large_string(), pyarrow.string_view()):
        return pd.StringDtype("pyarrow")
    return None


def _failure_rows(failures: pd.DataFrame, frame: pd.DataFrame) -> pd.DataFrame:
    """One (row, check, message) per failing row and check, from pandera's failure cases."""
    failures = failures[failures["index"].notna()]
    unplaced = failures[failures["index"].isna()]
    if len(unplaced):
        raise StageError(f"staged columns do not match their schema: {unplaced.to_dict('records')}")
    rows = frame["_row"].to_numpy()
    out = pd.DataFrame(
        {
            "_row": rows[failures["index"].astype(int).to_numpy()],
            "check": failures["check"].astype(str).to_numpy(),
            "column": failures["column"].astype(str).to_numpy(),
            "value": failures["failure_case"].astype(str).to_numpy(),
        }
    )
    out = out.drop_duplicates(subset=["_row", "check"])
    out["message"] = [
        _message(check, column, value)
        for check, column, value in zip(out["check"], out["column"], out["value"], strict=True)
    ]
    out["check"] = [_check_name(check) for check in out["check"]]
    return out[["_row", "check", "message"]].astype({"_row": "int64"})


def _check_name(check: str) -> str:
    """`str_matches('^…$')` -> `str_matches`: the rule's name, without its arguments."""
    return check.split("(", 1)[0]


def _message(check: str, column: str, value: str) -> str:
    name = _check_name(check)
    if name in MESSAGES:
        return MESSAGES[name]
    if name == "not_nullable":
        return f"{column} is required"
    return f"{column} = {value!r} fails {check}"


def _staged_query(compiled: CompiledEntity, staged_at: dt.datetime) -> str:
    columns = [c for c in compiled.columns if c != ERRORS]
    select = [identifier(c) for c in columns if c not in _PRICE_COLUMNS]
    if compiled.entity == "pricings":
        # One band from zero: a unit price per unit and a fixed price per period.
        select.insert(
            columns.index("startDate"),
            "CASE WHEN _tombstone THEN NULL ELSE [{'lowerLimit': 0.0, "
            "'fixedPrice': coalesce(\"fixedPrice\", 0.0), "
            '\'unitPrice\': coalesce("unitPrice", 0.0)}] END AS "pricingBands"',
        )
    select += ["_partition", f"TIMESTAMP {literal(str(staged_at))} AS _staged_at"]
    return (
        f"SELECT {', '.join(select)} FROM candidates WHERE _row NOT IN (SELECT _row FROM rejected)"
    )


def _rejects_query(compiled: CompiledEntity, staged_at: dt.datetime) -> str:
    row = ", ".join(
        f"{identifier(c)} := c.{identifier(c)}" for c in compiled.columns if c != ERRORS
    )
    return f"""
        SELECT {literal(compiled.entity)} AS entity, c._partition, c._source_object,
               c._source_id, c._mapping, r."check", r.message,
               CAST(to_json(struct_pack({row})) AS VARCHAR) AS "row",
               TIMESTAMP {literal(str(staged_at))} AS _staged_at
        FROM rejected r JOIN candidates c USING (_row)
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
        "AND _row NOT IN (SELECT _row FROM rejected)"
    ).fetchone() or (0,)
    omitted, with_omitted = 0, 0
    if SEGMENT_OMITTED in compiled.columns:
        omitted, with_omitted = con.execute(
            f"SELECT coalesce(sum({SEGMENT_OMITTED}), 0), count(*) FILTER ({SEGMENT_OMITTED} > 0) "
            "FROM candidates WHERE NOT _tombstone AND _row NOT IN (SELECT _row FROM rejected)"
        ).fetchone() or (0, 0)
    shown = [c for c in compiled.columns if c not in (ERRORS, CUSTOM_FIELDS, SEGMENT)]
    preview_sql = (
        f"SELECT {', '.join(identifier(c) for c in shown)} FROM candidates "
        "WHERE NOT _tombstone AND _row NOT IN (SELECT _row FROM rejected) "
        f"ORDER BY _row LIMIT {PREVIEW_ROWS}"
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
        segment_keys_omitted=int(omitted),
        rows_with_omitted_keys=int(with_omitted),
        preview=preview,
        seconds=time.monotonic() - started,
        profile=profile,
        rejected_rows=int(rejected_rows),
    )
