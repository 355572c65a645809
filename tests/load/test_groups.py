"""Lines of one agreement and product make one plan and one account plan, a pricing per line."""

from __future__ import annotations

from pathlib import Path

import duckdb
import pytest

from pipeline.extract.objects import SourceObject
from pipeline.extract.run import raw_table
from pipeline.load.coverage import coverage
from pipeline.load.run import load
from pipeline.mapping.compiler import CompiledSet
from pipeline.staging.stage import stage
from pipeline.warehouse import Warehouse
from tests.load.conftest import ACCOUNTS, DAY1, DAY2, MAPPINGS, compile_texts, item
from tests.load.conftest import run as run_entities

GROUP = "{OrderId}_{Product2.M3ter_Product_Code__c}"
AGREEMENT_MAPPINGS = {
    "accounts": MAPPINGS["accounts"],
    "plans": f"""\
- name: Items
  object: OrderItem
  where: Order.Sync_To_M3ter__c = true
  sync_level: agreement
  fields:
    code: '{GROUP}'
    name: '{{Order.Name}}: {{Product2.M3ter_Product_Code__c}}'
    planTemplateCode: Product2.M3ter_Plan_Template_Code__c
""",
    "pricings": f"""\
- name: Items
  object: OrderItem
  where: Order.Sync_To_M3ter__c = true AND Product2.M3ter_Aggregation_Code__c = 'transfer_gb'
  sync_level: agreement
  fields:
    planCode: '{GROUP}'
    aggregationCode: Product2.M3ter_Aggregation_Code__c
    startDate: ServiceDate
    endDate: EndDate
    unitPrice: UnitPrice
- name: Regional_Items
  object: OrderItem
  where: Order.Sync_To_M3ter__c = true AND Product2.M3ter_Aggregation_Code__c = 'storage_gb'
  sync_level: agreement
  fields:
    planCode: '{GROUP}'
    aggregationCode: Product2.M3ter_Aggregation_Code__c
    startDate: ServiceDate
    endDate: EndDate
    unitPrice: UnitPrice
  segments: 'region: Order.Account.Region__c'
""",
    "account_plans": f"""\
- name: Items
  object: OrderItem
  where: Order.Sync_To_M3ter__c = true
  sync_level: agreement
  fields:
    code: '{GROUP}'
    accountCode: Order.AccountId
    planCode: '{GROUP}'
    startDate: ServiceDate
    endDate: EndDate
  combine:
    startDate: earliest
    endDate: latest
""",
}
ENTITIES = ("accounts", "plans", "pricings", "account_plans")
ORDER = "801000000000001AAA"
DATA = ("data_platform", "data_platform_standard")
# (item number, aggregation, start, end, deleted); product data_platform unless said
Line = tuple[int, str, str, str, bool]


@pytest.fixture
def compiled(tmp_path: Path) -> CompiledSet:
    return compile_texts(tmp_path, AGREEMENT_MAPPINGS)


def write_lines(
    warehouse: Warehouse,
    partition: str,
    lines: list[Line],
    template: str = DATA[1],
    with_account: bool = True,
    email: str | None = "billing@example.com",
) -> None:
    """The first account, and OrderItems of one order billing one m3ter product."""
    con = duckdb.connect()
    meta = (
        f"TIMESTAMP '{partition} 10:00:00' AS _version_stamp, '{partition}' AS _partition, "
        "now()::TIMESTAMP AS _extracted_at"
    )
    con.execute(
        f"""CREATE TABLE a AS SELECT '{ACCOUNTS[0]}' AS "Id", false AS "IsDeleted",
            'Account one' AS "Name", {f"'{email}'" if email else "NULL"} AS "Billing_Email__c",
            {meta} WHERE {with_account}"""
    )
    rows = ", ".join(
        f"('{item(n)}', '{aggregation}', DATE '{start}', DATE '{end}', {deleted})"
        for n, aggregation, start, end, deleted in lines
    )
    con.execute(
        f"""CREATE TABLE i AS SELECT id AS "Id", deleted AS "IsDeleted",
            true AS "Order.Sync_To_M3ter__c", 'Order one' AS "Order.Name",
            '{ORDER}' AS "OrderId", '{ACCOUNTS[0]}' AS "Order.AccountId",
            'Product' AS "Product2.Name", '{DATA[0]}' AS "Product2.M3ter_Product_Code__c",
            '{template}' AS "Product2.M3ter_Plan_Template_Code__c",
            NULL::VARCHAR AS "Order.Account.Region__c",
            aggregation AS "Product2.M3ter_Aggregation_Code__c",
            start AS "ServiceDate", "end" AS "EndDate", 0.05 AS "UnitPrice", {meta}
            FROM (VALUES {rows}) v(id, aggregation, start, "end", deleted)"""
    )
    warehouse.write_partition(con, raw_table(SourceObject("Account")), partition, "FROM a")
    warehouse.write_partition(con, raw_table(SourceObject("OrderItem")), partition, "FROM i")


def run(client, warehouse, compiled, partition: str) -> dict[str, dict[str, int]]:
    return run_entities(client, warehouse, compiled, partition, ENTITIES)


def held(client, collection: str) -> dict[str, dict]:
    return {obj["code"]: obj for obj in client.list(collection)}


TWO = [
    (1, "storage_gb", "2024-01-01", "2024-12-31", False),
    (2, "transfer_gb", "2024-03-01", "2025-02-28", False),
]
CODE = f"{ORDER}_{DATA[0]}"


def test_lines_of_one_agreement_and_product_share_one_plan_and_one_account_plan(
    client, warehouse, compiled
):
    write_lines(warehouse, DAY1, TWO)
    outcomes = run(client, warehouse, compiled, DAY1)
    assert outcomes["plans"] == {"create:applied": 1}
    assert outcomes["pricings"] == {"create:applied": 2}
    assert outcomes["account_plans"] == {"create:applied": 1}
    plan = held(client, "plans")[CODE]
    assert plan["name"] == "Order one: data_platform"
    assert {p["planId"] for p in client.list("pricings")} == {plan["id"]}
    account_plan = held(client, "accountplans")[CODE]
    assert account_plan["startDate"].startswith("2024-01-01")
    assert account_plan["endDate"].startswith("2025-03-01")


def test_a_second_run_of_a_grouped_agreement_writes_nothing(client, warehouse, compiled):
    write_lines(warehouse, DAY1, TWO)
    run(client, warehouse, compiled, DAY1)
    writes = client.writes
    run(client, warehouse, compiled, DAY1)
    assert client.writes == writes


def test_rows_that_disagree_are_refused_together_naming_the_rows_and_the_field(
    client, warehouse, compiled
):
    write_lines(warehouse, DAY1, TWO[:1])
    write_lines(warehouse, DAY2, TWO[1:], template="compute_standard")
    stage(warehouse, compiled["plans"], [DAY1, DAY2])
    result = load(client, warehouse, "plans", [DAY1, DAY2])
    assert result.outcomes == {"reject:rejected": 1}
    ((source, message),) = result.rejects
    assert source == CODE
    assert item(1) in message and item(2) in message
    assert "planTemplateCode (compute_standard / data_platform_standard)" in message


def test_a_group_s_rows_staged_in_different_partitions_make_one_object(client, warehouse, compiled):
    write_lines(warehouse, DAY1, TWO[:1])
    run(client, warehouse, compiled, DAY1)
    write_lines(warehouse, DAY2, TWO[1:])
    outcomes = run(client, warehouse, compiled, DAY2)
    assert outcomes["plans"] == {"unchanged:unchanged": 1}
    assert outcomes["pricings"] == {"create:applied": 1}
    assert outcomes["account_plans"] == {"update:applied": 1}
    assert held(client, "accountplans")[CODE]["endDate"].startswith("2025-03-01")
    assert len(held(client, "plans")) == 1


def test_a_line_deleted_from_a_group_ends_its_pricing_and_leaves_the_plan(
    client, warehouse, compiled
):
    write_lines(warehouse, DAY1, TWO)
    run(client, warehouse, compiled, DAY1)
    write_lines(warehouse, DAY2, [(2, "transfer_gb", "2024-03-01", "2025-02-28", True)])
    outcomes = run(client, warehouse, compiled, DAY2)
    assert outcomes["pricings"] == {"end_date:applied": 1}
    assert outcomes["plans"] == {"unchanged:unchanged": 1}
    # the account plan now runs as its one remaining line does
    assert outcomes["account_plans"] == {"update:applied": 1}
    assert held(client, "accountplans")[CODE]["endDate"].startswith("2025-01-01")


def test_the_last_line_gone_ends_the_account_plan(client, warehouse, compiled):
    write_lines(warehouse, DAY1, TWO[:1])
    run(client, warehouse, compiled, DAY1)
    write_lines(warehouse, DAY2, [(1, "storage_gb", "2024-01-01", "2024-12-31", True)])
    outcomes = run(client, warehouse, compiled, DAY2)
    assert outcomes["account_plans"] == {"end_date:applied": 1}
    assert outcomes["plans"] == {"unchanged:unchanged": 1}  # plans have no end; kept


def test_two_lines_pricing_the_same_usage_at_once_are_both_refused(client, warehouse, compiled):
    same = [
        (1, "storage_gb", "2024-01-01", "2024-12-31", False),
        (2, "storage_gb", "2024-06-01", "2025-05-31", False),
    ]
    write_lines(warehouse, DAY1, same)
    outcomes = run(client, warehouse, compiled, DAY1)
    assert outcomes["pricings"] == {"reject:rejected": 2}
    result = load(client, warehouse, "pricings", [DAY1])
    messages = dict(result.rejects)
    assert item(2) in messages[item(1)] and item(1) in messages[item(2)]
    assert "m3ter prices one at a time" in messages[item(1)]


def test_coverage_traces_unbilled_lines_to_the_account_at_their_root(client, warehouse, compiled):
    write_lines(warehouse, DAY1, TWO, email=None)
    run(client, warehouse, compiled, DAY1)
    found = coverage(warehouse, {})
    assert (found.lines, found.billable) == (2, 0)
    (finding,) = found.findings
    assert (finding.entity, finding.roots, finding.lines) == ("accounts", 1, 2)
    assert "emailAddress is required" in str(finding)


def test_coverage_counts_every_line_of_a_loaded_agreement_as_billable(client, warehouse, compiled):
    write_lines(warehouse, DAY1, TWO)
    run(client, warehouse, compiled, DAY1)
    found = coverage(warehouse, {})
    assert (found.lines, found.billable, found.findings) == (2, 2, [])
    con = duckdb.connect()
    try:
        files = warehouse.root / "data" / "load" / "coverage" / "*.parquet"
        rows = con.execute(f"SELECT source_id, billable FROM read_parquet('{files}')").fetchall()
    finally:
        con.close()
    assert sorted(rows) == [(item(1), True), (item(2), True)]
