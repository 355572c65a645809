"""Downloaded pages typed into Parquet one at a time, while the next page downloads.

Each result page becomes a Parquet file of typed raw rows (`raw_rows_sql` over that page alone,
sorted by partition) in a background thread with a DuckDB connection of its own: DuckDB never
holds more than one page, and the typing of page n overlaps the download of page n+1 (the client
mostly waits on the network meanwhile). Publishing then writes the partition files from the
staged pages a run of partitions at a time (`write_groups`), so the memory an extract needs does
not grow with the length of its window.
"""

from __future__ import annotations

import datetime as dt
import itertools
from collections.abc import Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

import duckdb

from pipeline.extract.load import raw_rows_sql
from pipeline.extract.plan import FieldPlan
from pipeline.extract.window import Window
from pipeline.warehouse.sql import literal

# Rows per Parquet row group of a staged page: the writer buffers one group at a time, and a
# page is sorted by partition, so a run of partitions reads only the groups that hold it.
STAGE_ROW_GROUP = 8_192


class PageStager:
    """Stages pages in the order they are given; the latest submission of a page's path wins.

    A bulk job that failed and ran again delivers its pages again from the first, under the same
    paths: an earlier submission of a path is then superseded, and its result (or its failure,
    say because its file was removed under it) is never used.
    """

    def __init__(
        self,
        plan: FieldPlan,
        *,
        window: Window | None,
        overlap: dt.timedelta,
        extracted_at: dt.datetime,
        directory: Path,
        memory_mb: int,
    ) -> None:
        self.plan = plan
        self.window = window
        self.overlap = overlap
        self.extracted_at = extracted_at
        self.directory = directory
        self.memory_mb = self._memory_mb = memory_mb
        directory.mkdir(parents=True, exist_ok=True)
        # One thread: the other core serves (or, against a real org, waits on) the download.
        self._con = duckdb.connect(
            config={
                "threads": 1,
                "memory_limit": f"{memory_mb}MB",
                "temp_directory": str(directory / "spill"),
                "preserve_insertion_order": False,
            }
        )
        self._con.execute("SET TimeZone = 'UTC'")
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="stage-pages")
        self._latest: dict[str, Future[Path]] = {}
        self._serial = itertools.count()

    def submit(self, page: Path, fmt: str) -> None:
        """Queue `page` (a `csv` or `json` results file) for staging."""
        target = self.directory / f"{page.stem}-{next(self._serial):05d}.parquet"
        self._latest[str(page)] = self._executor.submit(self._stage, page, fmt, target)

    def staged(self, pages: Sequence[Path]) -> list[Path]:
        """The staged file of each of `pages` (each submitted); raises what typing a page
        raised."""
        return [self._latest[str(page)].result() for page in pages]

    def close(self) -> None:
        """Drop queued pages, stop the running one, and release the connection."""
        for future in self._latest.values():
            future.cancel()
        self._con.interrupt()
        self._executor.shutdown(wait=True)
        self._con.close()

    def _stage(self, page: Path, fmt: str, target: Path) -> Path:
        sql, params = raw_rows_sql(
            self.plan,
            [page],
            fmt,
            window=self.window,
            overlap=self.overlap,
            extracted_at=self.extracted_at,
        )
        # As in publishing: the memory limit is doubled (twice at most) if a page needs more,
        # and stays raised for the pages after it.
        while True:
            try:
                self._con.execute(
                    f"COPY (SELECT * FROM ({sql}) ORDER BY _partition) TO "
                    f"{literal(str(target))} (FORMAT parquet, ROW_GROUP_SIZE {STAGE_ROW_GROUP})",
                    params,
                )
                return target
            except duckdb.OutOfMemoryException:
                if self._memory_mb >= self.memory_mb << 2:
                    raise
                self._memory_mb <<= 1
                self._con.execute(f"SET memory_limit = '{self._memory_mb}MB'")


def partition_summary(
    con: duckdb.DuckDBPyConnection, staged: Sequence[Path], soft_delete: bool
) -> list[tuple[str | None, int, int]]:
    """(partition, rows, deleted rows) of the staged rows, in DuckDB's order of the keys."""
    deleted = 'count(*) FILTER (WHERE "IsDeleted")' if soft_delete else "0"
    return [
        (key, int(rows), int(gone))
        for key, rows, gone in con.execute(
            f"SELECT _partition, count(*), {deleted} FROM read_parquet(?) "
            "GROUP BY _partition ORDER BY _partition NULLS LAST",
            [[str(path) for path in staged]],
        ).fetchall()
    ]


def write_groups(
    staged: Sequence[Path],
    summary: Sequence[tuple[str | None, int, int]],
    max_rows: int,
    max_partitions: int,
) -> list[tuple[str, list[object]]]:
    """Queries over the staged rows, each a run of at most `max_partitions` consecutive
    partitions holding at most `max_rows` rows (a bigger partition is a run of its own); one
    query when there is no row at all.

    Rows without a partition get a query of their own, so the writer sees and refuses them.
    """
    files = [str(path) for path in staged]
    source = "SELECT * FROM read_parquet(?)"
    groups: list[tuple[str, list[object]]] = []
    keys = [(key, rows) for key, rows, _ in summary if key is not None]
    run: list[str] = []
    size = 0
    for key, rows in keys:
        if run and (size + rows > max_rows or len(run) >= max_partitions):
            groups.append((f"{source} WHERE _partition BETWEEN ? AND ?", [files, run[0], run[-1]]))
            run, size = [], 0
        run.append(key)
        size += rows
    if run:
        groups.append((f"{source} WHERE _partition BETWEEN ? AND ?", [files, run[0], run[-1]]))
    if any(key is None for key, _, _ in summary):
        groups.append((f"{source} WHERE _partition IS NULL", [files]))
    return groups or [(source, [files])]
