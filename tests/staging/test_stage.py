"""Staging raw partitions into staged m3ter tables and rejects, through a real warehouse."""

from __future__ import annotations

import json
from pathlib import Path

import duckdb
import pytest

from pipeline.extract.objects import SourceObject
from pipeline.extract.run import raw_table
from pipeline.extract.window import WHOLE
from pipeline.mapping.compiler import CompiledSet, compile_mappings
from pipeline.mapping.files import load_mappings
from pipeline.staging.stage import REJECTS, StageError, stage, staged_table
from pipeline.warehouse import Warehouse
from tests.shipped import describe

DAY1, DAY2 = "2024-03-01", "2024-03-02"

PRICINGS = """\
- name: Items
  object: OrderItem
  where: Order.Sync_To_M3ter__c = true
  sync_level: line_item
  fields:
    planCode: Id
    aggregationCode: Product2.M3ter_Aggregation_Code__c
    startDate: ServiceDate
    endDate: EndDate
    unitPrice: UnitPrice
  segments: 'region: Order.Account.Region__c, tier: Gold'
"""
PLANS = """\
- name: Items
  object: OrderItem
  where: Order.Sync_To_M3ter__c = true
  sync_level: line_item
  fields:
    name: Product2.Name
    planTemplateCode: Product2.M3ter_Plan_Template_Code__c
"""

# One OrderItem per row: (suffix, synced, deleted, price, end date, region).
ITEMS = [
    ("A", True, False, 10.0, "2024-12-31", "EMEA"),
    ("B", True, False, 20.0, "2024-12-31", None),
    ("C", False, False, 30.0, "2024-12-31", "EMEA"),
    ("D", True, True, 40.0, "2024-12-31", "EMEA"),
    ("E", True, False, -5.0, "2024-12-31", "EMEA"),
    ("F", True, False, 60.0, "2023-12-31", "EMEA"),
]


def item_id(suffix: str) -> str:
    return f"802000000000001{suffix}AA"


def compiled_set(tmp_path: Path, **files: str) -> CompiledSet:
    directory = tmp_path / "mappings"
    directory.mkdir(exist_ok=True)
    for entity, text in files.items():
        (directory / f"{entity}.yaml").write_text(text)
    return compile_mappings(load_mappings(directory), describe)


def write_items(
    warehouse: Warehouse,
    partition: str,
    items: list[tuple],
    stamp: str = "10:00:00",
    drop: tuple[str, ...] = (),
) -> None:
    con = duckdb.connect()
    placeholder = [("X", False, False, 0.0, "2024-12-31", None)]  # VALUES needs a row
    values = ", ".join(
        f"('{item_id(s)}', {synced}, {deleted}, {price}, DATE '{end}', "
        f"{'NULL' if region is None else repr(region)})"
        for s, synced, deleted, price, end, region in items or placeholder
    )
    con.execute(
        f"""CREATE TABLE items AS SELECT
            v.id AS "Id", TIMESTAMP '{partition} {stamp}' AS "SystemModstamp",
            v.deleted AS "IsDeleted", v.synced AS "Order.Sync_To_M3ter__c",
            'api_calls' AS "Product2.M3ter_Aggregation_Code__c", 'API' AS "Product2.Name",
            'standard' AS "Product2.M3ter_Plan_Template_Code__c",
            DATE '2024-01-01' AS "ServiceDate", v.end_date AS "EndDate",
            v.price AS "UnitPrice", v.region AS "Order.Account.Region__c",
            '801' || substr(v.id, 4) AS "OrderId",
            TIMESTAMP '{partition} {stamp}' AS _version_stamp, '{partition}' AS _partition,
            now()::TIMESTAMP AS _extracted_at
        FROM (VALUES {values}) v(id, synced, deleted, price, end_date, region)
        WHERE {bool(items)}"""
    )
    columns = "* EXCLUDE (" + ", ".join(f'"{c}"' for c in drop) + ")" if drop else "*"
    warehouse.write_partition(
        con, raw_table(SourceObject("OrderItem")), partition, f"SELECT {columns} FROM items"
    )


def query(warehouse: Warehouse, sql: str) -> list[tuple]:
    return warehouse.connect().execute(sql).fetchall()


def test_mapped_rows_are_staged_and_bad_rows_rejected_while_the_rest_go_on(warehouse, compiled):
    write_items(warehouse, DAY1, ITEMS)
    result = stage(warehouse, compiled["pricings"], [DAY1])
    staged = query(
        warehouse, "SELECT _source_id FROM staged.pricings WHERE NOT _tombstone ORDER BY 1"
    )
    assert staged == [(item_id("A"),), (item_id("B"),)]
    assert result.rejects_by_check == {"no_negative_debit_price": 1, "start_before_end": 1}
    rejects = query(
        warehouse, 'SELECT _source_id, "check", _mapping FROM staged.rejects ORDER BY 1'
    )
    assert rejects == [
        (item_id("E"), "no_negative_debit_price", "Items"),
        (item_id("F"), "start_before_end", "Items"),
    ]


def test_a_reject_keeps_the_row_it_refused(warehouse, compiled):
    write_items(warehouse, DAY1, ITEMS)
    stage(warehouse, compiled["pricings"], [DAY1])
    (row,) = query(
        warehouse, f"SELECT \"row\" FROM staged.rejects WHERE _source_id = '{item_id('E')}'"
    )
    assert json.loads(row[0])["unitPrice"] == -5.0


def test_deleted_and_unsynced_records_become_tombstones(warehouse, compiled):
    write_items(warehouse, DAY1, ITEMS)
    result = stage(warehouse, compiled["pricings"], [DAY1])
    tombstones = query(
        warehouse, "SELECT _source_id FROM staged.pricings WHERE _tombstone ORDER BY 1"
    )
    assert tombstones == [(item_id("C"),), (item_id("D"),)]
    assert result.tombstones == 2


def test_a_unit_price_becomes_one_band_from_zero(warehouse, compiled):
    write_items(warehouse, DAY1, ITEMS[:1])
    stage(warehouse, compiled["pricings"], [DAY1])
    (bands,) = query(warehouse, 'SELECT "pricingBands" FROM staged.pricings')[0]
    assert bands == [{"lowerLimit": 0.0, "fixedPrice": 0.0, "unitPrice": 10.0}]


def test_segments_send_null_keys_as_wildcards_and_count_them(warehouse, compiled):
    write_items(warehouse, DAY1, ITEMS[:2])
    result = stage(warehouse, compiled["pricings"], [DAY1])
    segments = dict(query(warehouse, "SELECT _source_id, segment FROM staged.pricings"))
    assert json.loads(segments[item_id("A")]) == {"region": "EMEA", "tier": "Gold"}
    assert json.loads(segments[item_id("B")]) == {"region": "*", "tier": "Gold"}
    assert (result.segment_wildcards, result.rows_with_wildcards) == (1, 1)


def test_m3ter_conventions_apply_to_codes_and_dates(warehouse, compiled):
    write_items(warehouse, DAY1, ITEMS[:1])
    stage(warehouse, compiled["pricings"], [DAY1])
    row = query(warehouse, 'SELECT code, "startDate", "endDate" FROM staged.pricings')[0]
    assert row == (item_id("A"), "2024-01-01T00:00:00Z", "2025-01-01T00:00:00Z")


def test_running_a_partition_again_replaces_it(warehouse, compiled):
    write_items(warehouse, DAY1, ITEMS)
    stage(warehouse, compiled["pricings"], [DAY1])
    stage(warehouse, compiled["pricings"], [DAY1])
    (count,) = query(warehouse, "SELECT count(*) FROM staged.pricings")[0]
    (rejects,) = query(warehouse, "SELECT count(*) FROM staged.rejects")[0]
    assert (count, rejects) == (4, 2)


def test_the_staged_view_shows_each_record_at_its_latest_version(warehouse, compiled):
    write_items(warehouse, DAY1, ITEMS[:1])
    write_items(warehouse, DAY2, [("A", False, False, 10.0, "2024-12-31", "EMEA")])
    stage(warehouse, compiled["pricings"], [DAY1, DAY2])
    rows = query(warehouse, "SELECT _partition, _tombstone FROM staged.pricings")
    assert rows == [(DAY2, True)]


def test_a_range_writes_a_file_for_each_partition_with_rows_and_none_when_empty(
    warehouse, compiled
):
    write_items(warehouse, DAY1, ITEMS[:1])
    write_items(warehouse, DAY2, [])
    result = stage(warehouse, compiled["pricings"], [DAY1, DAY2])
    assert result.rows_by_partition == {DAY1: 1, DAY2: 0}
    assert warehouse.partitions(staged_table("pricings")) == [DAY1, DAY2]
    assert warehouse.partition_path(staged_table("pricings"), DAY1).is_file()
    assert not warehouse.partition_path(staged_table("pricings"), DAY2).exists()


def test_entities_keep_their_own_rejects_for_the_same_partition(warehouse, compiled, tmp_path):
    write_items(warehouse, DAY1, ITEMS)
    stage(warehouse, compiled["pricings"], [DAY1])
    stage(warehouse, compiled["plans"], [DAY1])
    assert sorted(warehouse.partitions(REJECTS)) == [f"plans.{DAY1}", f"pricings.{DAY1}"]
    entities = query(warehouse, "SELECT DISTINCT entity FROM staged.rejects")
    assert entities == [("pricings",)]


def test_a_value_that_does_not_convert_is_rejected_with_its_reason(warehouse, tmp_path):
    text_price = PRICINGS.replace("unitPrice: UnitPrice", "unitPrice: Product2.Name")
    compiled = compiled_set(tmp_path, pricings=text_price)
    write_items(warehouse, DAY1, ITEMS[:1])
    result = stage(warehouse, compiled["pricings"], [DAY1])
    assert result.rejects_by_check == {"conversion": 1}
    (message,) = query(warehouse, "SELECT message FROM staged.rejects")[0]
    assert message == "unitPrice: API (from Product2.Name) is not a number"


def test_a_record_taken_by_two_mappings_is_rejected_naming_them(warehouse, tmp_path):
    twice = PRICINGS + PRICINGS.replace("name: Items", "name: Again")
    compiled = compiled_set(tmp_path, pricings=twice)
    write_items(warehouse, DAY1, ITEMS[:1])
    result = stage(warehouse, compiled["pricings"], [DAY1])
    assert result.rejects_by_check == {"one_mapping_per_record": 1}
    (message,) = query(warehouse, "SELECT DISTINCT message FROM staged.rejects")[0]
    assert "taken by several mappings" in message and "Items" in message


def test_a_code_staged_for_two_records_is_rejected(warehouse, tmp_path):
    same_code = PLANS.replace("  fields:\n", "  fields:\n    code: Product2.Name\n")
    compiled = compiled_set(tmp_path, plans=same_code)
    write_items(warehouse, DAY1, ITEMS[:2])
    result = stage(warehouse, compiled["plans"], [DAY1])
    assert result.rejects_by_check == {"unique_code": 2}


def test_a_missing_raw_partition_stops_the_stage_before_writing(warehouse, compiled):
    with pytest.raises(StageError, match=f"raw.order_item has no partition {DAY1}"):
        stage(warehouse, compiled["pricings"], [DAY1])
    assert warehouse.partitions(REJECTS) == []


def test_a_raw_partition_without_a_mapped_column_names_it(warehouse, compiled):
    write_items(warehouse, DAY1, ITEMS, drop=("Order.Account.Region__c",))
    with pytest.raises(StageError, match=r"lacks Order\.Account\.Region__c"):
        stage(warehouse, compiled["pricings"], [DAY1])


def test_an_unpartitioned_entity_stages_its_whole_source(warehouse, tmp_path):
    compiled = compiled_set(
        tmp_path,
        compound_aggregations="""\
- name: Products
  object: Product2
  where: M3ter_Calculation__c != null
  fields:
    code: M3ter_Aggregation_Code__c
    name: Name
    calculation: M3ter_Calculation__c
    unit: QuantityUnitOfMeasure
  hardcoded:
    quantityPerUnit: 1
    rounding: NONE
""",
    )
    con = duckdb.connect()
    con.execute(
        """CREATE TABLE p AS SELECT * FROM (VALUES
            ('01t000000000001AAA', 'calls_total', 'Calls', 'api_calls + 1', 'call'),
            ('01t000000000002AAA', NULL, 'Plain', NULL, 'each'))
            v("Id", "M3ter_Aggregation_Code__c", "Name", "M3ter_Calculation__c",
              "QuantityUnitOfMeasure")"""
    )
    warehouse.write_partition(
        con,
        raw_table(SourceObject("Product2", partitioned=False)),
        WHOLE,
        'SELECT *, false AS "IsDeleted", now()::TIMESTAMP AS _version_stamp, '
        f"'{WHOLE}' AS _partition, now()::TIMESTAMP AS _extracted_at FROM p",
    )
    result = stage(warehouse, compiled["compound_aggregations"], None)
    assert result.rows_by_partition == {WHOLE: 2}
    rows = query(warehouse, "SELECT code, _tombstone FROM staged.compound_aggregations ORDER BY 2")
    assert rows == [("calls_total", False), (None, True)]


def test_staged_rows_hold_m3ter_fields_and_bookkeeping_only(warehouse, compiled):
    write_items(warehouse, DAY1, ITEMS[:1])
    stage(warehouse, compiled["pricings"], [DAY1])
    columns = [row[0] for row in query(warehouse, "DESCRIBE staged.pricings")]
    assert {"_errors", "_conflict", "unitPrice", "fixedPrice"}.isdisjoint(columns)
    assert {"code", "pricingBands", "segment", "_source_id", "_mapping", "_staged_at"} <= set(
        columns
    )
