"""`m3sync demo --org cpq` end to end: what m3ter bills, day by day, equals CPQ's subscriptions.

The demo runs once as a user runs it, over the CPQ org and `mappings/examples/cpq/`, which bill
contracted quote lines. The oracle is computed from other records: the `SBQQ__Subscription__c`
ledger that contracting made (read with simple-salesforce). On any day, an account's product
bills the sum of its active subscriptions' quantities (an amendment adds one carrying the change
from its start date) at the unit price of the latest one (net price over its prorate
multiplier). m3ter bills it through the one account plan active that day: the pricing of its
plan for the product's aggregation, with the monthly unit price and the quantity as the
minimum spend (quantity x unit price). Days probed: each subscription's first and last day and
the days either side.
"""

from __future__ import annotations

import datetime as dt
import json
import math
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb
import pytest
from simple_salesforce import Salesforce

from pipeline.salesforce.session import salesforce_session
from tests.m3ter_state import M3ter, read_m3ter
from tests.processes import run_demo, sandbox_process

# The operator suite's size (`M3SYNC_OPERATOR=1`), and the reliability suite's
# (`M3SYNC_RELIABILITY=full`).
SIZES = [
    pytest.param(
        ("--accounts", "10", "--seed", "2", "--history-days", "10"),
        id="small",
        marks=pytest.mark.operator,
    ),
    pytest.param(
        ("--accounts", "200", "--seed", "3", "--history-days", "120"),
        id="large",
        marks=pytest.mark.full,
    ),
]
Line = tuple[str, str]  # (Account Id, Product2 Id)
Billed = tuple[float, float]  # (quantity, monthly unit price)


@dataclass(frozen=True)
class Subscription:
    account: str
    product: str
    quantity: float
    unit_price: float
    start: dt.date
    end: dt.date
    revises: str | None


@dataclass
class CpqDemo:
    output: str
    warehouse: Path
    unbilled_accounts: set[str]  # customers m3ter refuses: no e-mail address
    subscriptions: list[Subscription]
    quotes: dict[str, dict[str, Any]]
    products: dict[str, dict[str, Any]]
    state: M3ter


def read_records(info: dict[str, Any], soql: str) -> list[dict[str, Any]]:
    sf = Salesforce(
        username=info["username"],
        password=info["password"],
        security_token=info["security_token"],
        session=salesforce_session(info["ca_file"], login_url=info["url"]),
    )
    return [
        {k: v for k, v in r.items() if k != "attributes"} for r in sf.query_all(soql)["records"]
    ]


@pytest.fixture(scope="module", params=SIZES)
def cpq(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[CpqDemo]:
    org = ("--org", "cpq", *request.param)
    root = tmp_path_factory.mktemp("cpq")
    result, _ = run_demo(root, *org)
    if result.returncode != 0:
        pytest.fail(f"m3sync demo failed:\n{result.stdout}\n{result.stderr}")
    first = json.loads((root / "sandbox" / "sandbox.json").read_text())["salesforce"]
    with sandbox_process(root / "sandbox", *org) as (_, info):
        assert info["salesforce"]["history_from"] == first["history_from"], "new day, new org"
        salesforce = info["salesforce"]
        subscriptions = [
            Subscription(
                r["SBQQ__Account__c"],
                r["SBQQ__Product__c"],
                r["SBQQ__Quantity__c"],
                r["SBQQ__NetPrice__c"] / r["SBQQ__ProrateMultiplier__c"],
                dt.date.fromisoformat(r["SBQQ__StartDate__c"]),
                dt.date.fromisoformat(r["SBQQ__EndDate__c"]),
                r["SBQQ__RevisedSubscription__c"],
            )
            for r in read_records(
                salesforce,
                "SELECT SBQQ__Account__c, SBQQ__Product__c, SBQQ__Quantity__c, "
                "SBQQ__NetPrice__c, SBQQ__ProrateMultiplier__c, SBQQ__StartDate__c, "
                "SBQQ__EndDate__c, SBQQ__RevisedSubscription__c FROM SBQQ__Subscription__c",
            )
        ]
        quotes = {
            r["Id"]: r
            for r in read_records(
                salesforce,
                "SELECT Id, SBQQ__Primary__c, SBQQ__Status__c, SBQQ__Type__c FROM SBQQ__Quote__c",
            )
        }
        unbilled_accounts = {
            r["Id"]
            for r in read_records(salesforce, "SELECT Id, Billing_Email__c FROM Account")
            if not r["Billing_Email__c"]
        }
        products = {
            r["Id"]: r
            for r in read_records(
                salesforce,
                "SELECT Id, M3ter_Plan_Template_Code__c, M3ter_Aggregation_Code__c FROM Product2",
            )
        }
        yield CpqDemo(
            result.stdout,
            root / "warehouse" / "warehouse.duckdb",
            unbilled_accounts,
            subscriptions,
            quotes,
            products,
            read_m3ter(info["m3ter"]),
        )


# ---- the oracle: CPQ's subscription ledger ------------------------------------------------------


def ledger(demo: CpqDemo) -> dict[Line, list[Subscription]]:
    lines: dict[Line, list[Subscription]] = defaultdict(list)
    for s in demo.subscriptions:
        lines[s.account, s.product].append(s)
    return lines


def contracted(demo: CpqDemo, subscriptions: list[Subscription], day: dt.date) -> Billed | None:
    """What the subscriptions active on `day` commit to: their quantity, at the latest price;
    nothing for an account m3ter refuses (no e-mail address)."""
    active = [
        s
        for s in subscriptions
        if s.start <= day <= s.end and s.account not in demo.unbilled_accounts
    ]
    if not active:
        return None
    latest = max(active, key=lambda s: s.start)
    return sum(s.quantity for s in active), latest.unit_price


def probe_days(subscriptions: list[Subscription]) -> set[dt.date]:
    one = dt.timedelta(days=1)
    return {d for s in subscriptions for d in (s.start - one, s.start, s.end, s.end + one)}


# ---- what m3ter bills ----------------------------------------------------------------------------


def _instant(value: str | None) -> dt.datetime | None:
    return None if not value else dt.datetime.fromisoformat(value.replace("Z", "+00:00"))


def _active(obj: dict[str, Any], day: dt.date) -> bool:
    at = dt.datetime.combine(day, dt.time(), dt.UTC)
    start, end = _instant(obj.get("startDate")), _instant(obj.get("endDate"))
    return start is not None and start <= at and (end is None or at < end)


def billed(demo: CpqDemo, line: Line, day: dt.date) -> Billed | None:
    """The quantity and unit price m3ter bills `line` on `day`, from its active account plan."""
    account, product_id = line
    product = demo.products[product_id]
    state = demo.state
    account_ids = [a["id"] for a in state["accounts"] if a["code"] == account]
    templates = {t["id"]: t for t in state["plantemplates"]}
    m3ter_product = next(
        t["productId"]
        for t in templates.values()
        if t["code"] == product["M3ter_Plan_Template_Code__c"]
    )
    plans = {
        p["id"]: p
        for p in state["plans"]
        if templates[p["planTemplateId"]]["productId"] == m3ter_product
    }
    held = [
        ap
        for ap in state["accountplans"]
        if ap["accountId"] in account_ids and ap.get("planId") in plans and _active(ap, day)
    ]
    if not held:
        return None
    assert len(held) == 1, f"{line} has {len(held)} active account plans on {day}"
    aggregation = next(
        a["id"] for a in state["aggregations"] if a["code"] == product["M3ter_Aggregation_Code__c"]
    )
    pricings = [
        p
        for p in state["pricings"]
        if p.get("planId") == held[0]["planId"]
        and p.get("aggregationId") == aggregation
        and _active(p, day)
    ]
    assert len(pricings) == 1, f"{line} has {len(pricings)} pricings on {day}"
    unit_price = pricings[0]["pricingBands"][0]["unitPrice"]
    return pricings[0]["minimumSpend"] / unit_price, unit_price


def assert_same(expected: Billed | None, actual: Billed | None, where: str) -> None:
    if expected is None or actual is None:
        assert expected == actual, where
        return
    assert math.isclose(expected[0], actual[0], rel_tol=1e-9), f"quantity {where}"
    assert math.isclose(expected[1], actual[1], rel_tol=1e-9), f"unit price {where}"


def changes(demo: CpqDemo, kind: str) -> list[tuple[Line, dt.date]]:
    """The lines and first days of every amendment (`revises`) or renewal subscription of the
    accounts m3ter holds."""
    found = []
    for line, subscriptions in ledger(demo).items():
        if line[0] in demo.unbilled_accounts:
            continue
        for s in subscriptions:
            amendment = s.revises is not None
            renewal = not amendment and any(o.end < s.start for o in subscriptions)
            if (kind == "amendment" and amendment) or (kind == "renewal" and renewal):
                found.append((line, s.start))
    return found


# ---- the specification ---------------------------------------------------------------------------


def test_every_quote_line_bills_unless_m3ter_refuses_its_account(cpq: CpqDemo):
    with duckdb.connect(str(cpq.warehouse), read_only=True) as con:
        lines = con.execute(
            "SELECT account_code, billable, root_entity, reason FROM load.coverage"
        ).fetchall()
    assert lines
    for account, billable, root, reason in lines:
        if account in cpq.unbilled_accounts:
            assert not billable and (root, reason) == ("accounts", "emailAddress is required")
        else:
            assert billable, (account, root, reason)


def test_m3ter_bills_each_days_subscribed_quantity_at_its_price(cpq: CpqDemo):
    probed = 0
    for line, subscriptions in ledger(cpq).items():
        for day in sorted(probe_days(subscriptions)):
            assert_same(
                contracted(cpq, subscriptions, day), billed(cpq, line, day), f"{line} {day}"
            )
            probed += 1
    assert probed > 50


def test_an_amendment_changes_billing_from_its_start_date_and_not_before(cpq: CpqDemo):
    amendments = changes(cpq, "amendment")
    assert len(amendments) >= 3, "the CPQ org has amendments"
    lines = ledger(cpq)
    for line, start in amendments:
        before, on = start - dt.timedelta(days=1), start
        expected_before, expected_on = (
            contracted(cpq, lines[line], before),
            contracted(cpq, lines[line], on),
        )
        assert expected_before is not None and expected_on is not None
        assert expected_before[0] != expected_on[0], "an amendment changes the quantity"
        assert_same(expected_before, billed(cpq, line, before), f"{line} the day before {start}")
        assert_same(expected_on, billed(cpq, line, on), f"{line} from {start}")


def test_a_renewal_bills_its_new_contract_at_the_uplifted_price(cpq: CpqDemo):
    renewals = changes(cpq, "renewal")
    assert len(renewals) >= 2, "the CPQ org has renewals"
    lines = ledger(cpq)
    for line, start in renewals:
        before = contracted(cpq, lines[line], start - dt.timedelta(days=1))
        on = contracted(cpq, lines[line], start)
        assert before is not None and on is not None
        assert on[1] > before[1], "a renewal's price is uplifted"
        assert_same(on, billed(cpq, line, start), f"{line} renewed on {start}")


def test_quotes_that_are_not_primary_and_accepted_make_no_plan(cpq: CpqDemo):
    unbilled = {
        quote_id
        for quote_id, q in cpq.quotes.items()
        if not (q["SBQQ__Primary__c"] and q["SBQQ__Status__c"] == "Accepted")
    }
    assert unbilled, "the CPQ org has draft quotes"
    made = {p["code"].split("_")[0] for p in cpq.state["plans"]}
    assert made and not made & unbilled
    assert made == set(cpq.quotes) - unbilled


def test_the_cpq_demo_reads_only_the_objects_its_mappings_name(cpq: CpqDemo):
    tables = {x.split()[1] for x in cpq.output.splitlines() if x.startswith("│ raw.")}
    assert tables == {"raw.account", "raw.contract", "raw.product2", "raw.sbqq_quote_line_c"}
