"""Runs of the code location's jobs, in this process or (`--launch`) through DAGSTER_HOME's run
coordinator, with a progress bar fed by the run's event log and a summary of what they did.

Kept apart from the commands (`pipeline/cli/runs.py`) because importing Dagster and the assets
takes seconds that `m3sync --help` and the sandbox should not pay.
"""

from __future__ import annotations

import functools
import json
import os
import socket
import threading
import time
import uuid
import warnings
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import dagster as dg
import yaml
from dagster._cli.job import execute_launch_command
from dagster._core.storage.event_log.base import EventLogCursor
from dagster._daemon.controller import get_daemon_statuses
from dagster_shared.cli import WorkspaceOpts
from rich.markdown import Markdown
from rich.table import Table

from assets.definitions import defs
from assets.jobs import FULL_RECONCILE, REFRESH, SYNC
from assets.load import AFTER
from assets.partitions import daily_partitions, partitions_per_run
from assets.pools import declared_pools, initialize_pools
from pipeline.alerts import one_line
from pipeline.cli.app import Options, console, fail, warehouse_root
from pipeline.cli.coverage import print_coverage
from pipeline.cli.home import dagster_home
from pipeline.cli.progress import ProgressView, RunProgress, terminal_output

# `backfill_policy` is a beta parameter the assets rely on knowingly.
warnings.filterwarnings("ignore", category=dg.BetaWarning)

RANGE_START = "dagster/asset_partition_range_start"
RANGE_END = "dagster/asset_partition_range_end"
WRITEBACK_ASSET = "salesforce/writeback"
HOST_TAG, PID_TAG = "m3sync/host", "m3sync/pid"  # which CLI process runs a run
STEP_EVENTS = {
    dg.DagsterEventType.STEP_START,
    dg.DagsterEventType.STEP_SUCCESS,
    dg.DagsterEventType.STEP_FAILURE,
    dg.DagsterEventType.STEP_SKIPPED,
}
LOAD_STEP = "m3ter__"  # the load steps, whose messages tell their writes
# What the summary reads of a finished run.
SUMMARY_EVENTS = {
    dg.DagsterEventType.ASSET_MATERIALIZATION,
    dg.DagsterEventType.STEP_OUTPUT,
    dg.DagsterEventType.STEP_FAILURE,
    dg.DagsterEventType.RUN_FAILURE,
}
PROJECT_WORKSPACE = Path(__file__).resolve().parents[2] / "workspace.yaml"
# A launched run still queued after this long makes m3sync look for the daemon that dequeues it.
QUEUE_PATIENCE = 30.0
QUEUE_DAEMON = "QUEUED_RUN_COORDINATOR"
# The daemon heartbeats every 30 s; Dagster's UI tolerates 30 minutes of silence. A queue whose
# daemon has said nothing for 90 s is taken as unserved.
HEARTBEAT_TOLERANCE = 60.0


@dataclass(frozen=True)
class Finished:
    """A finished run as the summary reads it, wherever it ran."""

    run_id: str
    success: bool
    events: Sequence[dg.DagsterEvent]


@dataclass
class Ran:
    """What the runs of one command did: each asset's metadata summed over runs (`assets`),
    and as the last run left it (`last`: measures of the whole state, such as coverage)."""

    run_ids: list[str] = field(default_factory=list)
    assets: dict[str, dict[str, Any]] = field(default_factory=dict)
    last: dict[str, dict[str, Any]] = field(default_factory=dict)
    outputs: dict[str, dict[str, Any]] = field(default_factory=dict)

    def add(self, run: Finished) -> None:
        self.run_ids.append(run.run_id)
        seen: set[str] = set()
        for event in run.events:
            if event.event_type == dg.DagsterEventType.ASSET_MATERIALIZATION:
                name = event.asset_key.to_user_string()
                if name in seen:  # a range run reports each asset once per partition
                    continue
                seen.add(name)
                meta = {k: v.value for k, v in event.materialization.metadata.items()}
                self.assets[name] = _summed(self.assets.get(name), meta)
                self.last[name] = meta
            elif event.event_type == dg.DagsterEventType.STEP_OUTPUT:
                data = event.step_output_data
                self.outputs[event.node_name] = {k: v.value for k, v in data.metadata.items()}


def _summed(before: dict[str, Any] | None, after: dict[str, Any]) -> dict[str, Any]:
    if before is None:
        return after
    summed = dict(after)
    for key, value in after.items():
        old = before.get(key)
        if isinstance(value, int | float) and not isinstance(value, bool):
            summed[key] = (old or 0) + value
        elif isinstance(value, dict) and isinstance(old, dict):
            summed[key] = {k: old.get(k, 0) + value.get(k, 0) for k in {*old, *value}}
    return summed


def _failure(run: Finished) -> str:
    failures = [e for e in run.events if e.event_type == dg.DagsterEventType.STEP_FAILURE]
    if not failures:
        ended = [e for e in run.events if e.event_type == dg.DagsterEventType.RUN_FAILURE]
        if ended and ended[-1].message:  # the run worker died, or the run never started
            return one_line(ended[-1].message)
        return "the run failed; see its logs in the UI"
    event = failures[0]
    error = event.step_failure_data.error
    if Options.verbose and error is not None:
        return f"{event.step_key} failed:\n{error.to_string()}"
    while error is not None and error.cause is not None:
        error = error.cause
    message = error.message.strip().splitlines()[-1] if error and error.message else "failed"
    return f"{event.step_key} failed: {message}"


@contextmanager
def _progress(
    instance: dg.DagsterInstance, run_id: str, progress: RunProgress, output: IO[str]
) -> Iterator[None]:
    """The run's progress, fed by its event log every half second."""
    stop = threading.Event()
    with ProgressView(progress, output) as view:

        def follow() -> None:
            steps = messages = None
            while True:
                finished = stop.wait(0.5)
                # Step events by type alone: a range step's materializations (one per partition)
                # are not read back. A load's messages are read from its start, while it runs.
                page = instance.get_records_for_run(run_id, cursor=steps, of_type=STEP_EVENTS)
                steps = page.cursor
                for record in page.records:
                    event = record.event_log_entry.dagster_event
                    assert event is not None
                    if event.event_type == dg.DagsterEventType.STEP_START:
                        progress.step_started(str(event.step_key))
                        messages = EventLogCursor.from_storage_id(record.storage_id).to_string()
                    else:
                        progress.step_finished(str(event.step_key))
                if progress.step and progress.step.startswith(LOAD_STEP) and messages:
                    heard = instance.get_records_for_run(run_id, cursor=messages)
                    messages = heard.cursor
                    for record in heard.records:
                        entry = record.event_log_entry
                        if entry.dagster_event is None and entry.step_key and entry.user_message:
                            progress.message(entry.step_key, entry.user_message)
                view.show()
                if finished and not page.has_more:
                    return

        follower = threading.Thread(target=follow, name="run-progress", daemon=True)
        follower.start()
        try:
            yield
        finally:
            stop.set()
            follower.join(timeout=10)


@functools.cache
def _definitions() -> dg.Definitions:
    """The code location, built once per command (after `configure` set the environment)."""
    return defs()


def launch(
    job_name: str,
    label: str,
    *,
    tags: Mapping[str, str] | None = None,
    run_config: Mapping[str, Any] | None = None,
    partitions: int = 0,
    output: IO[str] | None = None,
) -> Finished:
    """One run of a code-location job, recorded in DAGSTER_HOME, its progress shown on `output`
    (this process's stdout): in this process, or with `--launch` through the instance's run
    coordinator."""
    dagster_home()
    instance = dg.DagsterInstance.get()
    release_dead_runs(instance)
    initialize_pools(instance, declared_pools(_definitions()))
    job = _definitions().resolve_job_def(job_name)
    run_id = str(uuid.uuid4())
    # Quiet runs say what failed in one line of their own; Dagster's log (with stack traces) is
    # for --verbose and the UI.
    level = "INFO" if Options.verbose else "CRITICAL"
    config = {"loggers": {"console": {"config": {"log_level": level}}}, **(run_config or {})}
    graph = job.asset_layer.asset_graph
    progress = RunProgress(
        label,
        steps=len(job.graph.node_dict),
        partitions=partitions,
        partitioned_steps=frozenset(
            "__".join(key.path)  # an asset's step is named after its key
            for key in job.asset_layer.selected_asset_keys
            if graph.get(key).partitions_def is not None
        ),
    )
    shown = output or terminal_output()
    try:
        with _progress(instance, run_id, progress, shown):
            if Options.launch:
                return _submitted(instance, job_name, run_id, config, tags or {})
            result = job.execute_in_process(
                run_config=config,
                instance=instance,
                tags={**(tags or {}), HOST_TAG: socket.gethostname(), PID_TAG: str(os.getpid())},
                run_id=run_id,
                raise_on_error=False,
            )
            return Finished(result.run_id, result.success, result.all_events)
    finally:
        if output is None:
            shown.close()


def _submitted(
    instance: dg.DagsterInstance,
    job_name: str,
    run_id: str,
    config: Mapping[str, Any],
    tags: Mapping[str, str],
) -> Finished:
    """Submit the run as `dagster job launch` does, to the instance's run coordinator (a
    deployment's queue: its pools and run limits hold for it as for the UI's runs), and wait.

    The run executes where the coordinator's launcher puts it, with that process's environment,
    so this process's `--sandbox` and `--warehouse` do not reach it."""
    workspace = Options.workspace or PROJECT_WORKSPACE
    execute_launch_command(
        instance=instance,
        workspace_opts=WorkspaceOpts(workspace=[str(workspace)]),
        config_json=json.dumps(config),
        tags=json.dumps(dict(tags)),
        run_id=run_id,
        job_name=job_name,
    )
    submitted = time.monotonic()
    while True:
        run = instance.get_run_by_id(run_id)
        if run is not None and run.is_finished:
            break
        if (
            run is not None
            and run.status == dg.DagsterRunStatus.QUEUED
            and time.monotonic() - submitted > QUEUE_PATIENCE
            and not _queue_served(instance)
        ):
            # Left queued, the run would start whenever a daemon next came up, long after
            # this command gave up on it.
            instance.report_run_canceled(run, "no dagster-daemon serves the queue")
            fail(
                f"run {run_id} waited {QUEUE_PATIENCE:.0f} s in DAGSTER_HOME's queue and no "
                "dagster-daemon serves it (none has heartbeated in the last "
                f"{HEARTBEAT_TOLERANCE + 30:.0f} s); the run is canceled: start `dagster-daemon "
                "run` on this instance and run the command again"
            )
        time.sleep(0.5)
    records = instance.get_records_for_run(run_id, of_type=SUMMARY_EVENTS, limit=None).records
    events = [r.event_log_entry.dagster_event for r in records]
    return Finished(
        run_id,
        run.status == dg.DagsterRunStatus.SUCCESS,
        [event for event in events if event is not None],
    )


def _queue_served(instance: dg.DagsterInstance) -> bool:
    """Whether a daemon dequeues this instance's runs: true too of an instance without a queue.

    `get_daemon_statuses` is Dagster's internal API (the UI's daemon health reads it); a
    daemon whose last iteration raised still dequeues, so its errors do not count here."""
    statuses = get_daemon_statuses(
        instance,
        [QUEUE_DAEMON],
        ignore_errors=True,
        heartbeat_tolerance_seconds=HEARTBEAT_TOLERANCE,
    )
    status = statuses[QUEUE_DAEMON]
    return status.healthy is not False


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process
        return True
    return True


def release_dead_runs(instance: dg.DagsterInstance) -> list[str]:
    """Fail this machine's CLI runs whose process is gone, and free their pool slots.

    A run killed outright (SIGKILL, out of memory, power loss) stays STARTED and keeps its
    `m3ter_api` slot, so every later run would wait for it forever. The daemon's run monitoring
    does this for the runs it launches; in-process CLI runs need it here.
    """
    released = []
    active = dg.RunsFilter(
        statuses=[dg.DagsterRunStatus.STARTED, dg.DagsterRunStatus.STARTING],
        tags={HOST_TAG: socket.gethostname()},
    )
    for run in instance.get_runs(filters=active):
        pid = int(run.tags.get(PID_TAG, "0"))
        if pid and pid != os.getpid() and not _alive(pid):
            instance.report_run_failed(run, f"the m3sync process {pid} running it is gone")
            instance.event_log_storage.free_concurrency_slots_for_run(run.run_id)
            released.append(run.run_id)
    return released


def run_config(dry_run: bool, config_file: Path | None) -> dict[str, Any]:
    """The operator's run configuration, with the load ops told to plan only on a dry run."""
    config: dict[str, Any] = {}
    if config_file is not None:
        try:
            config = yaml.safe_load(config_file.read_text()) or {}
        except (OSError, yaml.YAMLError) as exc:
            fail(f"cannot read the run configuration {config_file}: {one_line(str(exc))}")
        if not isinstance(config, dict):
            fail(f"the run configuration {config_file} is not a mapping")
    if dry_run:
        ops = config.setdefault("ops", {})
        for entity in AFTER:
            ops.setdefault(f"m3ter__{entity}", {}).setdefault("config", {})["dry_run"] = True
    return config


def chunks(first: str, last: str) -> list[list[str]]:
    """The daily partitions from `first` to `last`, in runs the backfill policy allows."""
    keys = daily_partitions().get_partition_keys()
    for day in (first, last):
        if day not in keys:
            fail(f"{day} is not a daily partition: choose a day from {keys[0]} to {keys[-1]}")
    if first > last:
        fail(f"--from {first} is after --to {last}")
    wanted = keys[keys.index(first) : keys.index(last) + 1]
    size = partitions_per_run()
    return [wanted[i : i + size] for i in range(0, len(wanted), size)]


def sync(first: str, last: str, config: Mapping[str, Any] | None = None) -> Ran:
    """The `sync` job over `first`..`last`, one run per chunk, then the summary; stops at the
    first failed run."""
    ran = Ran()
    parts = chunks(first, last)
    for number, keys in enumerate(parts, 1):
        span = keys[0] if len(keys) == 1 else f"{keys[0]}..{keys[-1]}"
        label = f"run {number}/{len(parts)} {span}" if len(parts) > 1 else span
        result = launch(
            SYNC,
            label,
            tags={RANGE_START: keys[0], RANGE_END: keys[-1]},
            run_config=config,
            partitions=len(keys),
        )
        ran.add(result)
        if not result.success:
            resume = f" Resume with --from {keys[0]}." if number > 1 else ""
            print_summary(ran)
            fail(f"run {result.run_id} ({span}) failed: {_failure(result)}{resume}")
    print_summary(ran)
    _where(ran)
    return ran


def _table(title: str, columns: Sequence[str]) -> Table:
    table = Table(title=title)
    for i, column in enumerate(columns):
        table.add_column(column, justify="left" if i == 0 else "right")
    return table


def print_summary(ran: Ran) -> None:
    """Rows per stage, rejects, actions in m3ter and API calls spent."""
    extracted = _table("Extract", ("raw table", "rows", "deleted", "method", "API calls"))
    staged = _table("Stage", ("staged table", "rows", "tombstones", "rejects", "reject share"))
    loaded = _table(
        "Load into m3ter", ("m3ter entity", "outcomes", "rejected", "API calls", "writes")
    )
    for name, meta in sorted(ran.assets.items()):
        table_name = name.replace("/", ".")
        if name.startswith("raw/"):
            extracted.add_row(
                table_name,
                f"{meta['dagster/row_count']:,}",
                f"{meta['deleted_rows']:,}",
                str(meta["method"]),
                f"{meta['api_calls']:,}",
            )
        elif name.startswith("staged/"):
            rows = meta["dagster/row_count"]
            share = meta["rejects"] / (rows + meta["rejects"]) if rows + meta["rejects"] else 0.0
            staged.add_row(
                table_name,
                f"{rows:,}",
                f"{meta['tombstones']:,}",
                f"{meta['rejects']:,}",
                f"{share:.2%}",
            )
        elif name.startswith("m3ter/"):
            outcomes = meta["outcomes"]
            loaded.add_row(
                name.removeprefix("m3ter/"),
                ", ".join(f"{k} {v:,}" for k, v in sorted(outcomes.items())) or "none",
                f"{meta['rejects']:,}",
                f"{meta['api_calls']:,}",
                f"{meta['write_calls']:,}",
            )
    for table in (extracted, staged, loaded):
        if table.row_count:
            console.print(table)
    _writeback_line(ran)
    billed = ran.last.get("m3ter/account_plans", {})
    if "coverage" in billed:
        print_coverage(billed["lines"], billed["billable_lines"], billed["coverage_findings"])


def _writeback_line(ran: Ran) -> None:
    """What the runs wrote back to Salesforce, and the statuses the records now carry."""
    written = ran.assets.get(WRITEBACK_ASSET)
    if written is None or "statuses" not in ran.last[WRITEBACK_ASSET]:
        return  # off, or every run ended before yesterday
    statuses = ran.last[WRITEBACK_ASSET].get("statuses") or {}
    console.print(
        f"Salesforce write-back: {written['written']:,} statuses written, "
        f"{written['failed']:,} failed (tried again next run), {written['api_calls']:,} API "
        f"calls. Records now: "
        + (", ".join(f"{k} {v:,}" for k, v in sorted(statuses.items())) or "none"),
        highlight=False,
    )


def _where(ran: Ran) -> None:
    home = os.environ["DAGSTER_HOME"]
    root = warehouse_root()
    console.print(f"Runs: {', '.join(ran.run_ids)} (recorded in {home}).")
    console.print(
        f"Warehouse: {root / 'warehouse.duckdb'} "
        f"(query it with `m3sync inspect` or `duckdb -readonly {root / 'warehouse.duckdb'}`)."
    )


def reconcile(apply: bool) -> None:
    """The `full_reconcile` job, and its drift by entity."""
    config = {"ops": {"reconcile_all": {"config": {"apply": apply}}}}
    result = launch(FULL_RECONCILE, "full reconcile", run_config=config)
    if not result.success:
        fail(f"run {result.run_id} failed: {_failure(result)}")
    ran = Ran()
    ran.add(result)
    output = ran.outputs["reconcile_all"]
    table = _table(
        "Full reconcile" + (" (applied)" if apply else " (nothing written)"),
        ("entity", "changed in m3ter", "deleted in m3ter", "pending"),
    )
    for entity, causes in output["by_entity"].items():
        table.add_row(
            entity,
            *(f"{causes.get(k, 0):,}" for k in ("changed_in_m3ter", "deleted_in_m3ter", "pending")),
        )
    console.print(table)
    console.print(Markdown(output["objects"]))
    _salesforce_side(output["salesforce"], apply)
    _where(ran)


def _salesforce_side(by_object: Mapping[str, Mapping[str, Any]], applied: bool) -> None:
    """Salesforce's live records against the warehouse, and what to run for what is missing."""
    table = _table(
        "Salesforce against the warehouse",
        ("object", "live", "not in the warehouse", "gone from Salesforce", "examples"),
    )
    days: list[str] = []
    for sobject, found in by_object.items():
        examples = ", ".join([*found["examples"]["missing"], *found["examples"]["gone"]][:3])
        table.add_row(
            sobject, f"{found['live']:,}", f"{found['missing']:,}", f"{found['gone']:,}", examples
        )
        days += found["missing_days"]
    console.print(table)
    if any(found["gone"] for found in by_object.values()):
        console.print(
            "Records gone from Salesforce: "
            + ("the refresh ended their m3ter objects." if applied else "--apply ends them.")
        )
    missed = sum(found["missed"] for found in by_object.values())
    if missed:
        console.print(
            f"Records the windows missed on days already extracted: {missed:,}; "
            + ("the refresh loaded them." if applied else "--apply loads them."),
            highlight=False,
        )
    if days:
        first, last = min(days), max(days)
        console.print(
            f"Other records the warehouse never held fall on {len(set(days))} days from {first} to "
            f"{last}: `m3sync backfill --from {first} --to {last}` extracts them (days before "
            "M3SYNC_START_DATE stay out).",
            highlight=False,
            soft_wrap=True,
        )


def refresh(dry_run: bool) -> None:
    """The `refresh` job, and what it found per object."""
    config = {"ops": {"refresh_all": {"config": {"dry_run": dry_run}}}}
    result = launch(REFRESH, "refresh", run_config=config)
    if not result.success:
        fail(f"run {result.run_id} failed: {_failure(result)}")
    ran = Ran()
    ran.add(result)
    output = ran.outputs["refresh_all"]
    table = _table(
        "Refresh" + (" (nothing written)" if dry_run else ""),
        (
            "object",
            "live",
            "changed",
            "gone",
            "missed",
            "never extracted",
            "API calls",
            "bulk jobs",
        ),
    )
    for sobject, found in output["by_object"].items():
        table.add_row(
            sobject,
            *(
                f"{found[k]:,}"
                for k in ("live", "changed", "gone", "missed", "unknown", "api_calls", "bulk_jobs")
            ),
        )
    console.print(table)
    console.print(
        f"m3ter writes: {output['m3ter_writes']:,}; outcomes: "
        + ", ".join(
            f"{entity} {', '.join(f'{k} {v}' for k, v in outcomes.items())}"
            for entity, outcomes in output["outcomes"].items()
            if outcomes
        ),
        highlight=False,
        soft_wrap=True,
    )
    _where(ran)


def sync_all() -> Ran:
    """Every daily partition, from the first to yesterday."""
    keys = daily_partitions().get_partition_keys()
    return sync(keys[0], keys[-1])
