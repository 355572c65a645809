"""Staged objects reconciled into the m3ter sandbox over HTTPS, counting the calls it takes."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time

import pytest

from pipeline.load.current import Current
from pipeline.load.journal import Knowledge
from pipeline.load.reconcile import apply, plan
from pipeline.load.run import load, staged_rows
from pipeline.m3ter.client import M3terClient
from pipeline.m3ter.settings import sandbox_settings
from pipeline.sandbox.faults import FaultConfig
from pipeline.sandbox.m3ter import M3terConfig
from pipeline.sandbox.server import running_sandbox
from pipeline.staging.stage import stage
from tests.load.conftest import (
    ACCOUNTS,
    DAY1,
    DAY2,
    ENTITIES,
    FIRST,
    item,
    run,
    write_raw,
)


def test_a_first_load_creates_every_object(client, warehouse, compiled):
    write_raw(warehouse, DAY1, FIRST)
    outcomes = run(client, warehouse, compiled, DAY1)
    assert outcomes == {entity: {"create:applied": 3} for entity in ENTITIES}
    assert len(list(client.list("accountplans"))) == 3


def test_a_second_run_without_change_writes_nothing(client, warehouse, compiled):
    write_raw(warehouse, DAY1, FIRST)
    run(client, warehouse, compiled, DAY1)
    writes = client.writes
    outcomes = run(client, warehouse, compiled, DAY1)
    assert client.writes == writes
    assert outcomes == {entity: {"unchanged:unchanged": 3} for entity in ENTITIES}


def test_one_changed_unit_price_is_exactly_one_put(client, warehouse, compiled):
    write_raw(warehouse, DAY1, FIRST)
    run(client, warehouse, compiled, DAY1)
    write_raw(warehouse, DAY2, [(2, ACCOUNTS[1], 0.09, False)], accounts=[])
    writes = client.writes
    outcomes = run(client, warehouse, compiled, DAY2)
    assert client.writes == writes + 1
    assert outcomes["pricings"] == {"update:applied": 1}
    (pricing,) = [p for p in client.list("pricings") if p["code"] == item(2)]
    assert pricing["pricingBands"][0]["unitPrice"] == 0.09


def test_a_deleted_order_item_end_dates_its_pricing_and_account_plan(client, warehouse, compiled):
    write_raw(warehouse, DAY1, FIRST)
    run(client, warehouse, compiled, DAY1)
    write_raw(warehouse, DAY2, [(3, ACCOUNTS[2], 0.07, True)], accounts=[])
    outcomes = run(client, warehouse, compiled, DAY2)
    assert outcomes["pricings"] == {"end_date:applied": 1}
    assert outcomes["account_plans"] == {"end_date:applied": 1}
    assert outcomes["plans"] == {"unchanged:unchanged": 1}
    (pricing,) = [p for p in client.list("pricings") if p["code"] == item(3)]
    assert pricing["endDate"].startswith("2024-03-03")


def test_a_concurrent_edit_in_m3ter_is_read_again_and_written_once(client, warehouse, compiled):
    write_raw(warehouse, DAY1, FIRST)
    run(client, warehouse, compiled, DAY1)
    write_raw(warehouse, DAY2, [(1, ACCOUNTS[0], 0.11, False)], accounts=[])
    stage(warehouse, compiled["pricings"], [DAY2])
    current = Current(client)
    rows = staged_rows(warehouse, "pricings", [DAY2])
    actions = plan("pricings", rows, current, Knowledge(warehouse))
    (action,) = actions
    edited = client.get("pricings", action.m3ter_id)
    client.update(
        "pricings", edited["id"], {**edited, "description": "edited by hand"}
    )  # the version we planned with is now stale
    (outcome,) = apply(client, actions, current)
    assert outcome.status == "applied"
    assert client.get("pricings", action.m3ter_id)["pricingBands"][0]["unitPrice"] == 0.11


def test_an_unknown_reference_is_journaled_and_the_rest_loads(client, warehouse, compiled):
    items = [*FIRST[:2], (4, "001000000000009AAA", 0.05, False)]
    write_raw(warehouse, DAY1, items)
    outcomes = run(client, warehouse, compiled, DAY1)
    assert outcomes["account_plans"] == {"create:applied": 2, "reject:rejected": 1}
    journal = (
        warehouse.connect()
        .execute("SELECT source_id, message FROM load.journal WHERE status = 'rejected'")
        .fetchall()
    )
    assert journal == [
        (item(4), "accountCode '001000000000009AAA': no m3ter accounts has this code")
    ]


def test_a_record_m3ter_refuses_is_journaled_with_its_message(client, warehouse, compiled):
    # An account plan made by hand in m3ter holds the product: m3ter refuses the staged one.
    write_raw(warehouse, DAY1, FIRST)
    for entity in ("accounts", "plans"):
        stage(warehouse, compiled[entity], [DAY1])
        load(client, warehouse, entity, [DAY1])
    by_hand = {
        "accountId": next(a["id"] for a in client.list("accounts") if a["code"] == ACCOUNTS[0]),
        "planId": next(p["id"] for p in client.list("plans") if p["code"] == item(2)),
        "startDate": "2023-01-01T00:00:00Z",
    }
    client.create("accountplans", by_hand)
    stage(warehouse, compiled["account_plans"], [DAY1])
    outcomes = load(client, warehouse, "account_plans", [DAY1]).outcomes
    assert outcomes == {"create:applied": 2, "create:rejected": 1}
    (source, message) = (
        warehouse.connect()
        .execute("SELECT source_id, message FROM load.journal WHERE status = 'rejected'")
        .fetchone()
    )
    assert source == item(1) and "one AccountPlan per Product" in message


def test_the_id_map_traces_each_record_to_its_m3ter_object(client, warehouse, compiled):
    write_raw(warehouse, DAY1, FIRST)
    run(client, warehouse, compiled, DAY1)
    rows = (
        warehouse.connect()
        .execute("SELECT source_id, m3ter_id FROM load.id_map WHERE entity = 'pricings' ORDER BY 1")
        .fetchall()
    )
    ids = {p["code"]: p["id"] for p in client.list("pricings")}
    assert rows == [(item(n), ids[item(n)]) for n in (1, 2, 3)]


def test_a_dry_run_plans_without_writing(client, warehouse, compiled):
    write_raw(warehouse, DAY1, FIRST)
    stage(warehouse, compiled["accounts"], [DAY1])
    writes = client.writes
    result = load(client, warehouse, "accounts", [DAY1], dry_run=True)
    assert client.writes == writes
    assert result.actions == {"create": 3}
    assert result.changed[0]["changes"]["name"][1].startswith("Account")


def test_with_injected_faults_m3ter_ends_as_without_and_nothing_is_duplicated(
    tmp_path, warehouse, compiled
):
    faults = FaultConfig(rates={"http500": 0.04, "http503": 0.03, "drop": 0.03}, seed=5)
    config = M3terConfig(state_dir=tmp_path / "faulty", faults=faults)
    items = [(n, ACCOUNTS[n % 3], 0.01 * n, False) for n in range(1, 4)]
    write_raw(warehouse, DAY1, items)
    with running_sandbox(tmp_path / "faulty-sandbox", m3ter=config) as running:
        client = M3terClient(sandbox_settings(running.info()["m3ter"]))
        outcomes = run(client, warehouse, compiled, DAY1)
        codes = {c: [o["code"] for o in client.list(c)] for c in ("accounts", "plans", "pricings")}
        plans = len(list(client.list("accountplans")))
    assert outcomes == {entity: {"create:applied": 3} for entity in ENTITIES}
    assert all(sorted(found) == sorted(set(found)) and len(found) == 3 for found in codes.values())
    assert plans == 3


KILLED_LOAD = """
import json, sys
from pathlib import Path
from pipeline.load.run import load
from pipeline.m3ter.client import M3terClient
from pipeline.m3ter.settings import sandbox_settings
from pipeline.warehouse import Warehouse
from dataclasses import replace
info, root, day = json.loads(sys.argv[1]), sys.argv[2], sys.argv[3]
client = M3terClient(replace(sandbox_settings(info), rate_limit=20.0))
load(client, Warehouse(Path(root)), "accounts", [day])
"""


@pytest.mark.full  # reliability suite; a killed run's creates are looked up in the default run
def test_a_load_killed_halfway_and_run_again_converges_without_duplicates(
    client, warehouse, compiled, m3ter_sandbox
):
    accounts = [f"0010000000{n:05d}AAA" for n in range(120)]
    write_raw(warehouse, DAY1, FIRST, accounts=accounts)
    stage(warehouse, compiled["accounts"], [DAY1])
    process = subprocess.Popen(
        [sys.executable, "-c", KILLED_LOAD, json.dumps(m3ter_sandbox), str(warehouse.root), DAY1]
    )
    deadline = time.monotonic() + 60
    while len(list(client.list("accounts"))) < 20 and time.monotonic() < deadline:
        time.sleep(0.2)
    process.send_signal(signal.SIGKILL)
    process.wait()
    time.sleep(0.5)  # a create in flight when the loader died may still land
    created = len(list(client.list("accounts")))
    assert 0 < created < len(accounts)
    result = load(client, warehouse, "accounts", [DAY1])
    codes = [account["code"] for account in client.list("accounts")]
    assert sorted(codes) == sorted(accounts)
    assert result.outcomes["create:applied"] == len(accounts) - created


def test_a_dry_run_of_several_entities_sees_what_earlier_ones_would_create(
    client, warehouse, compiled
):
    write_raw(warehouse, DAY1, FIRST)
    for entity in ENTITIES:
        stage(warehouse, compiled[entity], [DAY1])
    current = Current(client)
    results = [load(client, warehouse, e, [DAY1], dry_run=True, current=current) for e in ENTITIES]
    assert [r.actions for r in results] == [{"create": 3}] * 4
    assert list(client.list("accounts")) == []


def test_a_record_refused_for_a_reference_staged_later_is_made_when_it_loads(
    client, warehouse, compiled
):
    write_raw(warehouse, DAY1, [(1, ACCOUNTS[0], 0.05, False)], accounts=[])
    first = run(client, warehouse, compiled, DAY1)
    assert first["account_plans"] == {"reject:rejected": 1}
    # The account comes in a later partition; the refused account plan is planned again then.
    write_raw(warehouse, DAY2, [(2, ACCOUNTS[1], 0.06, False)], accounts=ACCOUNTS[:2])
    second = run(client, warehouse, compiled, DAY2)
    assert second["accounts"] == {"create:applied": 2}
    assert second["account_plans"] == {"create:applied": 2}  # item 2's, and item 1's from DAY1
    assert {p["code"] for p in client.list("accountplans")} == {item(1), item(2)}
    writes = client.writes
    run(client, warehouse, compiled, DAY2)
    assert client.writes == writes
