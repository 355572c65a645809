"""Grouping staged pages into runs of partitions, so publishing needs bounded memory."""

from __future__ import annotations

from pathlib import Path

from pipeline.extract.pages import write_groups

PAGES = [Path("/work/page-1.parquet")]


def _ranges(groups: list[tuple[str, list[object]]]) -> list[tuple[object, ...]]:
    return [tuple(params[1:]) for _, params in groups]


def test_runs_hold_at_most_the_row_limit():
    summary = [("2024-01-01", 40, 0), ("2024-01-02", 40, 0), ("2024-01-03", 40, 0)]
    groups = write_groups(PAGES, summary, max_rows=80, max_partitions=10)
    assert _ranges(groups) == [("2024-01-01", "2024-01-02"), ("2024-01-03", "2024-01-03")]


def test_runs_hold_at_most_the_partition_limit():
    summary = [(f"2024-01-0{day}", 1, 0) for day in range(1, 6)]
    groups = write_groups(PAGES, summary, max_rows=1000, max_partitions=2)
    assert len(groups) == 3


def test_a_partition_bigger_than_the_limit_is_a_run_of_its_own():
    summary = [("2024-01-01", 5, 0), ("2024-01-02", 500, 0), ("2024-01-03", 5, 0)]
    groups = write_groups(PAGES, summary, max_rows=100, max_partitions=10)
    assert _ranges(groups) == [
        ("2024-01-01", "2024-01-01"),
        ("2024-01-02", "2024-01-02"),
        ("2024-01-03", "2024-01-03"),
    ]


def test_rows_without_a_partition_get_a_query_the_writer_refuses():
    groups = write_groups(PAGES, [("2024-01-01", 1, 0), (None, 2, 0)], 100, 10)
    assert groups[-1][0].endswith("WHERE _partition IS NULL")


def test_no_rows_at_all_still_give_one_query():
    (query, params) = write_groups(PAGES, [], 100, 10)[0]
    assert "WHERE" not in query and params == [[str(PAGES[0])]]
