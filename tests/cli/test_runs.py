"""`m3sync run`, `backfill`, `reconcile` and `inspect` as an operator runs them, against a
sandbox serving in its own process; every run is recorded in DAGSTER_HOME."""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from unittest import mock

import dagster as dg
import duckdb
import pytest

from pipeline.cli.runs import use_sandbox
from pipeline.salesforce.client import SalesforceClient
from pipeline.salesforce.settings import sandbox_settings
from tests.processes import M3SYNC, sandbox_process

DAYS = 6
FIRST = (dt.datetime.now(dt.UTC).date() - dt.timedelta(days=DAYS)).isoformat()
LAST = (dt.datetime.now(dt.UTC).date() - dt.timedelta(days=1)).isoformat()
# A backfill through Dagster, then each command against it: the operator suite.
pytestmark = pytest.mark.operator


class Operator:
    """Runs `m3sync` commands with one environment, as a shell session would."""

    def __init__(self, root: Path, sandbox: Path) -> None:
        self.root, self.sandbox = root, sandbox
        self.env = {
            **os.environ,
            "DAGSTER_HOME": str(root / "dagster"),
            "M3SYNC_WAREHOUSE": str(root / "warehouse"),
            "M3SYNC_START_DATE": FIRST,
            "M3SYNC_BACKFILL_PARTITIONS_PER_RUN": "2",
            "COLUMNS": "200",
        }

    def __call__(self, *args: str, sandbox: bool = True) -> subprocess.CompletedProcess[str]:
        extra = ["--sandbox", str(self.sandbox)] if sandbox else []
        return subprocess.run(
            [M3SYNC, *args, *extra], capture_output=True, text=True, env=self.env, check=False
        )

    def runs(self) -> list[Any]:
        os.environ["DAGSTER_HOME"] = self.env["DAGSTER_HOME"]
        with dg.DagsterInstance.get() as instance:
            return list(instance.get_runs())


@pytest.fixture(scope="module")
def operator(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Operator]:
    root = tmp_path_factory.mktemp("operator")
    saved = os.environ.get("DAGSTER_HOME")
    with sandbox_process(root / "sandbox", "--accounts", "3"):
        op = Operator(root, root / "sandbox" / "sandbox.json")
        backfill = op("backfill", "--from", FIRST, "--to", LAST)
        assert backfill.returncode == 0, backfill.stdout + backfill.stderr
        op.backfill = backfill  # type: ignore[attr-defined]
        yield op
    if saved is None:
        os.environ.pop("DAGSTER_HOME", None)
    else:
        os.environ["DAGSTER_HOME"] = saved


def test_a_backfill_runs_as_chunks_of_the_policy_s_size(operator):
    runs = [r for r in operator.runs() if r.job_name == "sync"]
    assert len(runs) == DAYS // 2
    starts = sorted(r.tags["dagster/asset_partition_range_start"] for r in runs)
    assert starts[0] == FIRST and all(r.status == dg.DagsterRunStatus.SUCCESS for r in runs)


def test_a_range_run_plans_each_asset_once_not_once_per_partition(operator):
    os.environ["DAGSTER_HOME"] = operator.env["DAGSTER_HOME"]
    with dg.DagsterInstance.get() as instance:
        run = next(r for r in instance.get_runs() if r.job_name == "sync")
        planned = instance.get_records_for_run(
            run.run_id, of_type=dg.DagsterEventType.ASSET_MATERIALIZATION_PLANNED, limit=1000
        ).records
        materialized = instance.get_records_for_run(
            run.run_id, of_type=dg.DagsterEventType.ASSET_MATERIALIZATION, limit=1000
        ).records
    assets = {record.event_log_entry.dagster_event.asset_key for record in planned}
    assert len(planned) == len(assets)
    assert len(materialized) > len(planned)


def test_the_sandbox_s_first_day_is_the_start_date_unless_one_is_set(operator):
    info = json.loads(operator.sandbox.read_text())
    with mock.patch.dict(os.environ, clear=False):
        os.environ.pop("M3SYNC_START_DATE", None)
        use_sandbox(info)
        assert os.environ["M3SYNC_START_DATE"] == info["salesforce"]["history_from"]
        os.environ["M3SYNC_START_DATE"] = FIRST
        use_sandbox(info)
        assert os.environ["M3SYNC_START_DATE"] == FIRST


def test_a_backfill_prints_rows_rejects_and_actions(operator):
    out = operator.backfill.stdout
    assert "raw.order_item" in out and "staged.pricings" in out and "Load into m3ter" in out
    assert "Runs:" in out and "warehouse.duckdb" in out


def test_a_backfill_of_several_runs_reports_the_coverage_the_last_one_measured(operator):
    summary = next(
        line
        for line in operator.backfill.stdout.splitlines()
        if line.startswith("Billing coverage")
    )
    measured = operator("coverage")
    assert measured.returncode == 0, measured.stdout + measured.stderr
    assert summary in measured.stdout  # the whole state's, not a sum over the runs


def test_a_run_again_writes_nothing_to_m3ter(operator):
    result = operator("run", "--partition", LAST)
    assert result.returncode == 0, result.stdout + result.stderr
    load = result.stdout.split("Load into m3ter", 1)[1]
    assert "create:applied" not in load and "update:applied" not in load


def test_a_run_configuration_file_reaches_the_run(operator, tmp_path):
    config = tmp_path / "run.yaml"
    config.write_text("resources:\n  extract_settings:\n    config:\n      rest_threshold: 0\n")
    result = operator("run", "--partition", LAST, "--config", str(config))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "│   bulk │" in result.stdout


def test_a_run_configuration_that_is_not_a_mapping_fails_in_one_line(operator, tmp_path):
    config = tmp_path / "run.yaml"
    config.write_text("- rest_threshold: 0\n")
    result = operator("run", "--partition", LAST, "--config", str(config))
    assert result.returncode == 1
    assert result.stdout.strip().splitlines()[-1].endswith("is not a mapping")


def test_reconcile_after_a_backfill_finds_no_drift(operator):
    result = operator("reconcile")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Full reconcile (nothing written)" in result.stdout
    assert any(r.job_name == "full_reconcile" for r in operator.runs())
    # The org's three years are older than the backfill's first day: the warehouse never held
    # them, and the reconcile says which days to extract.
    assert "Salesforce against the warehouse" in result.stdout
    assert "m3sync backfill --from" in result.stdout


def test_inspect_lists_the_warehouse_tables(operator):
    result = operator("inspect", sandbox=False)
    assert result.returncode == 0, result.stderr
    assert "staged.accounts" in result.stdout and "raw.order_item" in result.stdout


def test_inspect_shows_a_table_s_rows(operator):
    result = operator("inspect", "accounts", "--limit", "2", sandbox=False)
    assert result.returncode == 0, result.stderr
    assert "staged.accounts (first" in result.stdout


def test_inspect_summarises_rejects_by_reason(operator):
    result = operator("inspect", "rejects", sandbox=False)
    assert result.returncode == 0, result.stderr
    assert "staged.rejects by reason" in result.stdout or "staged.rejects by reason: none" in (
        result.stdout
    )


def test_an_unknown_table_fails_with_the_tables_it_knows(operator):
    result = operator("inspect", "nope", sandbox=False)
    assert result.returncode == 1 and "no table 'nope'" in result.stdout


def test_a_bad_partition_exits_non_zero_with_one_line(operator):
    result = operator("run", "--partition", "1999-01-01")
    assert result.returncode == 1
    assert "is not a daily partition" in result.stdout
    assert "Traceback" not in result.stdout + result.stderr


def test_verbose_shows_the_traceback_of_a_failed_run(operator, tmp_path):
    mappings = tmp_path / "mappings"
    mappings.mkdir()
    (mappings / "accounts.yaml").write_text(
        "- name: Broken\n  object: Account\n  fields:\n    name: No_Such_Field__c\n"
    )
    env = {**operator.env, "M3SYNC_MAPPINGS_DIR": str(mappings)}
    command = ["run", "--partition", LAST, "--sandbox", str(operator.sandbox)]
    quiet = subprocess.run([M3SYNC, *command], capture_output=True, text=True, env=env, check=False)
    loud = subprocess.run(
        [M3SYNC, "-v", *command], capture_output=True, text=True, env=env, check=False
    )
    assert quiet.returncode == loud.returncode == 1
    assert "No_Such_Field__c" in quiet.stdout
    assert "Traceback" not in quiet.stdout + quiet.stderr
    assert "Stack Trace" not in quiet.stdout + quiet.stderr
    assert "Traceback" in loud.stdout or "Stack Trace" in loud.stdout


def test_a_refresh_after_the_backfill_reads_every_record_and_writes_nothing(operator):
    refreshed = operator("refresh")
    assert refreshed.returncode == 0, refreshed.stdout + refreshed.stderr
    out = refreshed.stdout
    assert "Refresh" in out and "OrderItem" in out and "m3ter writes: 0" in out
    (run,) = [r for r in operator.runs() if r.job_name == "refresh"]
    assert run.status == dg.DagsterRunStatus.SUCCESS


def _billable_line(operator: Operator) -> str:
    catalog = operator.root / "warehouse" / "warehouse.duckdb"
    with duckdb.connect(str(catalog), read_only=True) as con:
        row = con.execute(
            "SELECT source_id FROM load.coverage WHERE billable AND source_object = 'OrderItem' "
            "ORDER BY source_id LIMIT 1"
        ).fetchone()
    assert row is not None, "the backfill billed a line"
    return str(row[0])


def test_a_backfill_writes_each_record_s_sync_status_back_to_salesforce(operator):
    line = next(
        x for x in operator.backfill.stdout.splitlines() if x.startswith("Salesforce write-back")
    )
    assert "0 failed" in line and "Success" in line, line
    info = json.loads(operator.sandbox.read_text())["salesforce"]
    client = SalesforceClient(sandbox_settings(info))
    item = _billable_line(operator)
    (record,) = client.query_records(
        f"SELECT M3ter_Sync_Status__c, M3ter_Id__c FROM OrderItem WHERE Id = '{item}'"
    )
    assert record["M3ter_Sync_Status__c"] == "Success" and record["M3ter_Id__c"]


def test_a_run_with_nothing_new_writes_no_status_back(operator):
    result = operator("run", "--partition", LAST)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Salesforce write-back: 0 statuses written, 0 failed" in result.stdout
    assert ", 0 API calls" in result.stdout


def test_explain_tells_a_record_s_story_from_its_mapping_to_its_status(operator):
    item = _billable_line(operator)
    result = operator("explain", item, sandbox=False)
    assert result.returncode == 0, result.stdout + result.stderr
    out = result.stdout
    assert f"OrderItem {item}" in out
    assert "→ pricings" in out and "unitPrice" in out and "UnitPrice" in out
    assert "In m3ter" in out and "Coverage: bills in m3ter." in out
    assert "Written back to Salesforce" in out and "Success" in out


def test_explain_of_an_id_the_warehouse_does_not_hold_fails_in_one_line(operator):
    result = operator("explain", "802000000000000AAA", sandbox=False)
    assert result.returncode == 1
    assert "the warehouse holds no record 802000000000000AAA" in result.stdout
