"""`m3sync inspect`: tables, rows and rejects read from the catalog, read-only, during runs too."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import duckdb
import pytest

from pipeline.load.journal import write_journal
from pipeline.load.reconcile import Action, Outcome, Status
from pipeline.staging.stage import REJECTS, stage
from pipeline.warehouse import Table, Warehouse
from pipeline.warehouse.inspect import (
    JournalReject,
    RejectReason,
    TableInfo,
    head,
    journal_rejects,
    rejects_summary,
    tables,
)
from tests.staging.test_stage import ITEMS, PLANS, PRICINGS, compiled_set, item_id, write_items

DAY1, DAY2 = "2024-03-01", "2024-03-02"
ORDER_ITEM = Table("raw", "order_item")  # one version per partition: no latest_by

WRITER = """
import sys, duckdb
from pathlib import Path
from pipeline.warehouse import Table, Warehouse
warehouse, con = Warehouse(Path(sys.argv[1])), duckdb.connect()
table, scratch = Table("raw", "order_item"), Table("raw", "scratch")
rows = "SELECT unnest(['a', 'b', 'c']) AS \\"Id\\", ? AS _partition"
warehouse.write_partition(con, scratch, "kept", "SELECT 1 AS n")
print("ready", flush=True)
sys.stdin.readline()
for day in range(1, 16):
    warehouse.write_partition(con, table, f"2024-04-{day:02d}", rows, [f"2024-04-{day:02d}"])
    warehouse.write_partition(con, table, "2024-04-01", rows, ["2024-04-01"])
    warehouse.write_partition(con, scratch, "removed", "SELECT 2 AS n")
    warehouse.delete_partition(scratch, "removed")
"""


@pytest.fixture
def warehouse(tmp_path: Path) -> Warehouse:
    return Warehouse(tmp_path / "warehouse")


@pytest.fixture
def staged(warehouse: Warehouse, tmp_path: Path) -> Warehouse:
    """Six OrderItems of one day, staged as pricings (two rejected) and plans."""
    compiled = compiled_set(tmp_path, pricings=PRICINGS, plans=PLANS)
    write_items(warehouse, DAY1, ITEMS)
    stage(warehouse, compiled["pricings"], [DAY1])
    stage(warehouse, compiled["plans"], [DAY1])
    return warehouse


def outcome(source_id: str, status: Status, message: str | None = None) -> Outcome:
    action = Action("create", "accounts", "Account", source_id, DAY1, code=source_id)
    return Outcome(action, status, None if status != "applied" else f"m-{source_id}", 1, message)


def write_rejects(warehouse: Warehouse, entity: str, rejects: list[tuple[str, str, str]]) -> None:
    """`staged.rejects` rows for `entity` on DAY1: (source id, check, message), as a stage would."""
    con = duckdb.connect()
    try:
        con.execute(
            'CREATE TABLE r (source_id VARCHAR, "check" VARCHAR, message VARCHAR, n INTEGER)'
        )
        con.executemany(
            "INSERT INTO r VALUES (?, ?, ?, ?)", [(*r, i) for i, r in enumerate(rejects)]
        )
        warehouse.write_partition(
            con,
            REJECTS,
            f"{entity}.{DAY1}",
            "SELECT ? AS entity, ? AS _partition, 'OrderItem' AS _source_object, "
            "source_id AS _source_id, 'Items' AS _mapping, \"check\", message, "
            "'{}' AS \"row\", now()::TIMESTAMP AS _staged_at FROM r ORDER BY n",
            [entity, DAY1],
        )
    finally:
        con.close()


# ---- tables -------------------------------------------------------------------------------------


def test_a_warehouse_never_written_has_no_tables(warehouse):
    assert tables(warehouse) == []


def test_inspecting_never_creates_the_catalog_file(warehouse):
    tables(warehouse)
    rejects_summary(warehouse)
    assert not warehouse.catalog_path.exists()


def test_tables_lists_every_table_with_its_row_count_sorted_by_schema_and_name(staged):
    write_journal(staged, "accounts", "run1", [outcome("a1", "applied")])
    assert [(t.qualified, t.rows) for t in tables(staged)] == [
        ("load.id_map", 1),
        ("load.journal", 1),
        ("raw.order_item", 6),
        ("staged.plans", 6),
        ("staged.pricings", 4),
        ("staged.rejects", 2),
    ]


def test_a_table_written_after_an_earlier_inspect_is_listed_by_the_next(staged):
    tables(staged)
    with duckdb.connect() as con:
        staged.write_partition(con, Table("raw", "account"), DAY1, "SELECT 'acme' AS \"Name\"")
    assert ("raw.account", 1) in [(t.qualified, t.rows) for t in tables(staged)]


def test_tables_counts_each_tables_partition_files(staged):
    write_items(staged, DAY2, ITEMS[:1])
    by_name = {t.qualified: t.files for t in tables(staged)}
    assert by_name["raw.order_item"] == 2
    assert by_name["staged.rejects"] == 2  # one file per entity: pricings and plans


def test_a_view_that_cannot_be_read_is_listed_with_its_error_and_the_rest_are_counted(staged):
    staged.partition_path(Table("staged", "plans"), DAY1).write_bytes(b"not parquet")
    by_name = {t.qualified: t for t in tables(staged)}
    assert by_name["staged.plans"].rows is None
    assert by_name["staged.plans"].error
    assert by_name["staged.pricings"] == TableInfo("staged", "pricings", 4, 1)


# ---- head ---------------------------------------------------------------------------------------


def test_head_returns_the_columns_and_rows_of_a_schema_qualified_table(staged):
    result = head(staged, "raw.order_item")
    assert result.table == "raw.order_item"
    assert result.columns[:2] == ("Id", "SystemModstamp")
    assert [row[0] for row in result.rows] == [item_id(s) for s in "ABCDEF"]


def test_head_resolves_a_bare_name_that_one_schema_has(staged):
    assert head(staged, "pricings").table == "staged.pricings"
    assert head(staged, "rejects").table == "staged.rejects"


def test_head_reads_names_case_insensitively(staged):
    assert head(staged, " Staged.Pricings ").table == "staged.pricings"


def test_head_returns_at_most_limit_rows(staged):
    assert len(head(staged, "raw.order_item", limit=2).rows) == 2


def test_head_keeps_only_rows_whose_columns_equal_where(staged):
    result = head(staged, "staged.rejects", where={"check": "start_before_end"})
    source_id = result.columns.index("_source_id")
    assert [row[source_id] for row in result.rows] == [item_id("F")]


def test_head_where_compares_a_string_with_the_columns_text(staged):
    result = head(staged, "staged.pricings", where={"_tombstone": "true"})
    assert len(result.rows) == 2


def test_head_where_none_matches_null(staged):
    result = head(staged, "staged.pricings", where={"code": None})
    assert len(result.rows) == 2  # tombstones carry no code


def test_head_where_with_an_unknown_column_names_the_tables_columns(staged):
    with pytest.raises(ValueError, match=r"staged\.pricings has no column 'nope'.*'code'"):
        head(staged, "pricings", where={"nope": "x"})


def test_an_unknown_table_is_a_value_error_naming_it_and_listing_the_tables(staged):
    with pytest.raises(ValueError, match=r"no table 'accounts'") as caught:
        head(staged, "accounts")
    assert "raw.order_item, staged.plans, staged.pricings, staged.rejects" in str(caught.value)


def test_a_bare_name_two_schemas_have_asks_which_one(staged):
    with duckdb.connect() as con:
        staged.write_partition(con, Table("raw", "pricings"), DAY1, "SELECT 1 AS n")
    with pytest.raises(ValueError, match=r"ambiguous.*raw\.pricings, staged\.pricings"):
        head(staged, "pricings")


def test_head_of_a_warehouse_never_written_says_it_has_no_tables(warehouse):
    with pytest.raises(ValueError, match="has no tables yet"):
        head(warehouse, "staged.pricings")


@pytest.mark.parametrize(
    "name",
    [
        "staged.pricings; DROP VIEW staged.plans",
        'staged."pricings"',
        "pricings' OR '1'='1",
        '"',
        "staged.pricings--",
        "(SELECT 1)",
    ],
)
def test_a_hostile_table_name_is_refused_and_changes_nothing(staged, name):
    before = tables(staged)
    with pytest.raises(ValueError, match="no table"):
        head(staged, name)
    assert tables(staged) == before


def test_a_hostile_where_column_is_refused(staged):
    with pytest.raises(ValueError, match="has no column"):
        head(staged, "pricings", where={'code" IS NOT NULL OR "code': "x"})


def test_head_refuses_a_negative_limit(staged):
    with pytest.raises(ValueError, match="limit"):
        head(staged, "pricings", limit=-1)


# ---- rejects ------------------------------------------------------------------------------------


def test_rejects_summary_gives_each_entity_and_check_its_count_message_and_example(staged):
    assert rejects_summary(staged) == [
        RejectReason(
            "pricings",
            "no_negative_debit_price",
            "a DEBIT pricing cannot have a negative unitPrice or fixedPrice",
            1,
            1,
            "OrderItem",
            item_id("E"),
        ),
        RejectReason(
            "pricings",
            "start_before_end",
            "startDate must be before endDate (m3ter end dates are exclusive)",
            1,
            1,
            "OrderItem",
            item_id("F"),
        ),
    ]


def test_rejects_summary_puts_the_most_frequent_reason_first(warehouse):
    write_rejects(warehouse, "plans", [("p1", "not_nullable", "name is required")])
    write_rejects(
        warehouse,
        "pricings",
        [(f"s{n}", "conversion", f"UnitPrice 'x{n}' is not a number") for n in range(3)],
    )
    assert [(r.entity, r.check, r.rows) for r in rejects_summary(warehouse)] == [
        ("pricings", "conversion", 3),
        ("plans", "not_nullable", 1),
    ]


def test_rejects_summary_shows_a_checks_most_frequent_message_with_an_example_of_it(warehouse):
    write_rejects(
        warehouse,
        "pricings",
        [
            ("s1", "conversion", "EndDate 'soon' is not a date"),
            ("s3", "conversion", "UnitPrice is not a number"),
            ("s2", "conversion", "UnitPrice is not a number"),
        ],
    )
    (reason,) = rejects_summary(warehouse)
    assert (reason.message, reason.messages, reason.rows) == ("UnitPrice is not a number", 2, 3)
    assert (reason.example_object, reason.example_id) == ("OrderItem", "s2")


def test_rejects_summary_is_empty_when_nothing_was_rejected(warehouse, tmp_path):
    compiled = compiled_set(tmp_path, plans=PLANS)
    write_items(warehouse, DAY1, ITEMS[:1])
    stage(warehouse, compiled["plans"], [DAY1])
    assert rejects_summary(warehouse) == []


def test_rejects_summary_is_empty_before_anything_was_staged(warehouse):
    assert rejects_summary(warehouse) == []


def test_journal_rejects_groups_refused_records_by_entity_status_and_message(warehouse):
    write_journal(
        warehouse,
        "accounts",
        "run1",
        [
            outcome("a1", "rejected", "code already in use"),
            outcome("a2", "rejected", "code already in use"),
            outcome("a3", "failed", "still failing after 5 attempts"),
            outcome("a4", "applied"),
        ],
    )
    assert journal_rejects(warehouse) == [
        JournalReject("accounts", "rejected", "code already in use", 2, "Account", "a1", "run1"),
        JournalReject(
            "accounts", "failed", "still failing after 5 attempts", 1, "Account", "a3", "run1"
        ),
    ]


def test_journal_rejects_count_only_each_records_latest_run(warehouse):
    write_journal(
        warehouse,
        "accounts",
        "run1",
        [outcome("a1", "rejected", "bad currency"), outcome("a2", "rejected", "bad currency")],
    )
    write_journal(
        warehouse,
        "accounts",
        "run2",
        [outcome("a1", "applied"), outcome("a2", "rejected", "bad currency")],
    )
    assert journal_rejects(warehouse) == [
        JournalReject("accounts", "rejected", "bad currency", 1, "Account", "a2", "run2")
    ]


def test_journal_rejects_is_empty_before_any_load(staged):
    assert journal_rejects(staged) == []


# ---- alongside writers --------------------------------------------------------------------------


def test_inspect_leaves_the_catalog_file_as_it_was(staged):
    before = (staged.catalog_path.stat().st_mtime_ns, staged.catalog_path.read_bytes())
    tables(staged)
    head(staged, "pricings")
    rejects_summary(staged)
    journal_rejects(staged)
    assert (staged.catalog_path.stat().st_mtime_ns, staged.catalog_path.read_bytes()) == before
    assert [p.name for p in staged.root.iterdir() if p.name.startswith("warehouse.duckdb")] == [
        "warehouse.duckdb"
    ]


def test_tables_and_head_work_while_another_process_writes_and_deletes_partitions(warehouse):
    rows = "SELECT unnest(['a', 'b', 'c']) AS \"Id\", '2024-04-01' AS _partition"
    with duckdb.connect() as con:
        warehouse.write_partition(con, ORDER_ITEM, "2024-04-01", rows)
    writer = subprocess.Popen(
        [sys.executable, "-c", WRITER, str(warehouse.root)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    seen: list[int] = []
    try:
        assert writer.stdin is not None and writer.stdout is not None
        assert writer.stdout.readline().strip() == "ready"
        writer.stdin.write("go\n")
        writer.stdin.flush()
        while writer.poll() is None:
            listed = {t.qualified: t for t in tables(warehouse)}
            assert [t.error for t in listed.values()] == [None, None]
            info = listed["raw.order_item"]
            rows = head(warehouse, "order_item", limit=100, where={"_partition": "2024-04-01"})
            assert len(rows.rows) == 3
            seen.append(info.rows or 0)
        assert writer.wait(timeout=120) == 0
    finally:
        if writer.poll() is None:
            writer.kill()
            writer.wait()
    assert len(seen) > 1
    assert seen == sorted(seen)  # partitions are only added, and each appears whole
    assert all(count % 3 == 0 for count in seen)
    assert [(t.qualified, t.rows) for t in tables(warehouse)] == [
        ("raw.order_item", 45),
        ("raw.scratch", 1),
    ]
