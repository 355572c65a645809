"""Daily windows on SystemModstamp and the SOQL that reads them."""

from __future__ import annotations

import datetime as dt

import pytest

from pipeline.extract.plan import Column, FieldPlan
from pipeline.extract.window import Slice, Window, _id_number, window_query

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


def _no_ids() -> tuple[str, str] | None:
    raise AssertionError("a stamp range wider than a second is halved by time")


def test_a_slice_wider_than_a_second_halves_its_stamp_range_on_whole_seconds():
    part = Slice(
        dt.datetime(2026, 11, 20, tzinfo=dt.UTC), dt.datetime(2026, 11, 20, 0, 0, 3, tzinfo=dt.UTC)
    )
    halves = part.halves(_no_ids)
    assert halves is not None
    assert [(h.low.second, h.high.second) for h in halves] == [(0, 1), (1, 3)]


def _held(*ids: str):
    """The org's Ids, as `Slice.halves` asks for them: the first and last in a range."""

    def bounds(within: tuple[str, str] | None) -> tuple[str, str] | None:
        inside = sorted(i for i in ids if within is None or within[0] <= i < within[1])
        return (inside[0], inside[-1]) if inside else None

    return bounds


def test_a_one_second_slice_halves_the_object_s_id_range_each_half_narrowed_to_its_ids():
    second = dt.datetime(2026, 11, 20, tzinfo=dt.UTC)
    part = Slice(second, second + dt.timedelta(seconds=1))
    halves = part.halves(_held("802000000000000", "802000000000001", "80200000000000z"))
    assert halves is not None
    low, high = halves
    assert "Id >= '802000000000000' AND Id < '802000000000002'" in low.conditions(PLAN.stamps)
    assert "Id >= '80200000000000z' AND Id < '802000000000010'" in high.conditions(PLAN.stamps)


def test_a_half_that_holds_no_id_is_not_asked():
    second = dt.datetime(2026, 11, 20, tzinfo=dt.UTC)
    part = Slice(second, second + dt.timedelta(seconds=1), (0, 62**15))
    halves = part.halves(_held("802000000000000", "802000000000009"))
    assert halves is not None and len(halves) == 1
    assert "Id >= '802000000000000' AND Id < '80200000000000A'" in halves[0].conditions(PLAN.stamps)


def test_a_slice_of_one_id_and_one_second_cannot_be_halved():
    second = dt.datetime(2026, 11, 20, tzinfo=dt.UTC)
    part = Slice(second, second + dt.timedelta(seconds=1))
    assert part.halves(_held("802000000000007")) is None
    assert part.halves(_held()) is None


def test_every_record_of_a_slice_is_in_one_of_its_halves_by_id():
    second = dt.datetime(2026, 11, 20, tzinfo=dt.UTC)
    ids = [f"8020000000000{a}{b}" for a in "0Az" for b in "05Vz"]
    part = Slice(second, second + dt.timedelta(seconds=1))
    halves = part.halves(_held(*ids)) or ()
    assert len(halves) == 2
    for record in ids:
        holding = [h for h in halves if h.ids and h.ids[0] <= _id_number(record) < h.ids[1]]
        assert len(holding) == 1, record


def _written_plan(since: dt.datetime) -> FieldPlan:
    return FieldPlan(
        PLAN.sobject,
        PLAN.columns,
        PLAN.parents,
        True,
        "005000000000001AAA",
        ("Order.SystemModstamp",),
        since,
    )


def test_a_written_back_stamp_counts_unless_the_integration_user_moved_it():
    plan = _written_plan(dt.datetime(2026, 11, 1, tzinfo=dt.UTC))
    soql = window_query(plan, Window.for_partitions(["2026-11-20"]), dt.timedelta(0))
    assert "(SystemModstamp >= 2026-11-20T00:00:00Z AND SystemModstamp < 2026-11-21T00:00:00Z)" in (
        soql
    )
    assert (
        "(Order.SystemModstamp >= 2026-11-20T00:00:00Z AND Order.SystemModstamp < "
        "2026-11-21T00:00:00Z AND Order.LastModifiedById != '005000000000001AAA')"
    ) in soql


def test_before_the_first_write_back_every_change_counts_whoever_made_it():
    plan = _written_plan(dt.datetime(2026, 11, 25, tzinfo=dt.UTC))
    soql = window_query(plan, Window.for_partitions(["2026-11-20"]), dt.timedelta(0))
    assert "LastModifiedById" not in soql


def test_a_window_across_the_first_write_back_skips_only_what_came_after_it():
    plan = _written_plan(dt.datetime(2026, 11, 20, 12, tzinfo=dt.UTC))
    soql = window_query(plan, Window.for_partitions(["2026-11-20"]), dt.timedelta(0))
    assert (
        "(Order.LastModifiedById != '005000000000001AAA' OR "
        "Order.SystemModstamp < 2026-11-20T12:00:00Z)"
    ) in soql
