"""Daily windows on SystemModstamp and the SOQL that reads them."""

from __future__ import annotations

import datetime as dt

import pytest

from pipeline.extract.plan import Column, FieldPlan
from pipeline.extract.window import Window, count_query, window_query

PLAN = FieldPlan(
    "OrderItem",
    (
        Column("Id", "id"),
        Column("SystemModstamp", "datetime"),
        Column("Order.SystemModstamp", "datetime"),
    ),
    ("Order",),
    True,
)


def test_a_partition_is_one_utc_day_closed_at_the_start_open_at_the_end():
    window = Window.for_partitions(["2026-11-20"])
    assert window.start == dt.datetime(2026, 11, 20, tzinfo=dt.UTC)
    assert window.end == dt.datetime(2026, 11, 21, tzinfo=dt.UTC)


def test_a_range_of_partitions_is_one_window():
    window = Window.for_partitions(["2026-11-20", "2026-11-18", "2026-11-19"])
    assert window.partitions == ["2026-11-18", "2026-11-19", "2026-11-20"]


@pytest.mark.parametrize("keys", [[], ["2026-11-18", "2026-11-20"], ["2026-11-18", "2026-11-18"]])
def test_partitions_must_be_consecutive_days(keys):
    with pytest.raises(ValueError):
        Window.for_partitions(keys)


def test_the_query_opens_the_window_early_by_the_overlap_and_reads_parent_stamps():
    soql = window_query(PLAN, Window.for_partitions(["2026-11-20"]), dt.timedelta(minutes=10))
    assert soql == (
        "SELECT Id, SystemModstamp, Order.SystemModstamp FROM OrderItem WHERE "
        "(SystemModstamp >= 2026-11-19T23:50:00Z AND SystemModstamp < 2026-11-21T00:00:00Z) OR "
        "(Order.SystemModstamp >= 2026-11-19T23:50:00Z AND "
        "Order.SystemModstamp < 2026-11-21T00:00:00Z)"
    )


def test_the_count_query_counts_the_same_rows():
    window = Window.for_partitions(["2026-11-20"])
    soql = count_query(PLAN, window, dt.timedelta(0))
    assert soql.startswith("SELECT COUNT() FROM OrderItem WHERE (SystemModstamp >= ")
