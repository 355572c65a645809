"""The deployment's files are what Dagster accepts: checked in the default run, without a
PostgreSQL or a container runtime."""

from __future__ import annotations

from pathlib import Path

import sqlalchemy
import yaml
from dagster._core.instance.config import dagster_instance_config
from dagster_postgres.utils import get_conn_string

from tests.deploy.deployment import DEPLOY


def test_the_instance_file_passes_dagsters_schema(tmp_path: Path) -> None:
    (tmp_path / "dagster.yaml").write_text((DEPLOY / "dagster.yaml").read_text())
    config, _ = dagster_instance_config(str(tmp_path))
    assert config["run_coordinator"]["class"] == "QueuedRunCoordinator"
    assert config["concurrency"]["pools"]["default_limit"] == 1


def test_the_instance_reads_every_postgres_setting_from_the_environment() -> None:
    database = yaml.safe_load((DEPLOY / "dagster.yaml").read_text())["storage"]["postgres"]
    settings = database["postgres_db"]
    assert {key: value["env"] for key, value in settings.items() if isinstance(value, dict)} == {
        "hostname": "M3SYNC_PG_HOST",
        "port": "M3SYNC_PG_PORT",
        "db_name": "M3SYNC_PG_DB",
        "username": "M3SYNC_PG_USER",
        "password": "M3SYNC_PG_PASSWORD",
    }


def test_the_instance_names_a_driver_that_is_installed() -> None:
    settings = yaml.safe_load((DEPLOY / "dagster.yaml").read_text())["storage"]["postgres"]
    url = get_conn_string("u", "p", "h", "db", scheme=settings["postgres_db"]["scheme"])
    # SQLAlchemy imports the dialect's driver when it makes an engine, before any connection.
    sqlalchemy.create_engine(url).dispose()


def test_the_workspace_names_the_code_server_from_the_environment() -> None:
    (location,) = yaml.safe_load((DEPLOY / "workspace.yaml").read_text())["load_from"]
    assert location["grpc_server"] == {
        "host": {"env": "M3SYNC_CODE_SERVER_HOST"},
        "port": {"env": "M3SYNC_CODE_SERVER_PORT"},
        "location_name": "m3sync",
    }
