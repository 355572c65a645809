"""Table names and partition keys become paths and SQL: anything unsafe is refused up front."""

from __future__ import annotations

import pytest

from pipeline.warehouse import Table
from pipeline.warehouse.tables import check_partition


def test_qualified_name_is_schema_dot_table():
    assert Table("raw", "order_item").qualified == "raw.order_item"


@pytest.mark.parametrize("schema", ["public", "Raw", "raw/x", "", "main"])
def test_schema_outside_raw_staged_load_is_refused(schema):
    with pytest.raises(ValueError, match="schema"):
        Table(schema, "order_item")


@pytest.mark.parametrize(
    "name", ["OrderItem", "../order_item", "a/b", "", "order-item", "1st", "x.parquet", "é"]
)
def test_table_name_that_is_not_a_lower_case_identifier_is_refused(name):
    with pytest.raises(ValueError, match="table name"):
        Table("raw", name)


@pytest.mark.parametrize(
    "key",
    ["../x", "a/b", "..", ".hidden", "", "x*", "[ab]", "2026-11-20 00:00:00", "a..b", "/abs"],
)
def test_partition_key_that_could_escape_the_table_directory_is_refused(key):
    with pytest.raises(ValueError, match="partition key"):
        check_partition(key)


@pytest.mark.parametrize("key", ["2026-11-20", "_all", "day=2026-11-20", "v1.2"])
def test_day_and_unpartitioned_keys_are_accepted(key):
    assert check_partition(key) == key


def test_latest_by_without_order_by_is_refused():
    with pytest.raises(ValueError, match="go together"):
        Table("raw", "order_item", latest_by=("Id",))


def test_order_by_without_latest_by_is_refused():
    with pytest.raises(ValueError, match="go together"):
        Table("raw", "order_item", order_by=("SystemModstamp",))


def test_empty_column_name_is_refused():
    with pytest.raises(ValueError, match="non-empty"):
        Table("raw", "order_item", latest_by=("",), order_by=("x",))


def test_spec_round_trips_to_an_equal_table():
    table = Table("load", "id_map", latest_by=("source_id",), order_by=("_applied_at", "seq"))
    assert Table.from_spec(table.spec()) == table


def test_columns_given_as_lists_become_tuples():
    table = Table("raw", "t", latest_by=["Id"], order_by=["SystemModstamp"])  # type: ignore[arg-type]
    assert table.latest_by == ("Id",)
    assert hash(table)
