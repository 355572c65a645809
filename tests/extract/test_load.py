"""Typed raw rows from downloaded pages."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import duckdb
import pytest

from pipeline.extract.load import raw_rows_sql
from pipeline.extract.plan import Column, FieldPlan
from pipeline.extract.window import Window

PLAN = FieldPlan(
    "OrderItem",
    (
        Column("Id", "id"),
        Column("SystemModstamp", "datetime"),
        Column("IsDeleted", "boolean"),
        Column("Quantity", "double"),
        Column("ServiceDate", "date"),
        Column("Order.Account.Region__c", "picklist"),
        Column("Order.SystemModstamp", "datetime"),
        Column("Order.Account.SystemModstamp", "datetime"),
    ),
    ("Order", "Order.Account"),
    True,
)
HEADER = (
    '"Id","SystemModstamp","IsDeleted","Quantity","ServiceDate","Order.Account.Region__c",'
    '"Order.SystemModstamp","Order.Account.SystemModstamp"\n'
)
WINDOW = Window.for_partitions(["2026-11-20"])
NOW = dt.datetime(2026, 11, 21, 2, tzinfo=dt.UTC)


def _rows(files, fmt="csv", window=WINDOW):
    sql, params = raw_rows_sql(
        PLAN, files, fmt, window=window, overlap=dt.timedelta(minutes=10), extracted_at=NOW
    )
    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    cursor = con.execute(f'SELECT * FROM ({sql}) ORDER BY "Id"', params)
    names = [d[0] for d in cursor.description]
    return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]


def _csv(tmp_path: Path, name: str, *lines: str) -> Path:
    path = tmp_path / name
    path.write_text(HEADER + "".join(line + "\n" for line in lines))
    return path


def test_csv_values_get_describe_types_and_empty_values_are_null(tmp_path):
    page = _csv(
        tmp_path, "1.csv", '"a","2026-11-20T08:00:00.000Z","false","1.5","2026-11-01","","",""'
    )
    (row,) = _rows([page])
    assert row["Quantity"] == 1.5
    assert row["ServiceDate"] == dt.date(2026, 11, 1)
    assert row["IsDeleted"] is False
    assert row["Order.Account.Region__c"] is None
    assert row["SystemModstamp"] == dt.datetime(2026, 11, 20, 8)


def test_every_page_is_read(tmp_path):
    pages = [
        _csv(tmp_path, f"{n}.csv", f'"{n}","2026-11-20T08:00:00.000Z","false","","","","",""')
        for n in range(3)
    ]
    assert [r["Id"] for r in _rows(pages)] == ["0", "1", "2"]


def test_a_parent_s_change_makes_the_child_row_new(tmp_path):
    page = _csv(
        tmp_path,
        "1.csv",
        '"a","2025-01-01T00:00:00.000Z","false","","","EMEA",'
        '"2025-01-01T00:00:00.000Z","2026-11-20T09:30:00.000Z"',
    )
    (row,) = _rows([page])
    assert row["_version_stamp"] == dt.datetime(2026, 11, 20, 9, 30)
    assert row["_partition"] == "2026-11-20"


def test_a_row_changed_after_the_window_is_left_to_a_later_partition(tmp_path):
    page = _csv(
        tmp_path,
        "1.csv",
        '"a","2026-11-21T00:00:00.000Z","false","","","","2026-11-20T09:30:00.000Z",""',
    )
    assert _rows([page]) == []


def test_a_row_caught_by_the_overlap_lands_in_the_first_partition(tmp_path):
    page = _csv(tmp_path, "1.csv", '"a","2026-11-19T23:55:00.000Z","false","","","","",""')
    (row,) = _rows([page])
    assert row["_partition"] == "2026-11-20"


def test_a_range_run_puts_each_row_in_the_partition_of_its_version(tmp_path):
    page = _csv(
        tmp_path,
        "1.csv",
        '"a","2026-11-18T12:00:00.000Z","false","","","","",""',
        '"b","2026-11-20T00:00:00.000Z","false","","","","",""',
    )
    rows = _rows([page], window=Window.for_partitions(["2026-11-18", "2026-11-19", "2026-11-20"]))
    assert [(r["Id"], r["_partition"]) for r in rows] == [("a", "2026-11-18"), ("b", "2026-11-20")]


def test_two_versions_with_equal_timestamps_of_different_records_are_both_kept(tmp_path):
    page = _csv(
        tmp_path,
        "1.csv",
        '"a","2026-11-20T00:00:00.000Z","false","","","","",""',
        '"b","2026-11-20T00:00:00.000Z","false","","","","",""',
    )
    assert len(_rows([page])) == 2


def test_no_pages_give_an_empty_typed_result(tmp_path):
    empty = tmp_path / "empty.csv"
    empty.write_text("")
    assert _rows([empty]) == []


def test_rest_json_records_are_flattened_by_path(tmp_path):
    records = [
        {
            "attributes": {"type": "OrderItem"},
            "Id": "a",
            "SystemModstamp": "2026-11-20T08:00:00.000+0000",
            "IsDeleted": True,
            "Quantity": 2.0,
            "ServiceDate": "2026-11-01",
            "Order": {
                "attributes": {},
                "SystemModstamp": "2026-01-01T00:00:00.000+0000",
                "Account": {"Region__c": "APAC", "SystemModstamp": "2026-01-01T00:00:00.000+0000"},
            },
        },
        {
            "attributes": {"type": "OrderItem"},
            "Id": "b",
            "SystemModstamp": "2026-11-20T09:00:00.000+0000",
            "IsDeleted": False,
            "Quantity": None,
            "ServiceDate": None,
            "Order": None,
        },
    ]
    path = tmp_path / "records.json"
    path.write_text("\n".join(json.dumps(r) for r in records))
    a, b = _rows([path], fmt="json")
    assert a["Order.Account.Region__c"] == "APAC" and a["IsDeleted"] is True
    assert a["SystemModstamp"] == dt.datetime(2026, 11, 20, 8)
    assert b["Order.Account.Region__c"] is None and b["Quantity"] is None


def test_an_unknown_page_format_is_refused(tmp_path):
    with pytest.raises(ValueError):
        _rows([_csv(tmp_path, "1.csv")], fmt="xml")
