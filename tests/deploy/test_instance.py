"""`m3sync` on an operator's instance: the deployment's dagster.yaml on PostgreSQL, used as it
is, by runs in the command's process and by runs it hands to the queue."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from tests.deploy.deployment import DEPLOY
from tests.deploy.postgres import Postgres
from tests.reliability.conftest import assert_converged
from tests.reliability.world import State, World

# A backfill of the org on PostgreSQL, with the reference run before it: more than 300 s.
pytestmark = [pytest.mark.deploy, pytest.mark.timeout(900)]


def _backfill(world: World, postgres: Postgres) -> subprocess.CompletedProcess[str]:
    home = world.root / "dagster"
    home.mkdir(parents=True)
    shutil.copy(DEPLOY / "dagster.yaml", home / "dagster.yaml")
    return subprocess.run(
        world.backfill_command(),
        capture_output=True,
        text=True,
        env={**world.env(), **postgres.env},
        timeout=600,
        check=False,
    )


def test_a_backfill_in_the_commands_process_records_its_runs_in_postgres(
    tmp_path: Path, postgres: Postgres, reference: State
) -> None:
    postgres.fresh_database()
    world = World(tmp_path)
    with world.sandbox():
        result = _backfill(world, postgres)
        assert result.returncode == 0, result.stdout + result.stderr
        assert_converged(world, reference, "postgres instance", None)
    assert (tmp_path / "dagster" / "dagster.yaml").read_bytes() == (
        DEPLOY / "dagster.yaml"
    ).read_bytes()
    assert not (tmp_path / "dagster" / "history").exists()  # no SQLite beside it
    with postgres.connect() as connection, connection.cursor() as cursor:
        cursor.execute("SELECT status FROM runs")
        assert [status for (status,) in cursor.fetchall()] == ["SUCCESS"]
        cursor.execute(
            "SELECT count(*) FROM event_logs WHERE dagster_event_type = 'ASSET_MATERIALIZATION'"
        )
        (materializations,) = cursor.fetchone()
    assert materializations > 0
