"""The operator's Dagster surface: the sync job, its nightly schedule, backfill runs, the full
reconcile job, the refresh job and its weekly schedule, and the failure sensor."""

from __future__ import annotations

import datetime as dt
import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import ClassVar

import dagster as dg
import pytest

from assets.definitions import defs
from assets.jobs import FULL_RECONCILE, NIGHTLY, REFRESH, SYNC, WEEKLY_REFRESH
from assets.sensors import WEBHOOK, run_failure_alert


def test_one_code_location_holds_the_jobs_schedule_and_sensor():
    loaded = defs()
    dg.Definitions.validate_loadable(loaded)
    assert loaded.resolve_job_def(SYNC).partitions_def is not None
    assert loaded.resolve_job_def(FULL_RECONCILE).partitions_def is None
    assert loaded.resolve_sensor_def("run_failure_alert") is not None


def test_the_nightly_schedule_is_off_until_switched_on_and_runs_at_two_utc():
    schedule = defs().resolve_schedule_def(NIGHTLY)
    assert schedule.default_status == dg.DefaultScheduleStatus.STOPPED
    assert schedule.cron_schedule == "0 2 * * *" and schedule.execution_timezone == "UTC"


def test_the_nightly_time_comes_from_the_environment(monkeypatch):
    monkeypatch.setenv("M3SYNC_NIGHTLY_AT", "03:30")
    assert defs().resolve_schedule_def(NIGHTLY).cron_schedule == "30 3 * * *"


def test_a_bad_nightly_time_is_refused_with_the_variable(monkeypatch):
    monkeypatch.setenv("M3SYNC_NIGHTLY_AT", "25:00")
    with pytest.raises(ValueError, match="M3SYNC_NIGHTLY_AT"):
        defs()


def test_the_weekly_refresh_is_off_until_switched_on_and_runs_the_refresh_job(monkeypatch):
    schedule = defs().resolve_schedule_def(WEEKLY_REFRESH)
    assert schedule.default_status == dg.DefaultScheduleStatus.STOPPED
    assert schedule.job_name == REFRESH and schedule.cron_schedule == "0 3 * * 0"
    assert defs().resolve_job_def(REFRESH).partitions_def is None
    monkeypatch.setenv("M3SYNC_REFRESH_CRON", "0 4 * * 6")
    assert defs().resolve_schedule_def(WEEKLY_REFRESH).cron_schedule == "0 4 * * 6"


def test_a_nightly_tick_asks_for_yesterday_s_partition():
    schedule = defs().resolve_schedule_def(NIGHTLY)
    tick = dt.datetime(2026, 11, 21, 2, 0, tzinfo=dt.UTC)
    with dg.instance_for_test() as instance:
        context = dg.build_schedule_context(instance=instance, scheduled_execution_time=tick)
        (request,) = schedule.evaluate_tick(context).run_requests
    assert request.partition_key == "2026-11-20"


def test_a_backfill_of_ten_years_is_one_run():
    job = defs().resolve_job_def(SYNC)
    policies = {
        a.backfill_policy for a in job.asset_layer.asset_graph.assets_defs if a.partitions_def
    }
    (policy,) = policies
    assert policy.max_partitions_per_run >= 10 * 366


def test_the_backfill_run_size_comes_from_the_environment(monkeypatch):
    monkeypatch.setenv("M3SYNC_BACKFILL_PARTITIONS_PER_RUN", "30")
    job = defs().resolve_job_def(SYNC)
    sizes = {
        a.backfill_policy.max_partitions_per_run
        for a in job.asset_layer.asset_graph.assets_defs
        if a.partitions_def
    }
    assert sizes == {30}


class Hook(BaseHTTPRequestHandler):
    received: ClassVar[list[dict]] = []

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        Hook.received.append(json.loads(body))
        self.send_response(200)
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def webhook() -> Iterator[str]:
    Hook.received = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), Hook)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/hooks/secret"
    server.shutdown()


@dg.op
def broken() -> None:
    raise RuntimeError("m3ter said no")


@dg.job
def failing() -> None:
    broken()


def _failure_context(instance: dg.DagsterInstance) -> dg.RunFailureSensorContext:
    result = failing.execute_in_process(
        instance=instance, raise_on_error=False, tags={"dagster/partition": "2026-11-20"}
    )
    run = instance.get_run_by_id(result.run_id)
    (event,) = [e for e in result.all_events if e.event_type == dg.DagsterEventType.RUN_FAILURE]
    return dg.build_run_status_sensor_context(
        sensor_name="run_failure_alert",
        dagster_instance=instance,
        dagster_run=run,
        dagster_event=event,
    ).for_run_failure()


def test_a_failed_run_is_posted_to_the_webhook(webhook, monkeypatch):
    monkeypatch.setenv(WEBHOOK, webhook)
    with dg.instance_for_test() as instance:
        run_failure_alert(_failure_context(instance))
    (posted,) = Hook.received
    assert posted["job"] == "failing" and posted["partitions"] == ["2026-11-20"]
    assert "failed" in posted["text"]


def test_without_a_webhook_a_failed_run_is_only_logged(webhook, monkeypatch):
    monkeypatch.delenv(WEBHOOK, raising=False)
    with dg.instance_for_test() as instance:
        run_failure_alert(_failure_context(instance))
    assert Hook.received == []
