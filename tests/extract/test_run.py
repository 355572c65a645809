"""Extracting objects from the org sandbox into raw partitions, over real sockets."""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import replace

import duckdb
import pytest

from pipeline.extract.errors import ExtractError, FieldNotFound
from pipeline.extract.objects import SourceObject
from pipeline.extract.run import ExtractSettings, extract, plan_all, raw_table
from pipeline.extract.window import Window
from pipeline.salesforce.errors import QueryTimeout
from pipeline.warehouse import Warehouse
from tests.conftest import StartSandbox
from tests.extract.conftest import ORDER_ITEM, REST, YESTERDAY, client_for
from tests.shipped import mapped

BULK = ExtractSettings(rest_threshold=0, bulk_page_size=500)


def _raw(warehouse: Warehouse, table: str, partition: str | None = None) -> list[tuple]:
    con = warehouse.connect()
    where = f"WHERE _partition = '{partition}'" if partition else ""
    return con.execute(
        f'SELECT * EXCLUDE (_extracted_at) FROM raw.{table} {where} ORDER BY "Id"'
    ).fetchall()


# Each OrderItem's newest stamp: its own, its Order's, that Order's Account's, its Product's.
VERSIONS = """
    SELECT i."Id", o."AccountId",
           greatest(o."SystemModstamp", a."SystemModstamp", p."SystemModstamp") AS parents,
           greatest(i."SystemModstamp", o."SystemModstamp", a."SystemModstamp",
                    p."SystemModstamp") AS version
    FROM org."OrderItem" i
    LEFT JOIN org."Order" o ON i."OrderId" = o."Id"
    LEFT JOIN org."Account" a ON o."AccountId" = a."Id"
    LEFT JOIN org."Product2" p ON i."Product2Id" = p."Id"
"""


def _oracle_ids(sandbox, partition: str, overlap: dt.timedelta) -> set[str]:
    window = Window.for_partitions([partition])
    low = (window.start - overlap).replace(tzinfo=None)
    end = window.end.replace(tzinfo=None)
    rows = sandbox.salesforce.org.db.cursor().execute(
        f'SELECT "Id" FROM ({VERSIONS}) WHERE version >= ? AND version < ?', [low, end]
    )
    return {r[0] for r in rows.fetchall()}


def _items_with_parents_older_than(sandbox, stamp: dt.datetime, limit: int) -> list[str]:
    rows = sandbox.salesforce.org.db.cursor().execute(
        f'SELECT "Id" FROM ({VERSIONS}) WHERE parents < ? ORDER BY "Id" LIMIT ?', [stamp, limit]
    )
    return [r[0] for r in rows.fetchall()]


def test_a_partition_holds_every_row_whose_newest_stamp_is_in_the_window(
    sandbox, client, warehouse
):
    result = extract(client, warehouse, ORDER_ITEM, [YESTERDAY], BULK)
    ids = {row[0] for row in _raw(warehouse, "order_item", YESTERDAY)}
    assert ids == _oracle_ids(sandbox, YESTERDAY, BULK.overlap)
    assert result.rows_by_partition == {YESTERDAY: len(ids)} and len(ids) > 0


def test_bulk_and_rest_extracts_give_the_same_raw_rows(client, tmp_path):
    bulk, rest = Warehouse(tmp_path / "bulk"), Warehouse(tmp_path / "rest")
    assert extract(client, bulk, ORDER_ITEM, [YESTERDAY], BULK).method == "bulk"
    assert extract(client, rest, ORDER_ITEM, [YESTERDAY], REST).method == "rest"
    assert _raw(bulk, "order_item") == _raw(rest, "order_item")


def test_deleted_rows_come_along_flagged(client, warehouse):
    result = extract(client, warehouse, ORDER_ITEM, _last_days(30), BULK)
    deleted = (
        warehouse.connect()
        .execute('SELECT count(*) FROM raw.order_item WHERE "IsDeleted"')
        .fetchone()[0]
    )
    assert deleted == result.deleted > 0


def _last_days(n: int) -> list[str]:
    today = dt.datetime.now(dt.UTC).date()
    return [(today - dt.timedelta(days=d)).isoformat() for d in range(n, 0, -1)]


def test_a_range_run_writes_one_file_per_partition(client, warehouse):
    days = _last_days(5)
    result = extract(client, warehouse, ORDER_ITEM, days, BULK)
    assert list(result.rows_by_partition) == days
    assert warehouse.partitions(raw_table(ORDER_ITEM)) == days


def test_rerunning_a_partition_replaces_it(client, warehouse):
    first = extract(client, warehouse, ORDER_ITEM, [YESTERDAY], BULK)
    second = extract(client, warehouse, ORDER_ITEM, [YESTERDAY], BULK)
    assert second.rows == first.rows == len(_raw(warehouse, "order_item"))


def test_custom_metadata_is_read_whole_through_rest(client, warehouse):
    result = extract(
        client,
        warehouse,
        SourceObject("PricingMapping__mdt", partitioned=False, all_fields=True),
        None,
        BULK,
    )
    assert result.method == "rest" and result.bulk_jobs == 0
    assert result.rows_by_partition == {"_all": len(_raw(warehouse, "pricing_mapping_mdt"))}
    assert result.rows > 0


def test_reference_objects_are_read_whole(client, warehouse):
    result = extract(client, warehouse, mapped("Product2"), None, REST)
    assert result.rows_by_partition == {"_all": 12}


def test_a_hidden_field_fails_before_any_job_with_object_and_field(client, warehouse):
    hidden = SourceObject("OrderItem", ("Order.Account.Credit_Rating__c",))
    jobs_before = client.bulk_jobs
    with pytest.raises(
        FieldNotFound, match=re.escape("OrderItem: cannot select 'Order.Account.Credit_Rating__c'")
    ):
        extract(client, warehouse, hidden, [YESTERDAY], BULK)
    assert client.bulk_jobs == jobs_before


def test_plan_all_reports_every_problem_at_once(client):
    bad = [SourceObject("Account", ("Credit_Rating__c",)), SourceObject("Order", ("Nope__c",))]
    with pytest.raises(ExtractError) as failure:
        plan_all(client, bad)
    assert "Credit_Rating__c" in str(failure.value) and "Nope__c" in str(failure.value)


def test_metadata_counts_what_the_extract_spent(client, warehouse):
    result = extract(client, warehouse, ORDER_ITEM, [YESTERDAY], BULK)
    assert result.bulk_jobs == 1 and result.api_calls > 3 and result.bytes > 0


# ---- windows and late data, on a dedicated org we may change -------------------------------


def _mutate(sandbox, sql: str, params: list) -> None:
    sandbox.salesforce.org.db.cursor().execute(sql, params)


def _day_start(day: str) -> dt.datetime:
    return dt.datetime.fromisoformat(day)


def _age_parents(sandbox) -> None:
    """Move every Order, Account and Product2 change back to 2025, so only the test's count."""
    for table in ("Order", "Account", "Product2"):
        _mutate(
            sandbox,
            f'UPDATE org."{table}" SET "LastModifiedDate" = ?, "SystemModstamp" = ?',
            [dt.datetime(2025, 1, 1), dt.datetime(2025, 1, 1)],
        )


def test_equal_timestamps_at_midnight_land_in_the_day_they_start(
    start_sandbox: StartSandbox, tmp_path
):
    with start_sandbox(accounts=5) as sandbox:
        _age_parents(sandbox)
        client = client_for(sandbox)
        day = _last_days(2)[0]
        midnight = _day_start(_last_days(1)[0])
        ids = _items_with_parents_older_than(sandbox, midnight, 3)
        _mutate(
            sandbox,
            'UPDATE org."OrderItem" SET "SystemModstamp" = ? WHERE "Id" IN (?, ?, ?)',
            [midnight, *ids],
        )
        warehouse = Warehouse(tmp_path / "w")
        extract(client, warehouse, ORDER_ITEM, [day], BULK)
        extract(client, warehouse, ORDER_ITEM, [_last_days(1)[0]], BULK)
        earlier = {r[0] for r in _raw(warehouse, "order_item", day)}
        later = {r[0] for r in _raw(warehouse, "order_item", _last_days(1)[0])}
        assert set(ids) <= later and not set(ids) & earlier


def test_a_row_that_commits_late_is_caught_by_the_next_partition(
    start_sandbox: StartSandbox, tmp_path
):
    with start_sandbox(accounts=5) as sandbox:
        _age_parents(sandbox)
        client = client_for(sandbox)
        first, second = _last_days(2)
        warehouse = Warehouse(tmp_path / "w")
        extract(client, warehouse, ORDER_ITEM, [first], BULK)
        stamp = _day_start(second) - dt.timedelta(minutes=3)  # in `first`, committed after its run
        (late_id,) = _items_with_parents_older_than(sandbox, stamp, 1)
        _mutate(
            sandbox,
            'UPDATE org."OrderItem" SET "SystemModstamp" = ?, "Quantity" = 777 WHERE "Id" = ?',
            [stamp, late_id],
        )
        extract(client, warehouse, ORDER_ITEM, [second], BULK)
        row = (
            warehouse.connect()
            .execute('SELECT "Quantity", _partition FROM raw.order_item WHERE "Id" = ?', [late_id])
            .fetchall()
        )
        assert row == [(777.0, second)]


def test_the_raw_view_shows_a_record_once_at_its_newest_version(
    start_sandbox: StartSandbox, tmp_path
):
    with start_sandbox(accounts=5) as sandbox:
        _age_parents(sandbox)
        client = client_for(sandbox)
        first, second = _last_days(2)
        warehouse = Warehouse(tmp_path / "w")
        extract(client, warehouse, ORDER_ITEM, [first], BULK)
        record = _raw(warehouse, "order_item", first)[0][0]
        _mutate(
            sandbox,
            'UPDATE org."OrderItem" SET "SystemModstamp" = ?, "Quantity" = 5 WHERE "Id" = ?',
            [_day_start(second) + dt.timedelta(hours=2), record],
        )
        extract(client, warehouse, ORDER_ITEM, [second], BULK)
        con = warehouse.connect()
        assert con.execute(
            'SELECT "Quantity", _partition FROM raw.order_item WHERE "Id" = ?', [record]
        ).fetchall() == [(5.0, second)]
        files = [str(warehouse.partition_path(raw_table(ORDER_ITEM), d)) for d in (first, second)]
        assert con.execute(
            'SELECT count(*) FROM read_parquet(?) WHERE "Id" = ?', [files, record]
        ).fetchone() == (2,)


def test_a_parent_change_brings_its_children_into_the_partition(
    start_sandbox: StartSandbox, tmp_path
):
    with start_sandbox(accounts=5) as sandbox:
        _age_parents(sandbox)
        client = client_for(sandbox)
        day = _last_days(1)[0]
        db = sandbox.salesforce.org.db.cursor()
        changed = _day_start(day) + dt.timedelta(hours=5)
        # an account whose items were all last touched before the change
        account = db.execute(
            f'SELECT "AccountId" FROM ({VERSIONS}) GROUP BY ALL HAVING max(version) < ? LIMIT 1',
            [changed],
        ).fetchone()[0]
        _mutate(
            sandbox,
            'UPDATE org."Account" SET "Region__c" = \'LATAM\', "SystemModstamp" = ? WHERE "Id" = ?',
            [changed, account],
        )
        children = {
            r[0]
            for r in db.execute(
                f'SELECT "Id" FROM ({VERSIONS}) WHERE "AccountId" = ?', [account]
            ).fetchall()
        }
        assert children
        warehouse = Warehouse(tmp_path / "w")
        extract(client, warehouse, ORDER_ITEM, [day], BULK)
        rows = (
            warehouse.connect()
            .execute(
                'SELECT "Id", "Order.Account.Region__c" FROM raw.order_item WHERE _partition = ?',
                [day],
            )
            .fetchall()
        )
        brought = {i for i, region in rows if i in children}
        assert brought == children and {r for i, r in rows if i in children} == {"LATAM"}


def test_with_injected_faults_the_raw_table_equals_a_fault_free_run(
    start_sandbox: StartSandbox, tmp_path
):
    days = _last_days(3)
    faults = {"http500": 0.04, "http503": 0.03, "drop": 0.02, "expire": 0.01, "bulk_fail": 0.1}
    tables = []
    for name, rates in (("clean", None), ("faulty", faults)):
        with start_sandbox(accounts=20, faults=rates, fault_seed=5, name=name) as sandbox:
            warehouse = Warehouse(tmp_path / name)
            client = client_for(sandbox)
            for source in (ORDER_ITEM, mapped("Account")):
                extract(client, warehouse, source, days, BULK)
            tables.append((_raw(warehouse, "order_item"), _raw(warehouse, "account")))
    assert tables[0] == tables[1]
    assert len(tables[0][0]) > 0


def test_an_interrupted_run_publishes_nothing(client, warehouse, monkeypatch):
    extract(client, warehouse, ORDER_ITEM, [YESTERDAY], BULK)
    before = _raw(warehouse, "order_item")
    original = client.bulk_query_to_files

    def interrupted(*args, **kwargs):
        original(*args, **kwargs)
        raise KeyboardInterrupt

    monkeypatch.setattr(client, "bulk_query_to_files", interrupted)
    with pytest.raises(KeyboardInterrupt):
        extract(client, warehouse, ORDER_ITEM, [YESTERDAY], BULK)
    assert _raw(warehouse, "order_item") == before
    assert not list((warehouse.root / "tmp").iterdir())


def test_raw_tables_keep_dotted_paths_and_bookkeeping_columns(client, warehouse):
    extract(client, warehouse, ORDER_ITEM, [YESTERDAY], BULK)
    columns = [
        d[0]
        for d in warehouse.connect().execute("SELECT * FROM raw.order_item LIMIT 0").description
    ]
    assert "Order.Account.Region__c" in columns
    assert {"_partition", "_extracted_at", "_version_stamp"} <= set(columns)


def test_the_catalog_is_readable_by_a_separate_read_only_session(client, warehouse):
    extract(client, warehouse, ORDER_ITEM, [YESTERDAY], BULK)
    con = duckdb.connect(str(warehouse.catalog_path), read_only=True)
    assert con.execute("SELECT count(*) FROM raw.order_item").fetchone()[0] > 0


def test_rest_records_are_typed_within_a_small_memory_limit(client, warehouse):
    """Each record's JSON is parsed once, not once per column."""
    settings = ExtractSettings(rest_threshold=10**9, memory_mb=32)
    result = extract(client, warehouse, ORDER_ITEM, _last_days(120), settings)
    assert result.method == "rest" and result.rows > 1000


def _extract_both_ways(
    sandbox, tmp_path, days: list[str], limit: int | None, settings: ExtractSettings = REST
):
    """The same window extracted with `settings` and queries timing out past `limit` rows, and
    in one query."""
    client = client_for(sandbox)
    org = sandbox.salesforce.org
    timed, plain = Warehouse(tmp_path / "timed"), Warehouse(tmp_path / "plain")
    org.query_timeout_rows = limit
    try:
        result = extract(client, timed, ORDER_ITEM, days, settings)
    finally:
        org.query_timeout_rows = None
    assert extract(client, plain, ORDER_ITEM, days, REST).queries == 1
    return result, _raw(timed, "order_item"), _raw(plain, "order_item")


def test_a_window_that_times_out_is_asked_again_in_halves_and_loses_nothing(
    start_sandbox: StartSandbox, tmp_path
):
    with start_sandbox(accounts=10) as sandbox:
        result, timed, plain = _extract_both_ways(sandbox, tmp_path, _last_days(30), 40)
    assert result.queries > 2
    assert len(plain) > 40 and timed == plain


def test_a_bulk_job_that_times_out_is_asked_again_in_halves_without_a_second_job_of_it(
    start_sandbox: StartSandbox, tmp_path
):
    with start_sandbox(accounts=10) as sandbox:
        bulk = replace(REST, rest_threshold=0, bulk_poll_seconds=0.01)
        result, timed, plain = _extract_both_ways(sandbox, tmp_path, _last_days(30), 80, bulk)
        failed = [j for j in sandbox.salesforce.org.jobs() if j.state == "Failed"]
    assert result.method == "bulk" and result.queries > 2
    assert len(plain) > 80 and timed == plain
    # Each timed-out query failed once: halves, not the same job again.
    assert len(failed) == len({j.query for j in failed})


def test_a_window_past_the_row_ceiling_is_asked_in_halves_before_any_row_is_read(
    start_sandbox: StartSandbox, tmp_path
):
    with start_sandbox(accounts=10) as sandbox:
        capped = replace(REST, max_window_rows=40)
        result, timed, plain = _extract_both_ways(sandbox, tmp_path, _last_days(30), None, capped)
    assert len(plain) > 40 and timed == plain
    assert result.queries > 2


def test_a_slice_past_the_row_ceiling_that_cannot_be_halved_is_read_whole(
    start_sandbox: StartSandbox, tmp_path
):
    with start_sandbox(accounts=10) as sandbox:
        capped = replace(REST, max_window_rows=1, max_queries=8)
        result, timed, plain = _extract_both_ways(sandbox, tmp_path, _last_days(30), None, capped)
    assert len(plain) > 1 and timed == plain
    assert result.queries == 8


def test_a_mass_re_stamp_at_one_instant_is_asked_again_by_id_range(
    start_sandbox: StartSandbox, tmp_path
):
    with start_sandbox(accounts=10) as sandbox:
        instant = _day_start(YESTERDAY) + dt.timedelta(hours=12)
        _mutate(sandbox, 'UPDATE org."Order" SET "SystemModstamp" = ?', [instant])
        result, timed, plain = _extract_both_ways(sandbox, tmp_path, [YESTERDAY], 40)
    assert len(plain) > 40 and timed == plain
    assert result.queries > 10  # halved down to one second, then by Id


def test_a_window_that_cannot_be_narrowed_enough_fails_naming_object_and_window(
    start_sandbox: StartSandbox, tmp_path
):
    with start_sandbox(accounts=5) as sandbox:
        sandbox.salesforce.org.query_timeout_rows = 0
        settings = replace(REST, max_queries=20)
        with pytest.raises(QueryTimeout, match=rf"OrderItem: the window {YESTERDAY}"):
            extract(
                client_for(sandbox), Warehouse(tmp_path / "w"), ORDER_ITEM, [YESTERDAY], settings
            )
