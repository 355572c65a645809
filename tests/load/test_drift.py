"""A full reconcile finds what was changed in m3ter by hand, and repairs it only when asked."""

from __future__ import annotations

from pipeline.load.drift import full_reconcile
from pipeline.staging.stage import stage
from tests.load.conftest import ACCOUNTS, DAY1, DAY2, FIRST, item, run, write_raw


def _account(client, code: str) -> dict:
    return next(a for a in client.list("accounts") if a["code"] == code)


def _rename_by_hand(client) -> None:
    account = _account(client, ACCOUNTS[0])
    client.update("accounts", account["id"], {**account, "name": "Renamed by hand"})


def test_a_synced_state_has_no_drift_and_nothing_pending(client, warehouse, compiled):
    write_raw(warehouse, DAY1, FIRST)
    run(client, warehouse, compiled, DAY1)
    result = full_reconcile(client, warehouse)
    assert result.drift == 0 and result.pending == 0


def test_an_object_edited_by_hand_is_drift(client, warehouse, compiled):
    write_raw(warehouse, DAY1, FIRST)
    run(client, warehouse, compiled, DAY1)
    _rename_by_hand(client)
    result = full_reconcile(client, warehouse)
    (accounts,) = [e for e in result.entities if e.entity == "accounts"]
    assert accounts.causes == {"changed_in_m3ter": 1}
    (drifted,) = accounts.listed
    assert drifted.code == ACCOUNTS[0] and drifted.changes["name"][0] == "Renamed by hand"


def test_an_object_deleted_by_hand_is_drift(client, warehouse, compiled):
    write_raw(warehouse, DAY1, FIRST)
    run(client, warehouse, compiled, DAY1)
    (plan,) = [p for p in client.list("accountplans") if p["code"] == item(2)]
    client.delete("accountplans", plan["id"])
    result = full_reconcile(client, warehouse)
    (account_plans,) = [e for e in result.entities if e.entity == "account_plans"]
    assert account_plans.causes == {"deleted_in_m3ter": 1}


def test_a_change_staged_but_not_loaded_is_pending_not_drift(client, warehouse, compiled):
    write_raw(warehouse, DAY1, FIRST)
    run(client, warehouse, compiled, DAY1)
    write_raw(warehouse, DAY2, [(2, ACCOUNTS[1], 0.09, False)], accounts=[])
    stage(warehouse, compiled["pricings"], [DAY2])
    result = full_reconcile(client, warehouse)
    assert result.drift == 0 and result.pending == 1


def test_a_report_writes_nothing(client, warehouse, compiled):
    write_raw(warehouse, DAY1, FIRST)
    run(client, warehouse, compiled, DAY1)
    _rename_by_hand(client)
    writes = client.writes
    full_reconcile(client, warehouse)
    assert client.writes == writes
    assert _account(client, ACCOUNTS[0])["name"] == "Renamed by hand"


def test_applying_restores_what_salesforce_says_and_leaves_no_drift(client, warehouse, compiled):
    write_raw(warehouse, DAY1, FIRST)
    run(client, warehouse, compiled, DAY1)
    _rename_by_hand(client)
    applied = full_reconcile(client, warehouse, apply=True)
    assert applied.applied and applied.drift == 1
    assert _account(client, ACCOUNTS[0])["name"] == f"Account {ACCOUNTS[0][-5:]}"
    assert full_reconcile(client, warehouse).drift == 0
