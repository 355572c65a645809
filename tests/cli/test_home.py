"""The commands' DAGSTER_HOME: made on first use with the batched event log; m3sync's earlier
default is brought up to date; an operator's own dagster.yaml is left alone."""

from __future__ import annotations

import os
from pathlib import Path

import dagster as dg
import pytest

from assets.storage import BatchedSqliteEventLogStorage
from pipeline.cli.home import EARLIER_CONFIG, dagster_home


@pytest.fixture(autouse=True)
def _own_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("DAGSTER_HOME", "DAGSTER_EVENT_BATCH_SIZE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("DAGSTER_HOME", "")


def test_a_new_home_stores_events_in_batches(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "home"))
    home = dagster_home()
    instance = dg.DagsterInstance.from_config(str(home))
    assert isinstance(instance.event_log_storage, BatchedSqliteEventLogStorage)
    assert os.environ["DAGSTER_EVENT_BATCH_SIZE"] == "1000"
    assert (home / "history" / "runs" / "index.db").exists()


def test_a_home_with_m3syncs_earlier_default_is_brought_up_to_date(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "dagster.yaml").write_text(EARLIER_CONFIG)
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path))
    dagster_home()
    assert "BatchedSqliteEventLogStorage" in (tmp_path / "dagster.yaml").read_text()


def test_an_operators_own_instance_config_is_left_alone(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    own = "telemetry:\n  enabled: true\n"
    (tmp_path / "dagster.yaml").write_text(own)
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path))
    dagster_home()
    assert (tmp_path / "dagster.yaml").read_text() == own
