"""Which deleted line a new line continues, staged through a real warehouse."""

from __future__ import annotations

import duckdb

from pipeline.extract.objects import SourceObject
from pipeline.extract.refresh import REFRESH
from pipeline.extract.run import raw_table
from pipeline.staging.stage import stage
from pipeline.staging.successions import SUCCESSIONS
from pipeline.warehouse import Warehouse
from tests.staging.test_stage import PRICINGS, compiled_set, query

DAY1, DAY2 = "2024-03-01", "2024-03-02"


def line(n: int) -> str:
    return f"802000000000{n:03d}AAA"


def write_lines(
    warehouse: Warehouse, partition: str, lines: list[tuple], *, created: bool = True
) -> None:
    """OrderItems as (number, deleted, price, created at, modified at) on one order."""
    con = duckdb.connect()
    values = ", ".join(
        f"('{line(n)}', {deleted}, {price}, TIMESTAMP '{made}', TIMESTAMP '{stamp}')"
        for n, deleted, price, made, stamp in lines
    )
    con.execute(
        f"""CREATE TABLE lines AS SELECT
            v.id AS "Id", v.stamp AS "SystemModstamp", v.deleted AS "IsDeleted",
            v.made AS "CreatedDate", true AS "Order.Sync_To_M3ter__c",
            'api_calls' AS "Product2.M3ter_Aggregation_Code__c",
            DATE '2024-01-01' AS "ServiceDate", DATE '2024-12-31' AS "EndDate",
            v.price AS "UnitPrice", 'EMEA' AS "Order.Account.Region__c",
            '801000000000001AAA' AS "OrderId", '0QL000000000001AAA' AS "QuoteLineItemId",
            v.stamp AS _version_stamp, '{partition}' AS _partition,
            now()::TIMESTAMP AS _extracted_at
        FROM (VALUES {values}) v(id, deleted, price, made, stamp)"""
    )
    columns = "*" if created else '* EXCLUDE ("CreatedDate")'
    warehouse.write_partition(
        con, raw_table(SourceObject("OrderItem")), partition, f"SELECT {columns} FROM lines"
    )


def codes(warehouse: Warehouse) -> dict[str, str]:
    """Live staged pricings: source record -> code."""
    rows = query(warehouse, "SELECT _source_id, code FROM staged.pricings WHERE NOT _tombstone")
    return dict(rows)


EARLY = "2024-03-01 09:00:00"
RESYNC = "2024-03-01 12:00:00"


def test_a_line_created_as_an_equal_one_is_deleted_takes_its_code(warehouse, compiled):
    write_lines(warehouse, DAY1, [(1, True, 10.0, EARLY, RESYNC), (2, False, 10.0, RESYNC, RESYNC)])
    stage(warehouse, compiled["pricings"], [DAY1])
    assert codes(warehouse) == {line(2): line(1)}
    assert query(warehouse, "SELECT _source_id, continues FROM staged.successions") == [
        (line(2), line(1))
    ]


def test_a_replacement_with_another_price_is_a_line_of_its_own(warehouse, compiled):
    write_lines(warehouse, DAY1, [(1, True, 10.0, EARLY, RESYNC), (2, False, 12.0, RESYNC, RESYNC)])
    stage(warehouse, compiled["pricings"], [DAY1])
    assert codes(warehouse) == {line(2): line(2)}


def test_a_line_created_long_before_the_delete_is_a_line_of_its_own(warehouse, compiled):
    # two equal lines on one order, and one of them removed: the other was always there
    write_lines(warehouse, DAY1, [(1, True, 10.0, EARLY, RESYNC), (2, False, 10.0, EARLY, RESYNC)])
    stage(warehouse, compiled["pricings"], [DAY1])
    assert codes(warehouse) == {line(2): line(2)}


def test_equal_lines_replaced_together_pair_one_to_one(warehouse, compiled):
    old = [(n, True, 10.0, EARLY, RESYNC) for n in (1, 2)]
    new = [(n, False, 10.0, RESYNC, RESYNC) for n in (3, 4)]
    write_lines(warehouse, DAY1, old + new)
    stage(warehouse, compiled["pricings"], [DAY1])
    assert codes(warehouse) == {line(3): line(1), line(4): line(2)}


def test_a_line_replaced_twice_keeps_its_first_line_s_code(warehouse, compiled):
    write_lines(warehouse, DAY1, [(1, True, 10.0, EARLY, RESYNC), (2, False, 10.0, RESYNC, RESYNC)])
    again = "2024-03-02 08:00:00"
    write_lines(warehouse, DAY2, [(2, True, 10.0, RESYNC, again), (3, False, 10.0, again, again)])
    stage(warehouse, compiled["pricings"], [DAY1])
    stage(warehouse, compiled["pricings"], [DAY2])
    assert codes(warehouse) == {line(3): line(1)}


def test_a_replaced_line_s_tombstone_carries_the_identity_it_had(warehouse, compiled):
    write_lines(warehouse, DAY1, [(1, True, 10.0, EARLY, RESYNC), (2, False, 10.0, RESYNC, RESYNC)])
    later = "2024-03-02 08:00:00"
    write_lines(warehouse, DAY2, [(2, True, 10.0, RESYNC, later)])
    stage(warehouse, compiled["pricings"], [DAY1, DAY2])
    rows = query(warehouse, "SELECT _source_id, _identity FROM staged.pricings WHERE _tombstone")
    assert sorted(rows) == [(line(1), line(1)), (line(2), line(1))]


def test_raw_rows_without_creation_dates_match_nothing(warehouse, compiled):
    lines = [(1, True, 10.0, EARLY, RESYNC), (2, False, 10.0, RESYNC, RESYNC)]
    write_lines(warehouse, DAY1, lines, created=False)
    stage(warehouse, compiled["pricings"], [DAY1])
    assert codes(warehouse) == {line(2): line(2)}


def test_a_mapping_s_identity_field_names_the_line_and_nothing_is_matched(tmp_path, warehouse):
    text = PRICINGS.replace(
        "  sync_level: line_item\n", "  sync_level: line_item\n  identity: QuoteLineItemId\n"
    )
    compiled = compiled_set(tmp_path, pricings=text)
    write_lines(warehouse, DAY1, [(1, True, 10.0, EARLY, RESYNC), (2, False, 10.0, RESYNC, RESYNC)])
    stage(warehouse, compiled["pricings"], [DAY1])
    assert codes(warehouse) == {line(2): "0QL000000000001AAA"}
    assert not warehouse.partitions(SUCCESSIONS)


def test_a_chain_of_replacements_staged_together_pairs_link_by_link(warehouse, compiled):
    again = "2024-03-01 15:00:00"
    lines = [
        (3, True, 10.0, EARLY, RESYNC),
        (2, True, 10.0, RESYNC, again),
        (1, False, 10.0, again, again),
    ]
    write_lines(warehouse, DAY1, lines)
    stage(warehouse, compiled["pricings"], [DAY1])
    assert sorted(query(warehouse, "SELECT _source_id, continues FROM staged.successions")) == [
        (line(1), line(2)),
        (line(2), line(3)),
    ]
    assert codes(warehouse) == {line(1): line(3)}


def test_the_refresh_partition_matches_nothing_and_keeps_the_identities(warehouse, compiled):
    write_lines(warehouse, DAY1, [(1, True, 10.0, EARLY, RESYNC), (2, False, 10.0, RESYNC, RESYNC)])
    stage(warehouse, compiled["pricings"], [DAY1])
    later = "2024-03-05 08:00:00"
    write_lines(
        warehouse, REFRESH, [(2, False, 11.0, RESYNC, later), (3, True, 11.0, RESYNC, RESYNC)]
    )
    stage(warehouse, compiled["pricings"], [REFRESH])
    assert codes(warehouse) == {line(2): line(1)}
    assert warehouse.partitions(SUCCESSIONS) == [f"order_item.{DAY1}"]
