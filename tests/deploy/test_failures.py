"""Failure in the deployment: the daemon restarted in the middle of a backfill, and PostgreSQL
restarted in the middle of a run. Either way the queue or the next run converges, and nothing
is made twice in m3ter."""

from __future__ import annotations

import shutil
import signal
import subprocess
import time
from pathlib import Path

import dagster as dg
import pytest

from tests.deploy.deployment import DEPLOY, deployment, history
from tests.deploy.postgres import Postgres
from tests.reliability.conftest import assert_converged
from tests.reliability.world import State, World, one_line_failure

# A deployment starts four processes and backfills the org: more than the default 300 s.
pytestmark = [pytest.mark.deploy, pytest.mark.timeout(900)]


def _wait(condition, timeout: float = 600) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.2)


def test_a_daemon_killed_during_a_backfill_resumes_its_queue_and_doubles_nothing(
    tmp_path: Path, postgres: Postgres, reference: State
) -> None:
    world = World(tmp_path / "world")
    with world.sandbox() as sandbox, deployment(world, postgres, tmp_path / "deploy") as deployed:
        assert sandbox.m3ter is not None
        backfill = deployed.launch_backfill(history(world))
        _wait(lambda: sandbox.m3ter.counters.snapshot()["writes"] > 0)
        deployed.restart("daemon", signal.SIGKILL)
        assert deployed.wait_for_backfill(backfill) == "COMPLETED_SUCCESS", deployed.logs()
        runs = deployed.wait_for_runs()
        assert {r["status"] for r in runs} == {"SUCCESS"}
        assert_converged(world, reference, "daemon restarted", None)


def test_postgres_restarted_during_a_run_fails_it_in_one_line_or_not_and_the_next_converges(
    tmp_path: Path, postgres: Postgres, reference: State
) -> None:
    postgres.fresh_database()
    world = World(tmp_path)
    home = tmp_path / "dagster"
    home.mkdir()
    shutil.copy(DEPLOY / "dagster.yaml", home / "dagster.yaml")
    env = {**world.env(), **postgres.env}
    with world.sandbox() as sandbox:
        assert sandbox.m3ter is not None
        log = tmp_path / "first.log"
        with log.open("w") as out:
            first = subprocess.Popen(
                world.backfill_command(), stdout=out, stderr=subprocess.STDOUT, text=True, env=env
            )
        _wait(lambda: sandbox.m3ter.counters.snapshot()["writes"] > 0)
        postgres.restart()
        first.wait(timeout=600)
        ended = subprocess.CompletedProcess(first.args, first.returncode, log.read_text(), "")
        if first.returncode != 0:
            assert one_line_failure(ended), ended.stdout
        again = subprocess.run(
            world.backfill_command(),
            capture_output=True,
            text=True,
            env=env,
            timeout=600,
            check=False,
        )
        assert again.returncode == 0, again.stdout + again.stderr
        assert_converged(world, reference, "postgres restarted", None)


def test_a_launched_run_no_daemon_would_dequeue_is_canceled_and_said_in_one_line(
    tmp_path: Path, postgres: Postgres, monkeypatch: pytest.MonkeyPatch
) -> None:
    world = World(tmp_path / "world")
    with world.sandbox(), deployment(world, postgres, tmp_path / "deploy") as deployed:
        deployed.services["daemon"].stop()
        for name, value in postgres.env.items():
            monkeypatch.setenv(name, value)
        with dg.DagsterInstance.from_config(str(deployed.home)) as instance:
            instance.wipe_daemon_heartbeats()  # as on an instance whose daemon never ran
        result = deployed.m3sync("--launch", "run", "--partition", history(world)[-1])
        assert result.returncode == 1
        assert one_line_failure(result), result.stdout
        assert "no dagster-daemon serves it" in result.stdout
        assert [r["status"] for r in deployed.runs()] == ["CANCELED"]
