"""`load.writeback`: every status write-back attempt, per record, and what it says next time.

One row per record a run tried to write (or deferred): the outcome it carried and what came of
it (`written`, `failed` with Salesforce's error, `deferred`). A record is written again only
when its outcome differs from the one last *written*, so a failed or deferred write is tried
by every run until it lands, and a night with no change writes nothing.
"""

from __future__ import annotations

import datetime as dt

import duckdb

from pipeline.warehouse import Table, Warehouse
from pipeline.warehouse.sql import no_rows

WRITEBACK = Table("load", "writeback")
COLUMNS = (
    'run_id VARCHAR, "at" TIMESTAMP, source_object VARCHAR, source_id VARCHAR, '
    "status VARCHAR, message VARCHAR, m3ter_id VARCHAR, synced_at TIMESTAMP, "
    "result VARCHAR, error VARCHAR"
)


def writeback_began(warehouse: Warehouse) -> dt.datetime | None:
    """When the first write-back started writing (less a minute of clock skew between this
    machine and Salesforce's stamps), or None if none has."""
    if not warehouse.partitions(WRITEBACK):
        return None
    con = warehouse.connect()
    try:
        (first,) = con.execute(f'SELECT min("at") FROM {WRITEBACK.sql}').fetchone() or (None,)
    finally:
        con.close()
    if first is None:
        return None
    return first.replace(tzinfo=dt.UTC) - dt.timedelta(minutes=1)


def last_written_sql(warehouse: Warehouse) -> str:
    """The outcome last written to each record."""
    if not warehouse.partitions(WRITEBACK):
        return no_rows(COLUMNS)
    return f"""SELECT * FROM {WRITEBACK.sql} WHERE result = 'written'
        QUALIFY row_number() OVER (PARTITION BY source_object, source_id ORDER BY "at" DESC) = 1"""


def write_attempts(
    warehouse: Warehouse, con: duckdb.DuckDBPyConnection, run_id: str, table: str
) -> None:
    """Journal `table`'s rows (the columns of `COLUMNS`) as one partition of this run."""
    warehouse.write_partition(con, WRITEBACK, run_id, f"SELECT * FROM {table}")
