"""SIGKILL at 20 points spread over extract, transform and load: the next run converges to the
clean run's m3ter state, and no reader ever sees a half-written partition.

Each point is a moment the test observes from outside the `m3sync backfill` process: the number of
Salesforce API requests the org has answered (extract), of staged Parquet files in the warehouse
(transform), or of writes m3ter has accepted (load). The pipeline knows nothing of the test.
"""

from __future__ import annotations

import signal
import time
from collections.abc import Callable
from pathlib import Path

import dagster as dg
import pytest

from pipeline.sandbox.server import RunningSandbox
from pipeline.warehouse.catalog import read_ledger
from tests.reliability.conftest import assert_converged
from tests.reliability.world import World

Trigger = Callable[[RunningSandbox, Path], int]


def _salesforce_requests(sandbox: RunningSandbox, _: Path) -> int:
    assert sandbox.salesforce is not None
    return sandbox.salesforce.usage.used


def _staged_partitions(_: RunningSandbox, root: Path) -> int:
    """Staged partitions written so far, with rows or without (each table's ledger; a writer's
    temporary folder may vanish mid-walk, and a partition without rows has no file)."""
    tables = (root / "warehouse" / "data" / "staged").glob("*/")
    return sum(len(read_ledger(table)) for table in tables)


def _m3ter_writes(sandbox: RunningSandbox, _: Path) -> int:
    assert sandbox.m3ter is not None
    return sandbox.m3ter.counters.snapshot()["writes"]


STAGES: dict[str, tuple[Trigger, tuple[int, ...]]] = {
    "extract": (_salesforce_requests, (2, 8, 16, 24, 32, 40, 48)),
    "transform": (_staged_partitions, (1, 8, 16, 24, 32, 40)),
    "load": (_m3ter_writes, (1, 50, 150, 300, 450, 600, 720)),
}
# Each point is two backfills: all of them run with M3SYNC_RELIABILITY=full. The default run's
# crash tests are the layers' own (a load killed halfway in tests/load, a killed m3ter sandbox in
# tests/sandbox, writers killed mid-file in tests/warehouse).
POINTS = [
    pytest.param(stage, at, id=f"{stage}-{at}", marks=[pytest.mark.full])
    for stage, (_, ats) in STAGES.items()
    for at in ats
]


def _kill_when(world: World, sandbox: RunningSandbox, trigger: Trigger, at: int) -> int:
    """Start a backfill and SIGKILL it once `trigger` reaches `at`; the count it was killed at."""
    process = world.start_backfill(world.root / "killed.log")
    deadline = time.monotonic() + 600
    try:
        while (seen := trigger(sandbox, world.root)) < at:
            if process.poll() is not None:
                log = (world.root / "killed.log").read_text()[-2000:]
                pytest.fail(f"the run ended (exit {process.returncode}) before {at}: {log}")
            if time.monotonic() > deadline:
                pytest.fail(f"never reached {at}")
            time.sleep(0.002)
        process.send_signal(signal.SIGKILL)
    finally:
        process.wait(timeout=60)
    assert process.returncode == -signal.SIGKILL
    return seen


def _statuses(world: World) -> set[dg.DagsterRunStatus]:
    instance = dg.DagsterInstance.from_config(str(world.root / "dagster"))
    try:
        return {run.status for run in instance.get_runs()}
    finally:
        instance.dispose()


@pytest.mark.parametrize(("stage", "at"), POINTS)
def test_a_run_killed_at_any_point_converges_on_the_next(world, reference, stage, at):
    trigger, _ = STAGES[stage]
    with world.sandbox() as sandbox:
        _kill_when(world, sandbox, trigger, at)
        assert world.half_written() == []
        result = world.backfill()
        assert result.returncode == 0, result.stdout + result.stderr
        assert world.half_written() == [] and world.leftovers() == []
        assert_converged(world, reference, f"{stage}-{at}", "crashes")
    # The killed run was marked failed, which also freed its `m3ter_api` pool slot (the rerun's
    # load would otherwise have waited for it forever).
    assert dg.DagsterRunStatus.STARTED not in _statuses(world)
