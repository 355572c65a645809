"""The deployment as an operator runs it: a backfill launched from the UI's backend goes through
the daemon's queue to the code server's runs, beside a nightly run handed to the same queue by
`m3sync --launch`, with one load step writing to m3ter at a time."""

from __future__ import annotations

import itertools
import threading
from pathlib import Path

import pytest

from tests.deploy.deployment import deployment, history, load_steps
from tests.deploy.postgres import Postgres
from tests.reliability.conftest import assert_converged
from tests.reliability.world import State, World

# A deployment starts four processes and backfills the org: more than the default 300 s.
pytestmark = [pytest.mark.deploy, pytest.mark.timeout(900)]
CLOCK_SLACK = 0.05  # the sandbox and the run workers share this machine's clock


def test_a_queued_backfill_and_a_launched_nightly_run_bill_like_a_clean_run_one_load_at_a_time(
    tmp_path: Path, postgres: Postgres, reference: State
) -> None:
    world = World(tmp_path / "world")
    with world.sandbox() as sandbox, deployment(world, postgres, tmp_path / "deploy") as deployed:
        assert sandbox.m3ter is not None
        days = history(world)
        backfill = deployed.launch_backfill(days)
        nightly: dict[str, object] = {}

        def nightly_run() -> None:
            nightly["result"] = deployed.m3sync("--launch", "run", "--partition", days[-1])

        beside = threading.Thread(target=nightly_run)
        beside.start()
        status = deployed.wait_for_backfill(backfill)
        beside.join(timeout=900)
        result = nightly["result"]
        assert result.returncode == 0, result.stdout + result.stderr  # type: ignore[attr-defined]
        assert status == "COMPLETED_SUCCESS", deployed.logs()

        runs = deployed.wait_for_runs()
        assert {r["status"] for r in runs} == {"SUCCESS"}
        backfill_runs = [
            r for r in runs if {"key": "dagster/backfill", "value": backfill} in r["tags"]
        ]
        assert len(backfill_runs) > 1  # a multi-run backfill
        assert len(runs) > len(backfill_runs)  # and the nightly run beside it

        steps = load_steps(runs)
        for (_, end, run), (start, _, other) in itertools.pairwise(steps):
            assert start >= end - CLOCK_SLACK, f"load steps of {run} and {other} overlap"
        for write in sandbox.m3ter.counters.writes():
            assert any(
                start - CLOCK_SLACK <= write.started and write.ended <= end + CLOCK_SLACK
                for start, end, _ in steps
            ), f"a write outside every load step: {write}"
        assert sandbox.m3ter.counters.writes()

        assert_converged(world, reference, "deployment", None)
        for asset, stats in deployed.partition_stats().items():
            assert stats["numMaterialized"] == stats["numPartitions"] == len(days), asset
            assert stats["numFailed"] == 0, asset
