"""What daily windows cannot see, through the real commands: `m3sync backfill`, `run`, `refresh`.

The org sandbox serves from this process, so that the test can change its records the way
Salesforce does unseen (a formula's new value, a purge from the recycle bin); the commands run
as processes of their own against it over real sockets. For each hazard the nightly `m3sync run`
is shown to leave m3ter as it was, then `m3sync refresh` makes m3ter say what the org says,
on the same m3ter object.
"""

from __future__ import annotations

import datetime as dt
import os
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path

import duckdb
import pytest
from simple_salesforce.exceptions import SalesforceMalformedRequest

from pipeline.m3ter.client import M3terClient
from pipeline.m3ter.settings import sandbox_settings
from pipeline.salesforce.ids import to18
from pipeline.sandbox.m3ter import M3terConfig
from pipeline.sandbox.salesforce.app import SalesforceConfig
from pipeline.sandbox.salesforce.generator import INTEGRATION_USERNAME
from pipeline.sandbox.server import RunningSandbox, running_sandbox
from tests.processes import M3SYNC
from tests.sandbox.salesforce import clients

pytestmark = pytest.mark.operator

HISTORY_DAYS = 6
TODAY = dt.datetime.now(dt.UTC).date()
FIRST = (TODAY - dt.timedelta(days=HISTORY_DAYS)).isoformat()
LAST = (TODAY - dt.timedelta(days=1)).isoformat()


@dataclass
class Operated:
    root: Path
    sandbox: RunningSandbox
    env: dict[str, str]
    billed: list[str] = field(default_factory=list)  # old_billed_items() after the backfill

    def __call__(self, *args: str, sandbox: bool = True) -> subprocess.CompletedProcess[str]:
        where = ["--sandbox", str(self.root / "sandbox" / "sandbox.json")] if sandbox else []
        command = [M3SYNC, *args, *where]
        done = subprocess.run(command, capture_output=True, text=True, env=self.env, check=False)
        assert done.returncode == 0, done.stdout + done.stderr
        return done

    def org(self, statement: str, params: list[object]) -> None:
        self.sandbox.salesforce.org.db.cursor().execute(statement, params)

    def pricings(self, code: str) -> list[dict]:
        client = M3terClient(replace(sandbox_settings(self.sandbox.info()["m3ter"]), rate_limit=45))
        return [p for p in client.list("pricings") if p.get("code") == code]

    def pricing(self, code: str) -> dict:
        (found,) = self.pricings(code)
        return found

    def holds(self, record_id: str) -> bool:
        """Whether the warehouse holds a version of the record."""
        with duckdb.connect(
            str(self.root / "warehouse" / "warehouse.duckdb"), read_only=True
        ) as con:
            found = con.execute('SELECT 1 FROM raw.order_item WHERE "Id" = ?', [record_id])
            return found.fetchone() is not None

    def old_billed_items(self) -> list[str]:
        """OrderItems m3ter prices whose latest version is older than the last day."""
        client = M3terClient(replace(sandbox_settings(self.sandbox.info()["m3ter"]), rate_limit=45))
        codes = {p["code"] for p in client.list("pricings")}
        with duckdb.connect(
            str(self.root / "warehouse" / "warehouse.duckdb"), read_only=True
        ) as con:
            rows = con.execute(
                'SELECT "Id" FROM raw.order_item WHERE _partition < ? AND NOT "IsDeleted" '
                'ORDER BY "Id"',
                [LAST],
            ).fetchall()
        return [r[0] for r in rows if r[0] in codes]


@pytest.fixture(scope="module")
def operated(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Operated]:
    root = tmp_path_factory.mktemp("hazards")
    state = root / "sandbox"
    salesforce = SalesforceConfig(
        state_dir=state / "salesforce", accounts=4, history_days=HISTORY_DAYS
    )
    m3ter = M3terConfig(state_dir=state / "m3ter")
    env = {
        **os.environ,
        "DAGSTER_HOME": str(root / "dagster"),
        "M3SYNC_WAREHOUSE": str(root / "warehouse"),
        "M3SYNC_START_DATE": FIRST,
        "COLUMNS": "200",
    }
    for name in ("M3SYNC_MAPPINGS_DIR", "M3SYNC_MAPPINGS_SOURCE"):
        env.pop(name, None)
    with running_sandbox(state, salesforce=salesforce, m3ter=m3ter) as sandbox:
        sandbox.write_info()
        operated = Operated(root, sandbox, env)
        operated("backfill", "--from", FIRST, "--to", LAST)
        operated.billed = operated.old_billed_items()
        yield operated


def test_a_price_changed_unstamped_reaches_m3ter_with_m3sync_refresh(operated):
    item = operated.old_billed_items()[0]
    before = operated.pricing(item)
    operated.org('UPDATE org."OrderItem" SET "UnitPrice" = 0.4321 WHERE "Id" = ?', [item])
    operated("run", "--partition", LAST)
    assert operated.pricing(item) == before, "the nightly run cannot see it"
    refreshed = operated("refresh")
    assert "Refresh" in refreshed.stdout
    after = operated.pricing(item)
    assert after["id"] == before["id"] and after["pricingBands"][0]["unitPrice"] == 0.4321


def test_a_purged_line_s_pricing_ends_with_m3sync_refresh(operated):
    item = operated.old_billed_items()[1]
    before = operated.pricing(item)
    operated.org('DELETE FROM org."OrderItem" WHERE "Id" = ?', [item])  # purged from the bin
    operated("run", "--partition", LAST)
    assert operated.pricing(item) == before, "the nightly run cannot see it"
    operated("refresh")
    # The end is the day after the refresh: a pricing that started by then ends there, one that
    # had not started is deleted (billing history is never deleted, and it has none).
    end = (TODAY + dt.timedelta(days=1)).isoformat()
    if before["startDate"][:10] >= end:
        assert operated.pricings(item) == []
    else:
        after = operated.pricing(item)
        assert after["id"] == before["id"] and after["endDate"][:10] == end


def test_the_reconcile_finds_nothing_gone_after_the_refresh(operated):
    reconciled = operated("reconcile")
    assert "Salesforce against the warehouse" in reconciled.stdout
    line = next(x for x in reconciled.stdout.splitlines() if x.startswith("│ OrderItem"))
    assert line.split("│")[4].strip() == "0", line  # gone from Salesforce


def test_a_line_committed_on_a_day_already_extracted_is_loaded_by_m3sync_reconcile_apply(
    operated,
):
    item = operated.billed[0]
    late = to18(item[:3] + "LATE" + item[7:15])
    # Stamped days ago by a person: a transaction that committed after the windows over that
    # day had run (its parents' stamps since are m3sync's own write-back, which no window reads).
    stamp = dt.datetime.combine(dt.date.fromisoformat(FIRST) + dt.timedelta(days=1), dt.time(12))
    operated.org(
        'INSERT INTO org."OrderItem" BY NAME SELECT * REPLACE (? AS "Id", ? AS "SystemModstamp", '
        '(SELECT min("Id") FROM org."User" WHERE "Username" <> ?) AS "LastModifiedById") '
        'FROM org."OrderItem" WHERE "Id" = ?',
        [late, stamp, INTEGRATION_USERNAME, item],
    )
    operated("run", "--partition", LAST)
    assert not operated.holds(late), "the nightly run cannot see it"
    reported = operated("reconcile")
    assert "Records the windows missed on days already extracted: 1; --apply" in reported.stdout
    assert not operated.holds(late), "a reconcile without --apply writes nothing"
    operated("reconcile", "--apply")
    assert operated.holds(late)
    # It bills with its agreement's pricing for its product, as the line it copies does.
    explained = operated("explain", late, sandbox=False).stdout
    assert "→ pricings" in explained and "→ account_plans" in explained
    assert "Records the windows missed" not in operated("reconcile").stdout


def test_a_quote_re_synced_to_its_opportunity_keeps_its_lines_m3ter_objects(operated):
    client = M3terClient(replace(sandbox_settings(operated.sandbox.info()["m3ter"]), rate_limit=45))
    priced = {p["code"]: p for p in client.list("pricings")}
    with duckdb.connect(
        str(operated.root / "warehouse" / "warehouse.duckdb"), read_only=True
    ) as con:
        (opportunity,) = con.execute(
            'SELECT min("OpportunityId") FROM raw.opportunity_line_item '
            'WHERE "Id" IN (SELECT unnest(?))',
            [list(priced)],
        ).fetchone() or (None,)
    assert opportunity, "m3ter prices opportunity lines"
    at = dt.datetime.combine(dt.date.fromisoformat(LAST), dt.time(12))
    replaced = operated.sandbox.salesforce.org.resync_quote(opportunity, at)
    operated("run", "--partition", LAST)
    after = {p["code"]: p for p in client.list("pricings")}
    for old, new in replaced.items():
        assert new not in after, "no second pricing for a re-synced line"
        if old in priced:
            assert after[old] == priced[old], "the line's pricing goes on as it was"


def test_a_merged_away_account_s_account_plans_move_with_m3sync_refresh(operated):
    client = M3terClient(replace(sandbox_settings(operated.sandbox.info()["m3ter"]), rate_limit=45))
    accounts = {a["id"]: a["code"] for a in client.list("accounts")}
    before = list(client.list("accountplans"))
    held = sorted({accounts[p["accountId"]] for p in before})
    assert len(held) >= 2, "m3ter bills two accounts"
    master, merged = held[0], held[1]
    ids = {code: id_ for id_, code in accounts.items()}
    moving = [p for p in before if p["accountId"] == ids[merged]]
    at = dt.datetime.combine(dt.date.fromisoformat(LAST), dt.time(12))
    operated.sandbox.salesforce.org.merge_accounts(master, [merged], at)
    operated("run", "--partition", LAST)
    operated("refresh")
    after = {p["id"]: p for p in client.list("accountplans")}
    with duckdb.connect(
        str(operated.root / "warehouse" / "warehouse.duckdb"), read_only=True
    ) as con:
        reasons = dict(
            con.execute(
                "SELECT m3ter_id, message FROM load.journal WHERE entity = 'account_plans' "
                'QUALIFY row_number() OVER (PARTITION BY m3ter_id ORDER BY "at" DESC) = 1'
            ).fetchall()
        )
    moved = [p for p in moving if after.get(p["id"], {}).get("accountId") == ids[master]]
    assert moved, "the merged account's account plans follow its records to the survivor"
    for plan in moving:
        if plan not in moved and plan["id"] in after:
            assert reasons.get(plan["id"]), "one that stays says why"
    assert merged in {a["code"] for a in client.list("accounts")}, "billing history kept"


def test_a_mass_re_stamp_past_the_query_timeout_runs_in_narrower_queries(operated):
    client = M3terClient(replace(sandbox_settings(operated.sandbox.info()["m3ter"]), rate_limit=45))
    before = sorted(p["id"] for p in client.list("pricings"))
    org = operated.sandbox.salesforce.org
    # A picklist value renamed on every order: each order re-stamped at one instant.
    instant = dt.datetime.combine(dt.date.fromisoformat(LAST), dt.time(9))
    operated.org('UPDATE org."Order" SET "SystemModstamp" = ?', [instant])
    org.query_timeout_rows = 20
    try:
        window = (
            "SELECT Id FROM OrderItem WHERE (SystemModstamp >= {0} AND SystemModstamp < {1}) "
            "OR (Order.SystemModstamp >= {0} AND Order.SystemModstamp < {1})"
        ).format(f"{LAST}T00:00:00Z", f"{TODAY.isoformat()}T00:00:00Z")
        sf = clients.soap_client(operated.sandbox)
        with pytest.raises(SalesforceMalformedRequest, match="QUERY_TIMEOUT"):
            sf.query_all(window)  # the day's window in one query
        operated("run", "--partition", LAST)
    finally:
        org.query_timeout_rows = None
    assert sorted(p["id"] for p in client.list("pricings")) == before, "nothing made twice"
