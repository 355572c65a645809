"""The refresh of one object: what the daily windows missed, written to its `_refresh` partition."""

from __future__ import annotations

from pipeline.extract.refresh import REFRESH, refresh_object
from pipeline.extract.run import extract, raw_table
from pipeline.warehouse import Warehouse
from tests.extract.conftest import HISTORY_DAYS, ORDER_ITEM, REST, ExtractedOrg, client_for, days


def _refresh(org: ExtractedOrg):
    return refresh_object(client_for(org.sandbox), org.warehouse, ORDER_ITEM, REST)


def test_nothing_changed_finds_nothing_and_records_an_empty_refresh_partition(org):
    found = _refresh(org)
    assert found.live > 0 and (found.changed, found.gone, found.unknown) == (0, 0, 0)
    assert REFRESH in org.warehouse.partitions(raw_table(ORDER_ITEM))
    assert not org.warehouse.partition_path(raw_table(ORDER_ITEM), REFRESH).exists()


def test_a_value_changed_without_a_stamp_is_a_new_version_of_its_record(org):
    record = org.live_item()
    org.sql('UPDATE org."OrderItem" SET "UnitPrice" = 4321.5 WHERE "Id" = ?', [record])
    found = _refresh(org)
    assert (found.changed, found.gone) == (1, 0)
    assert org.latest(record) == (4321.5, False, REFRESH)


def test_a_purged_record_becomes_a_tombstone(org):
    record = org.live_item()
    org.sql('DELETE FROM org."OrderItem" WHERE "Id" = ?', [record])
    found = _refresh(org)
    assert (found.changed, found.gone) == (0, 1)
    assert org.latest(record)[1:] == (True, REFRESH)


def test_a_record_hard_deleted_through_the_bulk_api_becomes_a_tombstone(org):
    record = org.live_item()
    done = client_for(org.sandbox).salesforce.bulk2.OrderItem.hard_delete(
        records=[{"Id": record}], wait=0.05
    )
    assert done[0]["numberRecordsProcessed"] == 1 and done[0]["numberRecordsFailed"] == 0
    assert org.sql('SELECT 1 FROM org."OrderItem" WHERE "Id" = ?', [record]) == []
    found = _refresh(org)
    assert (found.changed, found.gone) == (0, 1)
    assert org.latest(record)[1:] == (True, REFRESH)


def test_what_a_refresh_found_is_not_found_again(org):
    record = org.live_item()
    org.sql('UPDATE org."OrderItem" SET "UnitPrice" = 4321.5 WHERE "Id" = ?', [record])
    _refresh(org)
    again = _refresh(org)
    assert (again.changed, again.gone) == (0, 0)
    assert org.latest(record) == (4321.5, False, REFRESH)


def test_a_tombstone_outlives_the_re_extract_of_its_record_s_day(org):
    record = org.live_item()
    org.sql('DELETE FROM org."OrderItem" WHERE "Id" = ?', [record])
    _refresh(org)
    org.extract_all()
    assert org.latest(record)[1:] == (True, REFRESH)


def test_a_record_that_appeared_on_a_day_already_extracted_is_staged(org):
    record = org.late_copy(org.live_item())
    found = _refresh(org)
    assert (found.missed, found.changed, found.unknown) == (1, 0, 0)
    assert org.latest(record)[1:] == (False, REFRESH)


def test_records_the_warehouse_never_held_are_counted_not_staged(start_sandbox, tmp_path):
    with start_sandbox(accounts=5, history_days=HISTORY_DAYS) as sandbox:
        warehouse = Warehouse(tmp_path / "warehouse")
        extract(client_for(sandbox), warehouse, ORDER_ITEM, days(1), REST)
        found = refresh_object(client_for(sandbox), warehouse, ORDER_ITEM, REST)
    assert found.unknown > 0 and (found.changed, found.missed) == (0, 0)


def test_a_refreshed_version_a_later_extract_superseded_is_dropped(org):
    record = org.live_item()
    org.sql('UPDATE org."OrderItem" SET "UnitPrice" = 4321.5 WHERE "Id" = ?', [record])
    _refresh(org)
    org.extract_all()
    _refresh(org)
    held = org.warehouse.partition_path(raw_table(ORDER_ITEM), REFRESH)
    if held.exists():  # a refresh that keeps no row leaves no file
        rows = (
            org.warehouse.connect()
            .execute('SELECT count(*) FROM read_parquet(?) WHERE "Id" = ?', [str(held), record])
            .fetchone()
        )
        assert rows == (0,)
    assert org.latest(record)[0] == 4321.5
