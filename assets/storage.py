"""Dagster's SQLite event log, writing a range step's asset events in one transaction.

A step over a range of partitions reports one materialization per partition. Dagster's
`SqliteEventLogStorage` stores each in transactions of its own, on two databases (the run's and
the cross-run index), opening a fresh connection for each: about 10 ms an event, so a backfill
of three years over 22 assets spent minutes on bookkeeping alone. Dagster hands such events to
`store_event_batch` when `DAGSTER_EVENT_BATCH_SIZE` is set, and its SQLite storage then stores
them one by one all the same; this storage writes the batch in one statement per database and
table, with the same rows (the run's event log, the index's event log, asset event tags and the
asset key's latest record) that storing them one by one leaves.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from dagster._core.events import ASSET_EVENTS
from dagster._core.events.log import EventLogEntry
from dagster._core.storage.event_log import SqliteEventLogStorage
from dagster._core.storage.event_log.schema import SqlEventLogStorageTable
from dagster._serdes import ConfigurableClassData


class BatchedSqliteEventLogStorage(SqliteEventLogStorage):
    """`SqliteEventLogStorage` (same files, same rows) with `store_event_batch` in one
    transaction per database."""

    @classmethod
    def from_config_value(
        cls, inst_data: ConfigurableClassData | None, config_value: Mapping[str, Any]
    ) -> BatchedSqliteEventLogStorage:
        return cls(inst_data=inst_data, **config_value)

    def store_event_batch(self, events: Sequence[EventLogEntry]) -> None:
        # Dagster batches only asset events of one step; anything else goes the usual way.
        runs = {event.run_id for event in events}
        if len(runs) != 1 or not all(
            event.is_dagster_event and event.dagster_event_type in ASSET_EVENTS for event in events
        ):
            super().store_event_batch(events)
            return
        (run_id,) = runs
        rows = [self._event_to_row(event) for event in events]  # each event serialized once
        with self.run_connection(run_id) as conn:
            conn.execute(SqlEventLogStorageTable.insert(), rows)
        with self.index_transaction() as conn:
            inserted = conn.execute(
                SqlEventLogStorageTable.insert().returning(
                    SqlEventLogStorageTable.c.id, sort_by_parameter_order=True
                ),
                rows,
            )
            ids = [int(row[0]) for row in inserted]
            self._store_asset_event_tags(conn, events, ids)
            # An asset's row holds its latest event: the batch's last for each asset is what
            # storing them one by one leaves there.
            latest = {
                event.get_dagster_event().asset_key: (event, event_id)
                for event, event_id in zip(events, ids, strict=True)
            }
            for event, event_id in latest.values():
                self._store_asset_event(conn, event, event_id)
