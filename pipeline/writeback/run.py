"""Write each changed sync outcome back onto its Salesforce record, after the load.

Only records whose outcome (status, message, m3ter id) differs from the one last written are
sent: none on a quiet night. An object's few changes go through REST `composite/sobjects`
(200 records a call); more go through Bulk API 2.0 ingest jobs, a page of records each.
A record locked by another transaction (`UNABLE_TO_LOCK_ROW`) is tried again with back-off;
every other refusal (a validation rule, field-level security, a spent daily quota) is journaled
per record in `load.writeback` and tried again by the next run. Nothing here touches m3ter: a
failed write-back never undoes a load.

No feedback loop: the extract's windows skip changes whose last writer is the integration user
on written-back objects (`FieldPlan.written`), so tomorrow's window does not re-read what was
written today. What a person changed since the warehouse's last window would then be hidden
under m3sync's own write, so such records are deferred (journaled, written by a later run,
once their change has been extracted). [assume] Salesforce offers no conditional update: a
change that lands between that check and the write is hidden until the weekly refresh.
"""

from __future__ import annotations

import datetime as dt
import shutil
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import duckdb

from pipeline.extract.objects import SourceObject
from pipeline.extract.run import raw_table
from pipeline.extract.window import DAY, soql_datetime
from pipeline.mapping.compiler import CompiledSet
from pipeline.mapping.writeback import StatusFields
from pipeline.salesforce.client import SalesforceClient
from pipeline.salesforce.errors import (
    ApiLimitExceeded,
    QuotaFloorReached,
    SalesforceExtractError,
)
from pipeline.warehouse import Warehouse
from pipeline.warehouse.sql import identifier, literal
from pipeline.writeback.journal import COLUMNS, last_written_sql, write_attempts
from pipeline.writeback.outcomes import OUTCOMES, outcomes

COMPOSITE_BATCH = 200  # records per `composite/sobjects` call, Salesforce's limit
RETRYABLE = frozenset({"UNABLE_TO_LOCK_ROW"})
_RESULT_COLUMNS = "pos BIGINT, ok BOOLEAN, code VARCHAR, error VARCHAR"


@dataclass(frozen=True)
class WritebackSettings:
    # An object with at most this many changed records is written through composite calls
    # (five at most); more go through Bulk API 2.0, whose job costs a few calls and a poll.
    composite_max: int = 1_000
    bulk_page_rows: int = 100_000  # records per ingest job
    lock_retries: int = 3
    backoff_seconds: float = 1.0  # doubled after each try
    poll_seconds: float = 0.5
    quota_floor: int = 1_000  # stop before the org's remaining daily requests fall below this
    overlap: dt.timedelta = dt.timedelta(minutes=10)  # the extract's window overlap


@dataclass(frozen=True)
class ObjectWriteback:
    sobject: str
    changed: int  # records whose outcome differs from the one last written
    written: int
    failed: int
    deferred: int
    method: str  # composite | bulk | none
    errors: dict[str, int] = field(default_factory=dict)  # Salesforce error code -> records


@dataclass(frozen=True)
class WritebackResult:
    run_id: str
    objects: list[ObjectWriteback]
    statuses: dict[str, int]  # status -> records with that outcome, written or not
    api_calls: int
    bulk_jobs: int

    @property
    def written(self) -> int:
        return sum(o.written for o in self.objects)

    @property
    def failed(self) -> int:
        return sum(o.failed for o in self.objects)


def run_writes_back(last_partition: str | None, today: dt.date) -> bool:
    """Whether a run whose last daily partition is `last_partition` (None: none) writes back.

    A write moves its records' stamps to now, past every day a backfill has still to read: a
    line whose version lay on such a day through a parent's change would no longer be in any
    window once the parent's stamp is m3sync's. So only a run that reaches the last complete
    day (the nightly run, a backfill's last chunk) writes back, once nothing is left behind it;
    a run of older days leaves its changed outcomes to the next one that does.
    """
    if last_partition is None:
        return True
    return dt.date.fromisoformat(last_partition) >= today - DAY


def write_back(
    client: SalesforceClient,
    warehouse: Warehouse,
    compiled: CompiledSet,
    settings: WritebackSettings = WritebackSettings(),
) -> WritebackResult:
    """Write the changed outcomes of every written-back object; journal every attempt."""
    started = dt.datetime.now(dt.UTC)
    run_id = f"{started:%Y%m%dT%H%M%S}-{uuid.uuid4().hex[:8]}"
    before = client.spent()
    soft_delete = {
        obj: deletes for c in compiled.entities.values() for obj, deletes in c.soft_delete.items()
    }
    work = warehouse.root / "tmp" / f"writeback-{run_id}"
    con = warehouse.connect()
    results: list[ObjectWriteback] = []
    try:
        con.execute("SET enable_progress_bar = false")
        outcomes(warehouse, con, compiled.writeback, soft_delete)
        con.execute(f"""
            CREATE TEMP TABLE _changed AS
            SELECT o.* FROM {OUTCOMES} o
            LEFT JOIN ({last_written_sql(warehouse)}) w USING (source_object, source_id)
            WHERE w.source_id IS NULL OR o.status IS DISTINCT FROM w.status
               OR o.message IS DISTINCT FROM w.message OR o.m3ter_id IS DISTINCT FROM w.m3ter_id
        """)
        con.execute(f"CREATE TEMP TABLE _attempts ({COLUMNS})")
        statuses = dict(
            con.execute(f"SELECT status, count(*) FROM {OUTCOMES} GROUP BY 1").fetchall()
        )
        writer: str | None = None
        stopped: str | None = None
        for row in compiled.writeback:
            (changed,) = con.execute(
                "SELECT count(*) FROM _changed WHERE source_object = ?", [row.object]
            ).fetchone() or (0,)
            if not changed:
                results.append(ObjectWriteback(row.object, 0, 0, 0, 0, "none"))
                continue
            writer = writer or client.user_id()
            results.append(
                _write_object(
                    client, warehouse, con, row, (run_id, started), writer, work, settings, stopped
                )
            )
            if results[-1].errors.get("REQUEST_LIMIT_EXCEEDED"):
                stopped = "the org's daily API request limit is used up"
        write_attempts(warehouse, con, run_id, "_attempts")
    finally:
        con.close()
        shutil.rmtree(work, ignore_errors=True)
    spent = client.spent() - before
    return WritebackResult(run_id, results, statuses, spent.api_calls, spent.bulk_jobs)


def _write_object(
    client: SalesforceClient,
    warehouse: Warehouse,
    con: duckdb.DuckDBPyConnection,
    row: StatusFields,
    run: tuple[str, dt.datetime],  # its id, and when it started (before its first write)
    writer: str,
    work: Path,
    settings: WritebackSettings,
    stopped: str | None,
) -> ObjectWriteback:
    raw = raw_table(SourceObject(row.object))
    key = "source_id" if row.key == "Id" else f"r.{identifier(row.key)}"
    join = "" if row.key == "Id" else f'LEFT JOIN {raw.sql} r ON r."Id" = c.source_id'
    con.execute(
        f"""
        CREATE OR REPLACE TEMP TABLE _payload AS
        SELECT row_number() OVER (ORDER BY c.source_id) - 1 AS pos, c.*, {key} AS "key"
        FROM _changed c {join} WHERE c.source_object = ?
    """,
        [row.object],
    )
    changed = _count(con, "_payload")
    con.execute("CREATE OR REPLACE TEMP TABLE _edited (source_id VARCHAR)")
    if stopped is None:
        try:
            client.ensure_quota(settings.quota_floor)
            _edited_since(client, warehouse, con, row, writer, work, settings)
        except (ApiLimitExceeded, QuotaFloorReached) as exc:
            stopped = str(exc)
    con.execute(f"CREATE OR REPLACE TEMP TABLE _results ({_RESULT_COLUMNS})")
    method = "none"
    if stopped is not None:
        con.execute(
            "INSERT INTO _results SELECT pos, false, 'REQUEST_LIMIT_EXCEEDED', ? FROM _payload",
            [stopped],
        )
    else:
        con.execute("""
            CREATE OR REPLACE TEMP TABLE _pending AS
            SELECT * FROM _payload WHERE source_id NOT IN (SELECT source_id FROM _edited)
        """)
        pending = _count(con, "_pending")
        # An external key is an upsert, which goes through a Bulk API 2.0 job whatever its size.
        small = pending <= settings.composite_max and row.key == "Id"
        method = "composite" if small else "bulk"
        send_pending(client, con, row, method, work / row.object, settings)
    con.execute(
        """
        INSERT INTO _attempts
        SELECT ?, ?::TIMESTAMP, p.source_object, p.source_id, p.status, p.message,
            p.m3ter_id, p.synced_at,
            CASE WHEN r.ok THEN 'written' WHEN r.pos IS NULL THEN 'deferred' ELSE 'failed' END,
            CASE WHEN r.ok THEN NULL WHEN r.pos IS NULL
                THEN 'changed in Salesforce since the last extract: written once extracted'
                ELSE r.code || ': ' || r.error END
        FROM _payload p LEFT JOIN _results r USING (pos)
    """,
        [run[0], run[1].replace(tzinfo=None)],
    )
    counts = dict(
        con.execute("""
            SELECT CASE WHEN r.pos IS NULL THEN 'deferred' WHEN r.ok THEN 'written'
                ELSE 'failed' END, count(*)
            FROM _payload p LEFT JOIN _results r USING (pos) GROUP BY 1
        """).fetchall()
    )
    errors = dict(
        con.execute("SELECT code, count(*) FROM _results WHERE NOT ok GROUP BY 1").fetchall()
    )
    return ObjectWriteback(
        row.object,
        changed,
        int(counts.get("written", 0)),
        int(counts.get("failed", 0)),
        int(counts.get("deferred", 0)),
        method,
        dict(errors),
    )


def send_pending(
    client: SalesforceClient,
    con: duckdb.DuckDBPyConnection,
    row: StatusFields,
    method: str,
    work: Path,
    settings: WritebackSettings,
) -> None:
    """Write the records of temp table `_pending` (pos, key and the outcome columns) through
    `method` (composite | bulk), trying locked ones again with back-off; each record's last
    result lands in temp table `_results` (pos, ok, code, error)."""
    con.execute(f"CREATE TEMP TABLE IF NOT EXISTS _results ({_RESULT_COLUMNS})")
    for attempt in range(settings.lock_retries + 1):
        if attempt:
            time.sleep(settings.backoff_seconds * 2 ** (attempt - 1))
        con.execute(f"CREATE OR REPLACE TEMP TABLE _tried ({_RESULT_COLUMNS})")
        if method == "composite":
            _composite(client, con, row)
        else:
            _bulk(client, con, row, work, settings)
        con.execute("DELETE FROM _results WHERE pos IN (SELECT pos FROM _tried)")
        con.execute("INSERT INTO _results SELECT * FROM _tried")
        con.execute(
            "CREATE OR REPLACE TEMP TABLE _pending AS SELECT p.* FROM _pending p "
            "JOIN _tried t USING (pos) WHERE t.code IN (SELECT unnest(?::VARCHAR[]))",
            [sorted(RETRYABLE)],
        )
        if not _count(con, "_pending"):
            return


def _count(con: duckdb.DuckDBPyConnection, table: str) -> int:
    (count,) = con.execute(f"SELECT count(*) FROM {table}").fetchone() or (0,)
    return int(count)


def _edited_since(
    client: SalesforceClient,
    warehouse: Warehouse,
    con: duckdb.DuckDBPyConnection,
    row: StatusFields,
    writer: str,
    work: Path,
    settings: WritebackSettings,
) -> None:
    """Fill `_edited` with the records someone else changed after the warehouse's last window
    of the object was read: the end of its latest day, or when that day's file was written if
    sooner, less the extract's overlap."""
    raw = raw_table(SourceObject(row.object))
    days = [p for p in warehouse.partitions(raw) if p[:1].isdigit()]
    if not days:
        return
    latest = max(days)
    since = dt.datetime.combine(dt.date.fromisoformat(latest), dt.time(), dt.UTC) + DAY
    # A day read before it ended was read until its file was published (less the overlap).
    published = warehouse.written_at(raw, latest)
    since = min(since, dt.datetime.fromtimestamp(published, dt.UTC))
    since -= settings.overlap
    work.mkdir(parents=True, exist_ok=True)
    path = work / f"{row.object}-edited.json"
    found = client.query_all_to_file(
        f"SELECT Id FROM {row.object} WHERE SystemModstamp >= {soql_datetime(since)} "
        f"AND LastModifiedById != {literal(writer)}",
        path,
        include_deleted=False,
    )
    if found:
        con.execute(
            f'INSERT INTO _edited SELECT "Id" FROM read_json({literal(str(path))}, '
            "columns = {'Id': 'VARCHAR'})"
        )


def _values(row: StatusFields, null: str | None) -> list[tuple[str, str]]:
    """(column, SQL expression) of each written field; `null` stands for a cleared value
    where the wire format needs one (Bulk CSV: `#N/A`; an empty cell leaves it as it was)."""

    def cleared(expression: str) -> str:
        return expression if null is None else f"coalesce({expression}, {literal(null)})"

    exprs = {
        "status": "status",
        "time": "strftime(coalesce(synced_at, now()::TIMESTAMP), '%Y-%m-%dT%H:%M:%S.000Z')",
        "message": f"left(message, {row.message_length})",
        "m3ter_id": "m3ter_id",
    }
    return [(name, cleared(exprs[role])) for role, name in row.fields().items()]


def _composite(client: SalesforceClient, con: duckdb.DuckDBPyConnection, row: StatusFields) -> None:
    """`_pending` through `composite/sobjects`, 200 records a call, into `_tried`."""
    fields = ", ".join(f"{literal(name)}: {expr}" for name, expr in _values(row, None))
    kind = literal(row.object)
    batches = con.execute(f"""
        SELECT list(pos ORDER BY pos),
            to_json(list({{'attributes': {{'type': {kind}}}, 'id': "key", {fields}}} ORDER BY pos))
        FROM (SELECT *, (row_number() OVER (ORDER BY pos) - 1) // {COMPOSITE_BATCH} AS batch
              FROM _pending)
        GROUP BY batch ORDER BY batch
    """).fetchall()
    for positions, records in batches:
        body = '{"allOrNone": false, "records": ' + str(records) + "}"
        try:
            answer = client.composite_update(body)
        except SalesforceExtractError as exc:
            if isinstance(exc, ApiLimitExceeded):  # this batch and every later one
                _fail(con, f"SELECT pos FROM _pending WHERE pos >= {int(positions[0])}", exc)
                return
            _fail(con, f"SELECT unnest({[int(p) for p in positions]}::BIGINT[]) AS pos", exc)
            continue
        con.execute(
            """
            INSERT INTO _tried
            SELECT p.pos, coalesce((r->>'success')::BOOLEAN, false),
                r->'errors'->0->>'statusCode', r->'errors'->0->>'message'
            FROM (SELECT unnest(?::BIGINT[]) AS pos, unnest(from_json(?, '["JSON"]')) AS r) p
            """,
            [positions, answer],
        )


def _bulk(
    client: SalesforceClient,
    con: duckdb.DuckDBPyConnection,
    row: StatusFields,
    work: Path,
    settings: WritebackSettings,
) -> None:
    """`_pending` through Bulk API 2.0 ingest jobs, a page of records each, into `_tried`."""
    work.mkdir(parents=True, exist_ok=True)
    key = "Id" if row.key == "Id" else row.key
    columns = ", ".join(f"{expr} AS {identifier(name)}" for name, expr in _values(row, "#N/A"))
    pages = con.execute(
        f"SELECT DISTINCT pos // {settings.bulk_page_rows} AS page FROM _pending ORDER BY 1"
    ).fetchall()
    for (page,) in pages:
        path = work / f"page-{page}.csv"
        con.execute(f"""
            COPY (SELECT "key" AS {identifier(key)}, {columns} FROM _pending
                  WHERE pos // {settings.bulk_page_rows} = {int(page)} ORDER BY pos)
            TO {literal(str(path))} (HEADER, FORCE_QUOTE *)
        """)
        in_page = (
            f'SELECT pos, "key" FROM _pending WHERE pos // {settings.bulk_page_rows} = {int(page)}'
        )
        try:
            job = client.bulk_ingest(
                row.object,
                path,
                work / f"results-{page}",
                external_id=None if row.key == "Id" else row.key,
                poll_seconds=settings.poll_seconds,
            )
        except SalesforceExtractError as exc:  # BulkJobFailed included: the page fails
            _fail(con, f"SELECT pos FROM ({in_page})", exc)
            continue
        failed = _read_results(con, job.failed_file, key, "sf__Error")
        unprocessed = _read_results(con, job.unprocessed_file, key, None)
        con.execute(f"""
            INSERT INTO _tried
            SELECT p.pos,
                f."key" IS NULL AND u."key" IS NULL,
                CASE WHEN f."key" IS NOT NULL THEN split_part(f.error, ':', 1)
                     WHEN u."key" IS NOT NULL THEN 'UNPROCESSED' END,
                CASE WHEN f."key" IS NOT NULL
                         THEN coalesce(nullif(regexp_extract(f.error,
                             '^[A-Z_]+:(.*):[^:]*-- *$', 1), ''), f.error)
                     WHEN u."key" IS NOT NULL THEN 'the job ended before it processed the record'
                END
            FROM ({in_page}) p
            LEFT JOIN ({failed}) f ON f."key" = p."key"
            LEFT JOIN ({unprocessed}) u ON u."key" = p."key"
        """)


def _read_results(con: duckdb.DuckDBPyConnection, path: Path, key: str, error: str | None) -> str:
    """A results file as (key, error) rows; nothing when Salesforce sent no rows."""
    empty = 'SELECT NULL::VARCHAR AS "key", NULL::VARCHAR AS error WHERE false'
    with path.open(encoding="utf-8") as lines:
        if sum(1 for _ in zip(range(2), lines, strict=False)) < 2:
            return empty
    source = f"read_csv({literal(str(path))}, header = true, all_varchar = true)"
    message = identifier(error) if error else "NULL"
    return f'SELECT {identifier(key)} AS "key", {message} AS error FROM {source}'


def _fail(con: duckdb.DuckDBPyConnection, positions: str, exc: Exception) -> None:
    """Every record `positions` (a query of `pos`) selects fails with `exc`."""
    code = getattr(exc, "error_code", None) or type(exc).__name__
    con.execute(f"INSERT INTO _tried SELECT pos, false, ?, ? FROM ({positions})", [code, str(exc)])
