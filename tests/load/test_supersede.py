"""Account plans of one account and product never overlap: the newer deal supersedes."""

from __future__ import annotations

import datetime as dt

import duckdb

from pipeline.extract.objects import SourceObject
from pipeline.extract.run import raw_table
from pipeline.load.groups import REFUSED, objects
from pipeline.load.run import load, staged_rows
from pipeline.load.supersede import SUPERSEDED_BY, account_plan_rows
from pipeline.staging.stage import stage
from pipeline.warehouse import Warehouse
from tests.load.conftest import ACCOUNTS, DAY1, DAY2, item

DATA = "data_platform_standard"
COMPUTE = "compute_standard"


def write_items(
    warehouse: Warehouse, partition: str, items: list[tuple[int, str, str | None, str]]
) -> None:
    """The first account, and OrderItems as (number, service date, end date, plan template)."""
    con = duckdb.connect()
    meta = (
        f"TIMESTAMP '{partition} 10:00:00' AS _version_stamp, '{partition}' AS _partition, "
        "now()::TIMESTAMP AS _extracted_at"
    )
    con.execute(
        f"""CREATE TABLE a AS SELECT '{ACCOUNTS[0]}' AS "Id", false AS "IsDeleted",
            'Account one' AS "Name", 'billing@example.com' AS "Billing_Email__c", {meta}"""
    )
    rows = ", ".join(
        f"('{item(n)}', DATE '{start}', {f'DATE {end!r}' if end else 'NULL::DATE'}, '{t}')"
        for n, start, end, t in items
    )
    con.execute(
        f"""CREATE TABLE i AS SELECT id AS "Id", false AS "IsDeleted",
            true AS "Order.Sync_To_M3ter__c", 'Product' AS "Product2.Name",
            template AS "Product2.M3ter_Plan_Template_Code__c",
            'transfer_gb' AS "Product2.M3ter_Aggregation_Code__c",
            start AS "ServiceDate", "end" AS "EndDate", 0.05 AS "UnitPrice",
            '{ACCOUNTS[0]}' AS "Order.AccountId", '801' || substr(id, 4) AS "OrderId",
            {meta}
            FROM (VALUES {rows}) v(id, start, "end", template)"""
    )
    warehouse.write_partition(con, raw_table(SourceObject("Account")), partition, "FROM a")
    warehouse.write_partition(con, raw_table(SourceObject("OrderItem")), partition, "FROM i")


def staged(warehouse, compiled, *partitions: str) -> None:
    for entity in ("plans", "account_plans"):
        stage(warehouse, compiled[entity], list(partitions))


def rows_by_item(warehouse, partitions, products=None) -> dict[str, dict]:
    con = warehouse.connect()
    try:
        objects(warehouse, con, "account_plans", partitions)
        rows = account_plan_rows(warehouse, con, products or {})
    finally:
        con.close()
    return {row["_source_id"]: row for row in rows}


def test_a_newer_account_plan_ends_the_older_one_at_its_start(warehouse, compiled):
    write_items(warehouse, DAY1, [(1, "2024-01-01", "2024-12-31", DATA)])
    write_items(warehouse, DAY2, [(2, "2024-06-01", "2025-05-31", DATA)])
    staged(warehouse, compiled, DAY1, DAY2)
    rows = rows_by_item(warehouse, None)
    assert rows[item(1)]["endDate"] == "2024-06-01T00:00:00Z"
    assert rows[item(1)][SUPERSEDED_BY] == item(2)
    assert rows[item(2)]["endDate"] == "2025-06-01T00:00:00Z"
    assert rows[item(2)][SUPERSEDED_BY] is None


def test_an_open_ended_account_plan_is_ended_by_its_successor(warehouse, compiled):
    write_items(warehouse, DAY1, [(1, "2024-01-01", None, DATA), (2, "2024-03-01", None, DATA)])
    staged(warehouse, compiled, DAY1)
    rows = rows_by_item(warehouse, [DAY1])
    assert rows[item(1)]["endDate"] == "2024-03-01T00:00:00Z"
    assert rows[item(2)]["endDate"] is None


def test_an_account_plan_that_ends_before_the_next_starts_is_kept(warehouse, compiled):
    write_items(
        warehouse, DAY1, [(1, "2024-01-01", "2024-02-29", DATA), (2, "2024-06-01", None, DATA)]
    )
    staged(warehouse, compiled, DAY1)
    rows = rows_by_item(warehouse, [DAY1])
    assert rows[item(1)]["endDate"] == "2024-03-01T00:00:00Z"
    assert rows[item(1)][SUPERSEDED_BY] is None


def test_account_plans_of_different_products_do_not_supersede(warehouse, compiled):
    write_items(warehouse, DAY1, [(1, "2024-01-01", None, DATA), (2, "2024-03-01", None, COMPUTE)])
    staged(warehouse, compiled, DAY1)
    rows = rows_by_item(warehouse, [DAY1], {DATA: "product-a", COMPUTE: "product-b"})
    assert rows[item(1)]["endDate"] is None and rows[item(2)]["endDate"] is None


def test_plan_templates_of_one_m3ter_product_supersede(warehouse, compiled):
    write_items(warehouse, DAY1, [(1, "2024-01-01", None, DATA), (2, "2024-03-01", None, COMPUTE)])
    staged(warehouse, compiled, DAY1)
    rows = rows_by_item(warehouse, [DAY1], {DATA: "product-a", COMPUTE: "product-a"})
    assert rows[item(1)]["endDate"] == "2024-03-01T00:00:00Z"


def test_of_two_starting_together_the_smaller_code_keeps_the_slot(warehouse, compiled):
    write_items(warehouse, DAY1, [(1, "2024-01-01", None, DATA), (2, "2024-01-01", None, DATA)])
    staged(warehouse, compiled, DAY1)
    rows = rows_by_item(warehouse, [DAY1])
    assert rows[item(1)][REFUSED] is None
    assert item(1) in rows[item(2)][REFUSED]


def test_loading_a_later_partition_brings_the_account_plans_it_supersedes(warehouse, compiled):
    write_items(warehouse, DAY1, [(1, "2024-01-01", None, DATA)])
    write_items(warehouse, DAY2, [(2, "2024-06-01", None, DATA)])
    staged(warehouse, compiled, DAY1, DAY2)
    rows = rows_by_item(warehouse, [DAY2])
    assert set(rows) == {item(1), item(2)}
    assert rows[item(1)]["_partition"] == DAY1
    assert rows[item(1)]["endDate"] == "2024-06-01T00:00:00Z"


def test_m3ter_accepts_overlapping_deals_once_superseded(client, warehouse, compiled):
    write_items(warehouse, DAY1, [(1, "2024-01-01", "2024-12-31", DATA)])
    staged(warehouse, compiled, DAY1)
    stage(warehouse, compiled["accounts"], [DAY1])
    for entity in ("accounts", "plans", "account_plans"):
        load(client, warehouse, entity, [DAY1])
    write_items(warehouse, DAY2, [(2, "2024-06-01", "2025-05-31", DATA)])
    staged(warehouse, compiled, DAY2)
    load(client, warehouse, "plans", [DAY2])
    result = load(client, warehouse, "account_plans", [DAY2])
    assert result.outcomes == {"update:applied": 1, "create:applied": 1}
    ends = {p["code"]: p.get("endDate") for p in client.list("accountplans")}
    assert ends[item(1)].startswith("2024-06-01") and ends[item(2)].startswith("2025-06-01")


def test_a_same_day_rival_is_refused_with_its_reason(client, warehouse, compiled):
    write_items(warehouse, DAY1, [(1, "2024-01-01", None, DATA), (2, "2024-01-01", None, DATA)])
    staged(warehouse, compiled, DAY1)
    stage(warehouse, compiled["accounts"], [DAY1])
    for entity in ("accounts", "plans"):
        load(client, warehouse, entity, [DAY1])
    result = load(client, warehouse, "account_plans", [DAY1])
    assert result.outcomes == {"create:applied": 1, "reject:rejected": 1}
    ((source, message),) = result.rejects
    assert source == item(2) and item(1) in message and "one active account plan" in message


def _smaller_code_after_its_rival(client, warehouse, compiled, start: str):
    """Item 2 loaded on day 1; item 1, same start and product, staged and loaded on day 2."""
    write_items(warehouse, DAY1, [(2, start, None, DATA)])
    staged(warehouse, compiled, DAY1)
    stage(warehouse, compiled["accounts"], [DAY1])
    for entity in ("accounts", "plans", "account_plans"):
        load(client, warehouse, entity, [DAY1])
    write_items(warehouse, DAY2, [(1, start, None, DATA)])
    staged(warehouse, compiled, DAY2)
    load(client, warehouse, "plans", [DAY2])
    return load(client, warehouse, "account_plans", [DAY2])


def test_a_rival_m3ter_holds_gives_way_while_it_has_not_started(client, warehouse, compiled):
    start = (dt.datetime.now(dt.UTC).date() + dt.timedelta(days=30)).isoformat()
    result = _smaller_code_after_its_rival(client, warehouse, compiled, start)
    assert result.outcomes == {"delete:applied": 1, "create:applied": 1}
    assert [p["code"] for p in client.list("accountplans")] == [item(1)]


def test_a_rival_that_has_started_billing_keeps_its_slot(client, warehouse, compiled):
    result = _smaller_code_after_its_rival(client, warehouse, compiled, "2024-01-01")
    assert result.outcomes == {"unchanged:unchanged": 1, "create:rejected": 1}
    assert [p["code"] for p in client.list("accountplans")] == [item(2)]


def test_staged_rows_of_other_entities_are_not_touched(warehouse, compiled):
    write_items(warehouse, DAY1, [(1, "2024-01-01", None, DATA), (2, "2024-03-01", None, DATA)])
    staged(warehouse, compiled, DAY1)
    rows = staged_rows(warehouse, "plans", [DAY1])
    assert {row["_source_id"] for row in rows} == {item(1), item(2)}
    assert all(REFUSED not in row for row in rows)
