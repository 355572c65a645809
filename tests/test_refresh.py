"""The refresh end to end over both sandboxes: what the nightly run cannot see reaches m3ter.

Each hazard is first shown to be real (the nightly run leaves m3ter as it was), then the refresh
makes m3ter say what the org says, without a duplicate.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from dataclasses import dataclass, replace

import pytest

from pipeline.extract.run import ExtractSettings, extract, plan_all
from pipeline.load.entities import ORDER
from pipeline.load.run import load
from pipeline.m3ter.client import M3terClient
from pipeline.m3ter.settings import sandbox_settings as m3ter_settings
from pipeline.mapping.compiler import CompiledSet, compile_mappings
from pipeline.mapping.files import load_mappings
from pipeline.refresh import refresh
from pipeline.salesforce.client import SalesforceClient
from pipeline.salesforce.settings import sandbox_settings as salesforce_settings
from pipeline.sandbox.m3ter import M3terConfig
from pipeline.sandbox.salesforce.app import SalesforceConfig
from pipeline.sandbox.server import RunningSandbox, running_sandbox
from pipeline.staging.stage import StageSettings, stage
from pipeline.warehouse import Warehouse
from tests.load.conftest import MAPPINGS

# Slow end to end (a sync and a refresh per case): in the operator suite, beside the same hazards
# through the commands (`tests/cli/test_refresh_hazards.py`).
pytestmark = pytest.mark.operator

HISTORY_DAYS = 6
EXTRACT = ExtractSettings(rest_threshold=10**9)
STAGE = StageSettings(memory_mb=256)


def _days(n: int) -> list[str]:
    today = dt.datetime.now(dt.UTC).date()
    return [(today - dt.timedelta(days=d)).isoformat() for d in range(n, 0, -1)]


@dataclass
class World:
    sandbox: RunningSandbox
    salesforce: SalesforceClient
    m3ter: M3terClient
    warehouse: Warehouse
    compiled: CompiledSet

    def sync(self, partitions: list[str]) -> None:
        """Extract, stage and load `partitions`, as the sync job does."""
        sources = [o for o in self.compiled.objects.objects if o.partitioned]
        plans = plan_all(self.salesforce, sources, self.compiled.fields)
        for source in sources:
            extract(
                self.salesforce, self.warehouse, source, partitions, EXTRACT, plans[source.name]
            )
        entities = [e for e in ORDER if self.compiled[e].mappings]
        for entity in entities:
            stage(self.warehouse, self.compiled[entity], partitions, STAGE)
        for entity in entities:
            load(self.m3ter, self.warehouse, entity, partitions)

    def refresh(self):
        return refresh(self.salesforce, self.m3ter, self.warehouse, self.compiled, EXTRACT, STAGE)

    def org(self, statement: str, params: list[object]) -> None:
        self.sandbox.salesforce.org.db.cursor().execute(statement, params)

    def m3ter_objects(self, collection: str, code: str) -> list[dict]:
        return [o for o in self.m3ter.list(collection) if o.get("code") == code]

    def billed_item(self, n: int) -> str:
        """The `n`th OrderItem m3ter prices (a pricing's code is its line's Id) whose latest
        version is older than yesterday, so that the nightly run does not read it again; each
        test takes its own."""
        codes = sorted(p["code"] for p in self.m3ter.list("pricings"))
        older = {
            row[0]
            for row in self.warehouse.connect()
            .execute('SELECT "Id" FROM raw.order_item WHERE _partition < ?', _days(1))
            .fetchall()
        }
        billed = [code for code in codes if code in older]
        assert len(billed) > n, "the sync priced lines of earlier days"
        return billed[n]


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    """Both sandboxes, the load suites' mappings on OrderItem, and every day synced."""
    tmp_path = tmp_path_factory.mktemp("refresh")
    directory = tmp_path / "mappings"
    directory.mkdir()
    for entity, text in MAPPINGS.items():
        (directory / f"{entity}.yaml").write_text(text)
    config = SalesforceConfig(
        state_dir=tmp_path / "sandbox" / "salesforce", accounts=4, history_days=HISTORY_DAYS
    )
    m3ter = M3terConfig(state_dir=tmp_path / "sandbox" / "m3ter")
    with running_sandbox(tmp_path / "sandbox", salesforce=config, m3ter=m3ter) as sandbox:
        info = sandbox.info()
        salesforce = SalesforceClient(salesforce_settings(info["salesforce"]))
        client = M3terClient(replace(m3ter_settings(info["m3ter"]), rate_limit=45.0))
        compiled = compile_mappings(load_mappings(directory), salesforce.describe)
        built = World(sandbox, salesforce, client, Warehouse(tmp_path / "warehouse"), compiled)
        built.sync(_days(HISTORY_DAYS + 1))
        yield built


def test_a_price_changed_without_a_stamp_reaches_m3ter_with_the_refresh(world):
    item = world.billed_item(0)
    world.org('UPDATE org."OrderItem" SET "UnitPrice" = 0.4321 WHERE "Id" = ?', [item])
    world.sync(_days(1))  # the nightly run
    (before,) = world.m3ter_objects("pricings", item)
    assert before["pricingBands"][0]["unitPrice"] != 0.4321, "the nightly run cannot see it"
    found = world.refresh()
    assert found.found == 1
    (after,) = world.m3ter_objects("pricings", item)
    assert after["pricingBands"][0]["unitPrice"] == 0.4321 and after["id"] == before["id"]


def test_a_purged_line_s_m3ter_objects_end_with_the_refresh(world):
    item = world.billed_item(1)
    world.org('DELETE FROM org."OrderItem" WHERE "Id" = ?', [item])  # purged from the bin
    world.sync(_days(1))
    (before,) = world.m3ter_objects("pricings", item)
    found = world.refresh()
    assert found.found == 1
    (after,) = world.m3ter_objects("pricings", item)
    assert after["id"] == before["id"], "ended, never deleted"
    assert after["endDate"] < before["endDate"], "the nightly run left it billing"


def test_a_line_committed_on_a_day_already_extracted_reaches_m3ter_with_the_refresh(world):
    item = world.billed_item(3)
    late = item[:3] + "LATE" + item[7:]
    # A copy under a new Id, its stamps days old: a transaction that committed after the
    # windows over its stamp had run, or a record a widened sharing rule made visible.
    world.org(
        'INSERT INTO org."OrderItem" BY NAME SELECT * REPLACE (? AS "Id") '
        'FROM org."OrderItem" WHERE "Id" = ?',
        [late, item],
    )
    world.sync(_days(1))
    assert world.m3ter_objects("pricings", late) == [], "the nightly run cannot see it"
    found = world.refresh()
    assert [o.missed for o in found.objects if o.sobject == "OrderItem"] == [1]
    (priced,) = world.m3ter_objects("pricings", late)
    (original,) = world.m3ter_objects("pricings", item)
    assert priced["pricingBands"][0]["unitPrice"] == original["pricingBands"][0]["unitPrice"]


def test_a_second_refresh_with_nothing_changed_writes_nothing(world):
    world.org(
        'UPDATE org."OrderItem" SET "UnitPrice" = 0.4321 WHERE "Id" = ?', [world.billed_item(2)]
    )
    world.refresh()
    again = world.refresh()
    assert again.found == 0
    # Only what m3ter refused before is tried again, as every load does.
    applied = [k for r in again.loaded for k in r.outcomes if k.endswith(":applied")]
    assert applied == []


def _replace_order(world: World, n: int, **changes: object) -> dict[str, str]:
    """Replace, yesterday, the lines of the `n`th order from the last with an item m3ter prices,
    as an integration that rewrites an order's items does; returns each old line's new Id."""
    codes = [p["code"] for p in world.m3ter.list("pricings")]
    orders = (
        world.warehouse.connect()
        .execute(
            'SELECT DISTINCT "OrderId" FROM raw.order_item WHERE "Id" IN (SELECT unnest(?)) '
            "ORDER BY 1",
            [codes],
        )
        .fetchall()
    )
    at = dt.datetime.combine(dt.date.fromisoformat(_days(1)[0]), dt.time(12))
    org = world.sandbox.salesforce.org
    return org.replace_lines("OrderItem", "OrderId", orders[-n][0], at, **changes)


def test_a_line_replaced_by_an_equal_one_keeps_its_m3ter_objects(world):
    collections = ("plans", "pricings", "accountplans")
    replaced = _replace_order(world, 1)
    before = {c: {old: world.m3ter_objects(c, old) for old in replaced} for c in collections}
    world.sync(_days(1))
    gone = (
        world.warehouse.connect()
        .execute(
            'SELECT count(*) FROM raw.order_item WHERE "IsDeleted" AND "Id" IN (SELECT unnest(?))',
            [list(replaced)],
        )
        .fetchone()
    )
    assert gone == (len(replaced),), "the old lines are deleted: the Ids changed"
    for collection in collections:
        for old, new in replaced.items():
            assert world.m3ter_objects(collection, old) == before[collection][old], collection
            assert world.m3ter_objects(collection, new) == [], "no second object"
    successions = (
        world.warehouse.connect()
        .execute("SELECT _source_id, continues FROM staged.successions")
        .fetchall()
    )
    assert {new: old for old, new in replaced.items()}.items() <= dict(successions).items()


def test_a_line_replaced_with_another_price_ends_and_its_replacement_starts(world):
    replaced = _replace_order(world, 2, UnitPrice=0.777)
    before = {old: world.m3ter_objects("pricings", old) for old in replaced}
    world.sync(_days(1))
    priced = [old for old in replaced if before[old]]
    assert priced, "m3ter priced lines of the order"
    for old in priced:
        # ended the day after, or deleted if it had not started
        for ended in world.m3ter_objects("pricings", old):
            assert ended["endDate"] < before[old][0]["endDate"]
        (started,) = world.m3ter_objects("pricings", replaced[old])
        assert started["pricingBands"][0]["unitPrice"] == 0.777


def test_a_merged_away_account_s_lines_move_to_the_surviving_account_with_the_refresh(world):
    lines = (
        world.warehouse.connect()
        .execute(
            'SELECT "Order.AccountId", list(DISTINCT "Id") FROM raw.order_item '
            'WHERE NOT "IsDeleted" GROUP BY 1 ORDER BY 1'
        )
        .fetchall()
    )
    plans = {p["code"]: p for p in world.m3ter.list("accountplans")}
    billed = [(account, [i for i in items if i in plans]) for account, items in lines]
    billed = [(account, items) for account, items in billed if items]
    assert len(billed) >= 2, "m3ter bills lines of two accounts"
    (master, _), (merged, moved) = billed[0], billed[1]
    accounts = {a["code"]: a["id"] for a in world.m3ter.list("accounts")}
    at = dt.datetime.combine(dt.date.fromisoformat(_days(1)[0]), dt.time(12))
    world.sandbox.salesforce.org.merge_accounts(master, [merged], at)
    world.sync(_days(1))
    seen = {
        row[0]
        for row in world.warehouse.connect()
        .execute('SELECT "Id" FROM raw.order_item WHERE _partition = ?', _days(1))
        .fetchall()
    }
    unseen = [i for i in moved if i not in seen]
    assert unseen, "lines of the merged account last changed before yesterday"
    stayed = {p["code"]: p for p in world.m3ter.list("accountplans")}
    assert {stayed[i]["accountId"] for i in unseen} == {accounts[merged]}, (
        "the nightly run cannot see the re-parented lines"
    )
    world.refresh()
    after = {p["code"]: p for p in world.m3ter.list("accountplans")}
    journal = dict(
        world.warehouse.connect()
        .execute(
            "SELECT source_id, message FROM load.journal WHERE entity = 'account_plans' "
            'QUALIFY row_number() OVER (PARTITION BY source_id ORDER BY "at" DESC) = 1'
        )
        .fetchall()
    )
    for item in unseen:
        if item in after and after[item]["accountId"] == accounts[master]:
            assert after[item]["id"] == plans[item]["id"], "moved, not made again"
        else:
            assert journal.get(item), f"{item} stays on the merged account with a reason"
    assert any(after.get(i, {}).get("accountId") == accounts[master] for i in unseen), [
        journal.get(i) for i in unseen
    ]
    assert merged in {a["code"] for a in world.m3ter.list("accounts")}, "billing history kept"
