"""The m3ter sandbox and a small mapping set shared by the load suites."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import replace
from pathlib import Path

import duckdb
import pytest

from pipeline.extract.objects import SourceObject
from pipeline.extract.run import raw_table
from pipeline.load.run import load
from pipeline.m3ter.client import M3terClient
from pipeline.m3ter.settings import sandbox_settings
from pipeline.mapping.compiler import CompiledSet, compile_mappings
from pipeline.mapping.files import load_mappings
from pipeline.mapping.spec import Entity
from pipeline.sandbox.m3ter import M3terConfig
from pipeline.sandbox.server import running_sandbox
from pipeline.staging.stage import stage
from pipeline.warehouse import Warehouse
from tests.shipped import describe

DAY1, DAY2 = "2024-03-01", "2024-03-02"
ENTITIES: tuple[Entity, ...] = ("accounts", "plans", "pricings", "account_plans")
MAPPINGS = {
    "accounts": """\
- name: Accounts
  object: Account
  fields:
    name: Name
    emailAddress: Billing_Email__c
""",
    "plans": """\
- name: Items
  object: OrderItem
  where: Order.Sync_To_M3ter__c = true
  sync_level: line_item
  fields:
    name: Product2.Name
    planTemplateCode: Product2.M3ter_Plan_Template_Code__c
""",
    "pricings": """\
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
""",
    "account_plans": """\
- name: Items
  object: OrderItem
  where: Order.Sync_To_M3ter__c = true
  sync_level: line_item
  fields:
    accountCode: Order.AccountId
    planCode: Id
    startDate: ServiceDate
    endDate: EndDate
""",
}
ACCOUNTS = ["001000000000001AAA", "001000000000002AAA", "001000000000003AAA"]


def item(n: int) -> str:
    return f"802000000000{n:03d}AAA"


@pytest.fixture(scope="module")
def m3ter_sandbox(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    state = tmp_path_factory.mktemp("m3ter")
    with running_sandbox(state, m3ter=M3terConfig(state_dir=state / "m3ter")) as running:
        yield running.info()["m3ter"]


@pytest.fixture
def client(m3ter_sandbox: dict[str, str]) -> Iterator[M3terClient]:
    # The demo's pace: the sandbox, like m3ter, allows 50 requests/s.
    client = M3terClient(replace(sandbox_settings(m3ter_sandbox), rate_limit=45.0))
    _reset(client)
    yield client


def _reset(client: M3terClient) -> None:
    """Remove what earlier tests created (referrers first); the seeded catalogue stays."""
    collections = (
        "externalmappings",
        "commitments",
        "accountplans",
        "plangrouplinks",
        "plangroups",
        "pricings",
        "plans",
    )
    for collection in (*collections, "accounts"):
        for obj in list(client.list(collection)):
            client.delete(collection, obj["id"])


def compile_texts(tmp_path: Path, texts: Mapping[str, str]) -> CompiledSet:
    """Mapping files of these texts (entity -> YAML), compiled against the demo describe."""
    directory = tmp_path / "mappings"
    directory.mkdir()
    for entity, text in texts.items():
        (directory / f"{entity}.yaml").write_text(text)
    return compile_mappings(load_mappings(directory), describe)


@pytest.fixture
def compiled(tmp_path: Path) -> CompiledSet:
    return compile_texts(tmp_path, MAPPINGS)


@pytest.fixture
def warehouse(tmp_path: Path) -> Warehouse:
    return Warehouse(tmp_path / "warehouse")


def write_raw(
    warehouse: Warehouse,
    partition: str,
    items: list[tuple[int, str, float, bool]],
    accounts: list[str] = ACCOUNTS,
    stamp: str = "10:00:00",
    order: str | None = None,
) -> None:
    """Accounts, and OrderItems as (number, account, unit price, deleted), each created at its
    stamp and on an order of its own unless `order` names one for all."""
    con = duckdb.connect()
    meta = (
        f"TIMESTAMP '{partition} {stamp}' AS _version_stamp, '{partition}' AS _partition, "
        "now()::TIMESTAMP AS _extracted_at"
    )
    account_rows = ", ".join(f"('{a}', 'Account {a[-5:]}')" for a in accounts) or "(NULL, NULL)"
    con.execute(
        f"""CREATE TABLE a AS SELECT id AS "Id", false AS "IsDeleted", name AS "Name",
            'billing@example.com' AS "Billing_Email__c", {meta}
            FROM (VALUES {account_rows}) v(id, name) WHERE id IS NOT NULL"""
    )
    item_rows = ", ".join(f"('{item(n)}', '{a}', {p}, {d})" for n, a, p, d in items)
    con.execute(
        f"""CREATE TABLE i AS SELECT id AS "Id", deleted AS "IsDeleted",
            true AS "Order.Sync_To_M3ter__c", 'Data Transfer' AS "Product2.Name",
            'data_platform_standard' AS "Product2.M3ter_Plan_Template_Code__c",
            'transfer_gb' AS "Product2.M3ter_Aggregation_Code__c",
            DATE '2024-01-01' AS "ServiceDate", DATE '2024-12-31' AS "EndDate",
            price AS "UnitPrice", account AS "Order.AccountId",
            {f"'{order}'" if order else "'801' || substr(id, 4)"} AS "OrderId",
            TIMESTAMP '{partition} {stamp}' AS "CreatedDate", {meta}
            FROM (VALUES {item_rows}) v(id, account, price, deleted)"""
    )
    warehouse.write_partition(con, raw_table(SourceObject("Account")), partition, "FROM a")
    warehouse.write_partition(con, raw_table(SourceObject("OrderItem")), partition, "FROM i")


def run(
    client: M3terClient,
    warehouse: Warehouse,
    compiled: CompiledSet,
    partition: str,
    entities: Sequence[Entity] = ENTITIES,
) -> dict[str, dict[str, int]]:
    """Stage and load `entities` for one partition; outcomes by entity."""
    outcomes = {}
    for entity in entities:
        stage(warehouse, compiled[entity], [partition])
        outcomes[entity] = load(client, warehouse, entity, [partition]).outcomes
    return outcomes


FIRST = [
    (1, ACCOUNTS[0], 0.05, False),
    (2, ACCOUNTS[1], 0.06, False),
    (3, ACCOUNTS[2], 0.07, False),
]


COMMITMENTS = """\
- name: Prepaid
  object: Account
  sync_level: agreement
  fields:
    accountCode: Id
  hardcoded:
    amount: 1000
    currency: USD
    startDate: '2024-01-01'
    endDate: '2024-12-31'
"""


@pytest.fixture
def prepaid(tmp_path: Path, warehouse: Warehouse) -> CompiledSet:
    """Accounts, each with a commitment, staged for DAY1."""
    directory = tmp_path / "with-commitments"
    directory.mkdir()
    (directory / "accounts.yaml").write_text(MAPPINGS["accounts"])
    (directory / "commitments.yaml").write_text(COMMITMENTS)
    compiled = compile_mappings(load_mappings(directory), describe)
    write_raw(warehouse, DAY1, FIRST)
    for entity in ("accounts", "commitments"):
        stage(warehouse, compiled[entity], [DAY1])
    return compiled
