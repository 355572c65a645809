"""Extract one Salesforce object for a range of daily partitions (or whole) into its raw table."""

from __future__ import annotations

import datetime as dt
import shutil
import time
import uuid
from collections.abc import Callable, Collection, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import duckdb

from pipeline.extract.errors import ExtractError, FieldNotFound
from pipeline.extract.objects import SourceObject
from pipeline.extract.pages import PageStager, partition_summary, write_groups
from pipeline.extract.plan import STAMP, FieldPlan, plan_fields
from pipeline.extract.window import WHOLE, Slice, Window, select_clause, slice_query, window_query
from pipeline.salesforce.client import SalesforceClient
from pipeline.salesforce.errors import QueryTimeout
from pipeline.salesforce.ids import is_valid_id
from pipeline.warehouse import Table, Warehouse
from pipeline.warehouse.sql import identifier, literal


@dataclass(frozen=True)
class ExtractSettings:
    overlap: dt.timedelta = dt.timedelta(minutes=10)
    # Windows with at most this many rows go through REST `queryAll`: a bulk job's polling
    # costs more than a few REST pages.
    rest_threshold: int = 10_000
    # Stop before the org's remaining daily API requests fall below this.
    quota_floor: int = 1_000
    bulk_page_size: int = 100_000
    # First status poll of a bulk job; later polls back off (simple-salesforce's schedule).
    bulk_poll_seconds: float = 0.2
    # DuckDB's working memory (MB) while typing and writing a window, so that a year of rows
    # needs little more memory than a day of them; doubled (twice at most) if a write needs more.
    memory_mb: int = 128
    # Partition files are written from the staged pages a run of consecutive partitions at a
    # time, each run holding at most this many rows and partitions (a bigger partition is a run
    # of its own): DuckDB keeps a run's small partitions in memory until the run is written, so
    # these bound the memory a window of any length needs. Each run is a COPY of its own.
    publish_rows: int = 50_000
    publish_partitions: int = 128
    # A window whose query times out (QUERY_TIMEOUT) is asked again in halves, then their
    # halves, up to this many queries in all.
    max_queries: int = 256
    # A window whose COUNT() is past this many rows is asked in halves before any of its rows
    # are: a mass re-stamp puts a whole object into one day, and one job over all of it is the
    # query most likely to time out, after minutes and a bulk job spent. [assume] Salesforce
    # documents no row count at which a query times out; a few million non-selective rows is
    # where bulk queries are reported to, so two million rows a query keeps clear of it.
    max_window_rows: int = 2_000_000


@dataclass(frozen=True)
class ExtractResult:
    sobject: str
    table: str
    method: str  # "bulk" | "rest"
    rows_by_partition: dict[str, int]
    deleted: int
    api_calls: int
    bulk_jobs: int
    bytes: int
    seconds: float
    columns: list[str] = field(default_factory=list)
    queries: int = 1  # more than one when timed-out queries were asked again in halves

    @property
    def rows(self) -> int:
        return sum(self.rows_by_partition.values())


def raw_table(source: SourceObject) -> Table:
    """Raw tables show one row per record: the latest version seen in any partition."""
    return Table(
        "raw", source.table, latest_by=("Id",), order_by=("_version_stamp", "_extracted_at")
    )


def plan_all(
    client: SalesforceClient,
    sources: Iterable[SourceObject],
    fields: Callable[[str], Sequence[str]] = lambda sobject: (),
    written_back: Collection[str] = (),
    written_since: dt.datetime | None = None,
) -> dict[str, FieldPlan]:
    """Every object's field plan, checked against describe; one error listing every problem.

    `fields(sobject)` adds what the mappings read of each object; `written_back` names the
    objects whose sync status this run's integration user has written back since
    `written_since` (None: never).
    """
    plans: dict[str, FieldPlan] = {}
    problems: list[str] = []
    writer = client.user_id() if written_back and written_since else None
    if writer is not None and not is_valid_id(writer):
        raise ExtractError(f"the integration user's Id {writer!r} is not a Salesforce Id")
    for source in sources:
        try:
            plans[source.name] = plan_fields(
                source,
                client.describe,
                fields(source.name),
                writer=writer,
                written_back=written_back,
                written_since=written_since,
            )
        except FieldNotFound as exc:
            problems.append(str(exc))
    if problems:
        raise ExtractError("\n".join(problems))
    return plans


def extract(
    client: SalesforceClient,
    warehouse: Warehouse,
    source: SourceObject,
    partitions: Sequence[str] | None,
    settings: ExtractSettings = ExtractSettings(),
    plan: FieldPlan | None = None,
) -> ExtractResult:
    """Download the window's rows, then publish each partition file; nothing is published early.

    `partitions` are consecutive daily keys (`None` for objects read whole). The download lands in
    a private work directory, where each page is typed into a staged Parquet file while the next
    one downloads; only when every page is on disk and typed do the partition files replace
    their previous versions, one atomic rename each.
    """
    started = time.monotonic()
    before = client.spent()
    plan = plan or plan_fields(source, client.describe)
    client.ensure_quota(settings.quota_floor)
    window = Window.for_partitions(partitions) if partitions else None
    soql = window_query(plan, window, settings.overlap) if window else select_clause(plan)
    work = warehouse.root / "tmp" / f"{source.table}-{uuid.uuid4().hex}"
    work.mkdir(parents=True)
    try:
        stager = PageStager(
            plan,
            window=window,
            overlap=settings.overlap,
            extracted_at=dt.datetime.now(dt.UTC),
            directory=work / "staged",
            memory_mb=settings.memory_mb,
        )
        try:
            method, files, queries = _download(
                client, plan, source, soql, window, work, settings, stager
            )
            staged = stager.staged(files)
        finally:
            stager.close()
        keys = window.partitions if window else [WHOLE]
        rows, deleted = _publish(
            warehouse, source, plan, staged, keys, work, settings, sliced=queries > 1
        )
    finally:
        shutil.rmtree(work, ignore_errors=True)
    spent = client.spent() - before
    return ExtractResult(
        sobject=source.name,
        table=raw_table(source).qualified,
        method=method,
        rows_by_partition=rows,
        deleted=deleted,
        api_calls=spent.api_calls,
        bulk_jobs=spent.bulk_jobs,
        bytes=spent.bytes_downloaded,
        seconds=time.monotonic() - started,
        columns=[c.path for c in plan.columns],
        queries=queries,
    )


def _download(
    client: SalesforceClient,
    plan: FieldPlan,
    source: SourceObject,
    soql: str,
    window: Window | None,
    work: Path,
    settings: ExtractSettings,
    stager: PageStager,
) -> tuple[str, list[Path], int]:
    """Every page of the window, each submitted to `stager`: the method (`bulk` if any query
    went through a bulk job), the pages, and how many queries the window took (more than one
    when a query timed out and its slice was asked again in halves)."""
    # Custom metadata is not bulk-queryable and has no recycle bin: REST `query` only.
    if source.custom_metadata:
        path = work / "records.json"
        client.query_all_to_file(soql, path, include_deleted=False)
        stager.submit(path, "json")
        return "rest", [path], 1
    if window is None:
        method, files = download_query(client, plan, soql, work, settings, stager)
        return method, files, 1
    # Each slice with the most rows it may hold unsplit (None: however many it holds).
    pending: list[tuple[Slice, int | None]] = [
        (Slice.of(window, settings.overlap), settings.max_window_rows)
    ]
    done: list[tuple[str, list[Path]]] = []
    asked = 0
    while pending:
        part, most = pending.pop()
        asked += 1
        directory = work / f"slice-{asked}"
        soql = slice_query(plan, part)
        try:
            done.append(
                download_query(client, plan, soql, directory, settings, stager, most_rows=most)
            )
        except (QueryTimeout, _TooManyRows) as exc:
            # No half holding an Id is no half at all: the slice is read or fails as it is.
            halves = part.halves(lambda bounds: _id_bounds(client, plan, bounds)) or None
            full = halves is None or asked + len(pending) + len(halves) > settings.max_queries
            if full and isinstance(exc, _TooManyRows):
                # No more halving: this slice and those waiting are read as they are.
                pending = [(p, None) for p, _ in pending] + [(part, None)]
                continue
            if full:
                raise QueryTimeout(
                    f"{source.name}: the window {window.partitions[0]}..{window.partitions[-1]} "
                    f"still timed out after {asked} queries, each narrower ({exc})",
                    status=exc.status,
                    error_code=exc.error_code,
                ) from exc
            assert halves is not None
            pending.extend((half, most) for half in reversed(halves))
    method = "bulk" if any(m == "bulk" for m, _ in done) else "rest"
    return method, [f for _, files in done for f in files], asked


class _TooManyRows(Exception):
    """A slice's COUNT() past `ExtractSettings.max_window_rows`: ask it in halves."""


def _id_bounds(
    client: SalesforceClient, plan: FieldPlan, bounds: tuple[str, str] | None
) -> tuple[str, str] | None:
    """The object's first and last Id in `[bounds)` (all of them for None; deleted records
    included): two selective queries, each served by the primary key's index."""
    where = "" if bounds is None else f" WHERE Id >= '{bounds[0]}' AND Id < '{bounds[1]}'"
    ends = []
    for order in ("ASC", "DESC"):
        records = client.query_records(
            f"SELECT Id FROM {plan.sobject}{where} ORDER BY Id {order} LIMIT 1",
            include_deleted=plan.soft_delete,
        )
        if not records:
            return None
        ends.append(str(records[0]["Id"])[:15])
    return ends[0], ends[1]


def download_query(
    client: SalesforceClient,
    plan: FieldPlan,
    soql: str,
    directory: Path,
    settings: ExtractSettings,
    stager: PageStager,
    *,
    live: bool = False,
    most_rows: int | None = None,
) -> tuple[str, list[Path]]:
    """One query's pages, each submitted to `stager`: REST for a few rows, else a Bulk API 2.0
    job; `queryAll` (deleted records too) unless `live`. Past `most_rows`, nothing is read
    (`_TooManyRows`)."""
    directory.mkdir(parents=True, exist_ok=True)
    include_deleted = plan.soft_delete and not live
    expected = client.count(soql)
    if most_rows is not None and expected > most_rows:
        raise _TooManyRows(expected)
    if expected <= settings.rest_threshold:
        path = directory / "records.json"
        client.query_all_to_file(soql, path, include_deleted=include_deleted)
        stager.submit(path, "json")
        return "rest", [path]
    files = client.bulk_query_to_files(
        soql,
        directory,
        include_deleted=include_deleted,
        page_size=settings.bulk_page_size,
        poll_seconds=settings.bulk_poll_seconds,
        on_page=lambda page: stager.submit(page, "csv"),
    )
    return "bulk", files


def _one_row_per_record(con: duckdb.DuckDBPyConnection, staged: Sequence[Path], work: Path) -> Path:
    """The staged rows of a window asked in slices, once per record: a record whose own and
    parent stamps fell in different slices came in each; the latest stamp wins."""
    target = work / "one-per-record.parquet"
    con.execute(
        f"""COPY (SELECT * FROM read_parquet(?) QUALIFY row_number() OVER (
                PARTITION BY "Id" ORDER BY "{STAMP}" DESC) = 1 ORDER BY _partition)
            TO {literal(str(target))} (FORMAT parquet)""",
        [[str(p) for p in staged]],
    )
    return target


def _kept(
    con: duckdb.DuckDBPyConnection,
    warehouse: Warehouse,
    table: Table,
    pages: Sequence[Path],
    keys: Sequence[str],
    work: Path,
) -> list[Path]:
    """The rows of the partitions being replaced that this read did not return and no later
    partition holds, as one file (none if there are none).

    m3sync's write-back moves a record's stamp (and, through the parent terms, its children's)
    while changing nothing the mappings read, and the windows skip it (`FieldPlan.written`): a
    day read again would lose such a record, since no window returns it any more. Its version
    stays where it was instead. A record whose change some later day holds is not kept.
    """
    replaced = [warehouse.partition_path(table, k) for k in keys]
    old = [str(p) for p in replaced if p.is_file()]
    if not old:
        return []
    others = [
        str(path)
        for path in (warehouse.partition_path(table, k) for k in warehouse.partitions(table))
        if path.is_file() and path.stem not in set(keys)
    ]
    new = [str(p) for p in pages]
    columns = [
        row[0]
        for row in con.execute(
            "DESCRIBE SELECT * FROM read_parquet(?, union_by_name = true)", [new or old]
        ).fetchall()
    ]
    held = {
        row[0]
        for row in con.execute(
            "DESCRIBE SELECT * FROM read_parquet(?, union_by_name = true)", [old]
        ).fetchall()
    }
    select = ", ".join(identifier(c) if c in held else f"NULL AS {identifier(c)}" for c in columns)
    returned = 'SELECT "Id" FROM read_parquet(?)' if new else 'SELECT NULL AS "Id" WHERE false'
    later = (
        'SELECT "Id", _partition FROM read_parquet(?, union_by_name = true)'
        if others
        else 'SELECT NULL AS "Id", NULL AS _partition WHERE false'
    )
    target = work / "kept.parquet"
    params: list[object] = [old, *([new] if new else []), *([others] if others else [])]
    (count,) = con.execute(
        f"""COPY (SELECT {select} FROM read_parquet(?, union_by_name = true) o
                  WHERE o."Id" NOT IN ({returned})
                    AND NOT EXISTS (SELECT 1 FROM ({later}) l
                                    WHERE l."Id" = o."Id" AND l._partition > o._partition))
            TO {literal(str(target))} (FORMAT parquet)""",
        params,
    ).fetchone() or (0,)
    return [target] if count else []


def _publish(
    warehouse: Warehouse,
    source: SourceObject,
    plan: FieldPlan,
    staged: Sequence[Path],
    keys: Sequence[str],
    work: Path,
    settings: ExtractSettings,
    *,
    sliced: bool = False,
) -> tuple[dict[str, int], int]:
    """Write the window's partitions from the staged pages, a run of partitions at a time, under
    a memory limit that is raised only when DuckDB must; return the rows per partition and how
    many of them are deleted (counted from the staged rows, which are exactly the rows written).
    A `sliced` window's rows are first made one per record.
    """
    for attempt in range(3):
        con = duckdb.connect(
            config={
                "memory_limit": f"{settings.memory_mb << attempt}MB",
                "temp_directory": str(work / "spill"),
                "preserve_insertion_order": False,
                # A partition with this many rows in memory is flushed to its file as a row
                # group, so a run of one big partition need not hold all of it; smaller ones
                # wait for the end of their run's COPY.
                "partitioned_write_flush_threshold": 4096,
            }
        )
        try:
            con.execute("SET TimeZone = 'UTC'")
            pages = [_one_row_per_record(con, staged, work)] if sliced else list(staged)
            if plan.written:
                pages += _kept(con, warehouse, raw_table(source), pages, keys, work)
            summary = partition_summary(con, pages, plan.soft_delete)
            groups = write_groups(
                pages, summary, settings.publish_rows, settings.publish_partitions
            )
            rows = warehouse.write_partition_groups(
                con, raw_table(source), groups, "_partition", cover=keys
            )
            return rows, sum(gone for _, _, gone in summary)
        except duckdb.OutOfMemoryException:
            if attempt == 2:
                raise
        finally:
            con.close()
    raise AssertionError("unreachable")
