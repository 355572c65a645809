"""The refresh of one object: what the daily windows missed, written to its `_refresh` partition."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from pipeline.extract.refresh import REFRESH, refresh_object
from pipeline.extract.run import ExtractSettings, extract, raw_table
from pipeline.sandbox.server import RunningSandbox
from pipeline.warehouse import Warehouse
from tests.conftest import StartSandbox
from tests.extract.conftest import client_for
from tests.extract.test_run import ORDER_ITEM

SETTINGS = ExtractSettings(rest_threshold=10**9)
HISTORY_DAYS = 8


def _days(n: int) -> list[str]:
    today = dt.datetime.now(dt.UTC).date()
    return [(today - dt.timedelta(days=d)).isoformat() for d in range(n, 0, -1)]


@dataclass
class Org:
    sandbox: RunningSandbox
    warehouse: Warehouse

    def sql(self, statement: str, params: list[object] | None = None) -> list[tuple]:
        return self.sandbox.salesforce.org.db.cursor().execute(statement, params or []).fetchall()

    def refresh(self):
        return refresh_object(client_for(self.sandbox), self.warehouse, ORDER_ITEM, SETTINGS)

    def latest(self, record_id: str) -> tuple:
        return (
            self.warehouse.connect()
            .execute(
                'SELECT "UnitPrice", "IsDeleted", _partition FROM raw.order_item WHERE "Id" = ?',
                [record_id],
            )
            .fetchone()
        )

    def live_item(self) -> str:
        return self.sql('SELECT "Id" FROM org."OrderItem" WHERE NOT "IsDeleted" ORDER BY "Id"')[0][
            0
        ]


@pytest.fixture
def org(start_sandbox: StartSandbox, tmp_path) -> Iterator[Org]:
    """An 8-day org whose every day is extracted."""
    with start_sandbox(accounts=5, history_days=HISTORY_DAYS) as sandbox:
        warehouse = Warehouse(tmp_path / "warehouse")
        extract(client_for(sandbox), warehouse, ORDER_ITEM, _days(HISTORY_DAYS + 1), SETTINGS)
        yield Org(sandbox, warehouse)


def test_nothing_changed_finds_nothing_and_leaves_an_empty_refresh_partition(org):
    found = org.refresh()
    assert found.live > 0 and (found.changed, found.gone, found.unknown) == (0, 0, 0)
    assert org.warehouse.partition_path(raw_table(ORDER_ITEM), REFRESH).is_file()


def test_a_value_changed_without_a_stamp_is_a_new_version_of_its_record(org):
    record = org.live_item()
    org.sql('UPDATE org."OrderItem" SET "UnitPrice" = 4321.5 WHERE "Id" = ?', [record])
    found = org.refresh()
    assert (found.changed, found.gone) == (1, 0)
    assert org.latest(record) == (4321.5, False, REFRESH)


def test_a_purged_record_becomes_a_tombstone(org):
    record = org.live_item()
    org.sql('DELETE FROM org."OrderItem" WHERE "Id" = ?', [record])
    found = org.refresh()
    assert (found.changed, found.gone) == (0, 1)
    assert org.latest(record)[1:] == (True, REFRESH)


def test_what_a_refresh_found_is_not_found_again(org):
    record = org.live_item()
    org.sql('UPDATE org."OrderItem" SET "UnitPrice" = 4321.5 WHERE "Id" = ?', [record])
    org.refresh()
    again = org.refresh()
    assert (again.changed, again.gone) == (0, 0)
    assert org.latest(record) == (4321.5, False, REFRESH)


def test_a_tombstone_outlives_the_re_extract_of_its_record_s_day(org):
    record = org.live_item()
    org.sql('DELETE FROM org."OrderItem" WHERE "Id" = ?', [record])
    org.refresh()
    extract(client_for(org.sandbox), org.warehouse, ORDER_ITEM, _days(HISTORY_DAYS + 1), SETTINGS)
    assert org.latest(record)[1:] == (True, REFRESH)


def test_records_the_warehouse_never_held_are_counted_not_staged(start_sandbox, tmp_path):
    with start_sandbox(accounts=5, history_days=HISTORY_DAYS) as sandbox:
        warehouse = Warehouse(tmp_path / "warehouse")
        extract(client_for(sandbox), warehouse, ORDER_ITEM, _days(1), SETTINGS)
        found = refresh_object(client_for(sandbox), warehouse, ORDER_ITEM, SETTINGS)
    assert found.unknown > 0 and found.changed == 0


def test_a_refreshed_version_a_later_extract_superseded_is_dropped(org):
    record = org.live_item()
    org.sql('UPDATE org."OrderItem" SET "UnitPrice" = 4321.5 WHERE "Id" = ?', [record])
    org.refresh()
    extract(client_for(org.sandbox), org.warehouse, ORDER_ITEM, _days(HISTORY_DAYS + 1), SETTINGS)
    org.refresh()
    held = org.warehouse.partition_path(raw_table(ORDER_ITEM), REFRESH)
    rows = (
        org.warehouse.connect()
        .execute('SELECT count(*) FROM read_parquet(?) WHERE "Id" = ?', [str(held), record])
        .fetchone()
    )
    assert rows == (0,)
    assert org.latest(record)[0] == 4321.5
