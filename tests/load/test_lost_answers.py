"""Writes applied by m3ter whose answers never came: the loader finds them, never makes two."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from pipeline.load.current import Current
from pipeline.load.journal import Knowledge, write_pending
from pipeline.load.reconcile import plan
from pipeline.load.run import load, staged_rows
from pipeline.m3ter.client import M3terClient
from pipeline.m3ter.settings import sandbox_settings
from pipeline.retry import RetryPolicy
from pipeline.sandbox.faults import FaultConfig
from pipeline.sandbox.m3ter import M3terConfig
from pipeline.sandbox.server import running_sandbox
from pipeline.staging.stage import stage
from tests.load.conftest import DAY1, DAY2, ENTITIES, FIRST, run, write_raw

QUICK = RetryPolicy(attempts=6, base_delay=0.01, max_delay=0.05)


@pytest.fixture
def lossy(tmp_path: Path) -> Iterator[object]:
    """Starts a sandbox that loses the answers of writes to `collection` at `rate`."""

    def start(collection: str, rate: float = 0.7, seed: int = 3) -> Iterator[M3terClient]:
        faults = FaultConfig(rates={f"lost_answer@{collection}": rate}, seed=seed)
        config = M3terConfig(state_dir=tmp_path / "m3ter", faults=faults)
        with running_sandbox(tmp_path / "sandbox", m3ter=config) as running:
            assert running.m3ter is not None
            client = M3terClient(sandbox_settings(running.info()["m3ter"]), QUICK)
            yield client
            assert running.m3ter.faults.injected, "no answer was lost"

    return start


def _codes(client: M3terClient, collection: str) -> list[str]:
    return sorted(o.get("code") or o["id"] for o in client.list(collection))


# One collection in the default run, every one in the reliability suite.
@pytest.mark.parametrize(
    "collection",
    [
        pytest.param("accounts", marks=pytest.mark.full),
        pytest.param("plans", marks=pytest.mark.full),
        "pricings",
        pytest.param("accountplans", marks=pytest.mark.full),
    ],
)
def test_lost_answers_of_creates_leave_exactly_one_object_each(
    lossy, warehouse, compiled, collection
):
    write_raw(warehouse, DAY1, FIRST)
    for client in lossy(collection):
        outcomes = run(client, warehouse, compiled, DAY1)
        assert outcomes == {entity: {"create:applied": 3} for entity in ENTITIES}
        found = _codes(client, collection)
        assert len(found) == len(set(found)) == 3


@pytest.mark.full  # the reliability suite: lost creates and a third run stay in the default run
@pytest.mark.parametrize("collection", ["pricings", "accountplans"])
def test_lost_answers_of_updates_and_end_dates_are_applied_once(
    lossy, warehouse, compiled, collection
):
    write_raw(warehouse, DAY1, FIRST)
    write_raw(
        warehouse,
        DAY2,
        [(1, FIRST[0][1], 0.5, False), (2, FIRST[1][1], 0.06, True)],
        accounts=[],
    )
    for client in lossy(collection, rate=0.6, seed=5):
        run(client, warehouse, compiled, DAY1)
        outcomes = run(client, warehouse, compiled, DAY2)
        assert all(
            status.endswith(":applied") or "unchanged" in status
            for o in outcomes.values()
            for status in o
        )
        again = run(client, warehouse, compiled, DAY2)
        assert all(set(o) <= {"unchanged:unchanged"} for o in again.values()), again


def test_a_third_run_after_lost_answers_writes_nothing(lossy, warehouse, compiled):
    write_raw(warehouse, DAY1, FIRST)
    for client in lossy("accounts", rate=0.9, seed=1):
        run(client, warehouse, compiled, DAY1)
        writes = client.writes
        run(client, warehouse, compiled, DAY1)
        assert client.writes == writes


@pytest.mark.parametrize("collection", ["commitments", "externalmappings"])
def test_a_commitment_and_its_mapping_converge_whatever_answer_is_lost(
    lossy, warehouse, prepaid, collection
):
    for client in lossy(collection, rate=0.6, seed=2):
        load(client, warehouse, "accounts", [DAY1])
        result = load(client, warehouse, "commitments", [DAY1])
        assert result.outcomes == {"create:applied": 3}
        assert len(list(client.list("commitments"))) == 3
        mappings = [m["externalId"] for m in client.list("externalmappings")]
        assert sorted(mappings) == sorted(set(mappings)) and len(mappings) == 3
        again = load(client, warehouse, "commitments", [DAY1])
        assert again.outcomes == {"unchanged:unchanged": 3} and again.writes == 0


def test_a_killed_run_s_creates_are_looked_up_not_made_again(client, warehouse, compiled):
    write_raw(warehouse, DAY1, FIRST)
    stage(warehouse, compiled["accounts"], [DAY1])
    # A run wrote its pending creates, made one account, and died before journaling.
    rows = staged_rows(warehouse, "accounts", [DAY1])
    actions = plan("accounts", rows, Current(client), Knowledge(warehouse))
    write_pending(warehouse, "accounts", "dead-run", actions)
    assert actions[0].body is not None
    client.create("accounts", actions[0].body)
    result = load(client, warehouse, "accounts", [DAY1])
    assert result.outcomes == {"create:applied": 2, "unchanged:unchanged": 1}
    assert len(_codes(client, "accounts")) == 3
