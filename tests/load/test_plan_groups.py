"""An agreement as one plan group: a plan per product linked to it, one account plan on it."""

from __future__ import annotations

from pathlib import Path

import duckdb
import pytest

from pipeline.extract.objects import SourceObject
from pipeline.extract.run import raw_table
from pipeline.load.coverage import coverage
from pipeline.load.current import Current
from pipeline.load.run import load
from pipeline.mapping.compiler import CompiledSet
from pipeline.staging.stage import stage
from pipeline.warehouse import Warehouse
from tests.load.conftest import ACCOUNTS, DAY1, DAY2, MAPPINGS, compile_texts, item
from tests.load.conftest import run as run_entities
from tests.load.test_groups import AGREEMENT_MAPPINGS, GROUP
from tests.load.test_lost_answers import lossy  # noqa: F401 (a fixture)

WHERE = "Order.Sync_To_M3ter__c = true"
GROUP_MAPPINGS = {
    "accounts": MAPPINGS["accounts"],
    "plans": AGREEMENT_MAPPINGS["plans"],
    "pricings": f"""\
- name: Items
  object: OrderItem
  where: {WHERE}
  sync_level: agreement
  fields:
    planCode: '{GROUP}'
    aggregationCode: Product2.M3ter_Aggregation_Code__c
    startDate: ServiceDate
    endDate: EndDate
    unitPrice: UnitPrice
""",
    "plan_groups": f"""\
- name: Orders
  object: OrderItem
  where: {WHERE}
  sync_level: agreement
  fields:
    code: '{{OrderId}}'
    name: '{{Order.Name}}'
    currency: Order.CurrencyIsoCode
    accountCode: Order.AccountId
""",
    "plan_group_links": f"""\
- name: Orders
  object: OrderItem
  where: {WHERE}
  sync_level: agreement
  fields:
    code: '{GROUP}'
    planGroupCode: '{{OrderId}}'
    planCode: '{GROUP}'
""",
    "account_plans": f"""\
- name: Orders
  object: OrderItem
  where: {WHERE}
  sync_level: agreement
  fields:
    code: '{{OrderId}}'
    accountCode: Order.AccountId
    planGroupCode: '{{OrderId}}'
    startDate: ServiceDate
    endDate: EndDate
  combine:
    startDate: earliest
    endDate: latest
""",
}
ENTITIES = ("accounts", "plans", "pricings", "plan_groups", "plan_group_links", "account_plans")
FIRST, RENEWAL = "801000000000001AAA", "801000000000002AAA"
# m3ter product -> (plan template, aggregation) of the demo catalogue
PRODUCTS = {
    "data_platform": ("data_platform_standard", "transfer_gb"),
    "messaging": ("messaging_standard", "messages_sent"),
}
# (item number, order, m3ter product, start, end)
Line = tuple[int, str, str, str, str]
BUNDLE: list[Line] = [
    (1, FIRST, "data_platform", "2024-01-01", "2024-12-31"),
    (2, FIRST, "messaging", "2024-01-01", "2024-12-31"),
]


@pytest.fixture
def compiled(tmp_path: Path) -> CompiledSet:
    return compile_texts(tmp_path, GROUP_MAPPINGS)


def write_lines(
    warehouse: Warehouse, partition: str, lines: list[Line], currency: str = "USD"
) -> None:
    """The first account, and OrderItems of its orders, one product each."""
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
        f"('{item(n)}', '{order}', '{product}', '{PRODUCTS[product][0]}', "
        f"'{PRODUCTS[product][1]}', DATE '{start}', DATE '{end}')"
        for n, order, product, start, end in lines
    )
    con.execute(
        f"""CREATE TABLE i AS SELECT id AS "Id", false AS "IsDeleted",
            true AS "Order.Sync_To_M3ter__c", 'Order ' || right(order_id, 4) AS "Order.Name",
            order_id AS "OrderId", '{ACCOUNTS[0]}' AS "Order.AccountId",
            '{currency}' AS "Order.CurrencyIsoCode",
            'Product' AS "Product2.Name", product AS "Product2.M3ter_Product_Code__c",
            template AS "Product2.M3ter_Plan_Template_Code__c",
            NULL::VARCHAR AS "Order.Account.Region__c",
            aggregation AS "Product2.M3ter_Aggregation_Code__c",
            start AS "ServiceDate", "end" AS "EndDate", 0.05 AS "UnitPrice", {meta}
            FROM (VALUES {rows}) v(id, order_id, product, template, aggregation, start, "end")"""
    )
    warehouse.write_partition(con, raw_table(SourceObject("Account")), partition, "FROM a")
    warehouse.write_partition(con, raw_table(SourceObject("OrderItem")), partition, "FROM i")


def run(client, warehouse, compiled, partition: str) -> dict[str, dict[str, int]]:
    return run_entities(client, warehouse, compiled, partition, ENTITIES)


def held(client, collection: str) -> list[dict]:
    return list(client.list(collection))


def test_an_agreement_becomes_one_plan_group_linking_a_plan_per_product(
    client, warehouse, compiled
):
    write_lines(warehouse, DAY1, BUNDLE)
    outcomes = run(client, warehouse, compiled, DAY1)
    assert outcomes["plan_groups"] == {"create:applied": 1}
    assert outcomes["plan_group_links"] == {"create:applied": 2}
    (group,) = held(client, "plangroups")
    assert (group["code"], group["name"], group["currency"]) == (FIRST, "Order 1AAA", "USD")
    plans = {plan["id"] for plan in held(client, "plans")}
    links = held(client, "plangrouplinks")
    assert {link["planId"] for link in links} == plans and len(plans) == 2
    assert {link["planGroupId"] for link in links} == {group["id"]}


def test_one_account_plan_attaches_the_whole_group(client, warehouse, compiled):
    write_lines(warehouse, DAY1, BUNDLE)
    outcomes = run(client, warehouse, compiled, DAY1)
    assert outcomes["account_plans"] == {"create:applied": 1}
    (account_plan,) = held(client, "accountplans")
    assert account_plan["planGroupId"] == held(client, "plangroups")[0]["id"]
    assert account_plan["planId"] is None
    assert account_plan["endDate"].startswith("2025-01-01")


def test_a_second_run_of_a_grouped_agreement_writes_nothing(client, warehouse, compiled):
    write_lines(warehouse, DAY1, BUNDLE)
    run(client, warehouse, compiled, DAY1)
    writes = client.writes
    run(client, warehouse, compiled, DAY1)
    assert client.writes == writes


def test_a_product_added_to_a_loaded_agreement_joins_its_group(client, warehouse, compiled):
    write_lines(warehouse, DAY1, BUNDLE[:1])
    run(client, warehouse, compiled, DAY1)
    write_lines(warehouse, DAY2, BUNDLE[1:])
    outcomes = run(client, warehouse, compiled, DAY2)
    assert outcomes["plan_groups"] == {"unchanged:unchanged": 1}
    assert outcomes["plan_group_links"] == {"create:applied": 1}
    assert outcomes["account_plans"] == {"unchanged:unchanged": 1}
    assert len(held(client, "plangrouplinks")) == 2 and len(held(client, "accountplans")) == 1


def test_a_link_m3ter_holds_without_the_warehouse_knowing_is_not_made_twice(
    client, warehouse, compiled, tmp_path
):
    write_lines(warehouse, DAY1, BUNDLE)
    run(client, warehouse, compiled, DAY1)
    fresh = Warehouse(tmp_path / "fresh")
    write_lines(fresh, DAY1, BUNDLE)
    outcomes = run(client, fresh, compiled, DAY1)
    assert outcomes["plan_groups"] == {"unchanged:unchanged": 1}
    assert outcomes["plan_group_links"] == {"unchanged:unchanged": 2}
    assert len(held(client, "plangroups")) == 1 and len(held(client, "plangrouplinks")) == 2


# The links in the default run, the groups too in the reliability suite.
@pytest.mark.parametrize(
    "collection", [pytest.param("plangroups", marks=pytest.mark.full), "plangrouplinks"]
)
def test_lost_answers_leave_one_group_and_one_link_per_plan(
    lossy,  # noqa: F811
    warehouse,
    compiled,
    collection,
):
    write_lines(warehouse, DAY1, BUNDLE)
    for client in lossy(collection, rate=1.0):
        outcomes = run(client, warehouse, compiled, DAY1)
        assert outcomes["plan_groups"] == {"create:applied": 1}
        assert outcomes["plan_group_links"] == {"create:applied": 2}
        assert len(held(client, "plangroups")) == 1
        assert len(held(client, "plangrouplinks")) == 2


def test_a_renewal_s_group_ends_the_group_it_renews(client, warehouse, compiled):
    renewal = [
        (n, RENEWAL, product, "2024-07-01", "2025-06-30") for n, product in enumerate(PRODUCTS, 3)
    ]
    write_lines(warehouse, DAY1, [*BUNDLE, *renewal])
    outcomes = run(client, warehouse, compiled, DAY1)
    assert outcomes["account_plans"] == {"create:applied": 2}
    by_group = {ap["planGroupId"]: ap for ap in held(client, "accountplans") if ap["planGroupId"]}
    groups = {group["code"]: group["id"] for group in held(client, "plangroups")}
    assert by_group[groups[FIRST]]["endDate"].startswith("2024-07-01")
    assert by_group[groups[RENEWAL]]["startDate"].startswith("2024-07-01")


def test_coverage_counts_lines_billed_through_a_group_billable(client, warehouse, compiled):
    write_lines(warehouse, DAY1, BUNDLE)
    run(client, warehouse, compiled, DAY1)
    found = coverage(warehouse, {})
    assert (found.lines, found.billable, found.findings) == (2, 2, [])


def test_coverage_traces_a_line_to_the_link_m3ter_refused(client, warehouse, compiled):
    write_lines(warehouse, DAY1, BUNDLE, currency="EUR")
    run(client, warehouse, compiled, DAY1)
    found = coverage(warehouse, {})
    assert (found.lines, found.billable) == (2, 0)
    (finding,) = found.findings
    assert (finding.entity, finding.roots, finding.lines) == ("plan_group_links", 2, 2)
    assert "is priced in USD, PlanGroup" in finding.reason


def test_coverage_names_a_group_a_renewal_ends_before_one_of_its_products_is_done(
    client, warehouse, compiled
):
    renewal = [(3, RENEWAL, "data_platform", "2024-07-01", "2025-06-30")]
    write_lines(warehouse, DAY1, [*BUNDLE, *renewal])
    run(client, warehouse, compiled, DAY1)
    found = coverage(warehouse, {})
    assert (found.lines, found.billable) == (3, 2)  # messaging stops with the first group
    (finding,) = found.findings
    assert (finding.entity, finding.lines) == ("account_plans", 1)
    assert "a plan group's account plan ends whole" in finding.reason


def test_a_dry_run_plans_the_group_its_links_and_its_account_plan_without_a_write(
    client, warehouse, compiled
):
    write_lines(warehouse, DAY1, BUNDLE)
    current, writes = Current(client), client.writes
    planned = {}
    for entity in ENTITIES:
        stage(warehouse, compiled[entity], [DAY1])
        result = load(client, warehouse, entity, [DAY1], dry_run=True, current=current)
        planned[entity] = result.actions
    assert planned["plan_groups"] == {"create": 1}
    assert planned["plan_group_links"] == {"create": 2}
    assert planned["account_plans"] == {"create": 1}
    assert client.writes == writes
