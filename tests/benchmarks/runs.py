"""What the run benchmarks share: a checkout of another revision to run beside this one, a
fresh demo sandbox per command, and where a command's time went, read from its Dagster runs."""

from __future__ import annotations

import argparse
import datetime as dt
import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import dagster as dg
import requests

from tests.processes import M3SYNC, sandbox_process

PROJECT = Path(__file__).resolve().parents[2]
LOADER_RATE = 45.0  # requests/s the commands are told to keep to; m3ter allows 50
STAGES = {"raw": "extract", "staged": "stage", "m3ter": "load", "salesforce": "write back"}


def org_parser(description: str, work: str) -> argparse.ArgumentParser:
    """The options every run benchmark takes: the demo org's size and history, a baseline
    revision, and where its state goes."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--accounts", type=int, default=200)
    parser.add_argument("--history-days", type=int, default=None)
    parser.add_argument("--quiet-days", type=int, default=0, help="days of catalogue alone")
    parser.add_argument("--baseline", help="a git revision to run beside this tree")
    parser.add_argument("--work", type=Path, default=Path(tempfile.gettempdir()) / work)
    return parser


def org_options(args: argparse.Namespace) -> list[str]:
    """`m3sync sandbox up`'s options for the org `org_parser`'s arguments describe."""
    org = ["--accounts", str(args.accounts)]
    if args.history_days:
        org += ["--history-days", str(args.history_days)]
    if args.quiet_days:
        org += ["--quiet-days", str(args.quiet_days)]
    return org


def checkout(revision: str | None, under: Path) -> str:
    """The `m3sync` executable of `revision` (a git worktree with its own locked environment),
    or of this tree when None."""
    if revision is None:
        return M3SYNC
    tree = under / f"checkout-{revision}"
    if not tree.exists():
        subprocess.run(
            [_tool("git"), "-C", str(PROJECT), "worktree", "add", "--detach", str(tree), revision],
            check=True,
            capture_output=True,
        )
    subprocess.run([_tool("uv"), "sync", "--frozen", "--quiet"], cwd=tree, check=True)
    return str(tree / ".venv" / "bin" / "m3sync")


def _tool(name: str) -> str:
    found = shutil.which(name)
    if found is None:
        raise RuntimeError(f"{name} is not on PATH")
    return found


@contextmanager
def demo_sandbox(state: Path, *org: str) -> Iterator[dict[str, Any]]:
    """A fresh demo org and m3ter (a write-back moves stamps, so no two commands share one), with
    m3ter at its real limit of 50 requests/s."""
    shutil.rmtree(state, ignore_errors=True)
    with sandbox_process(state, *org, "--m3ter-rate-limit", "50") as (_process, info):
        info["file"] = str(state / "sandbox.json")
        yield info


def m3ter_writes(info: Mapping[str, Any]) -> int:
    """Writes m3ter's sandbox has answered since it started (its admin counters)."""
    m3ter = info["m3ter"]
    session = requests.Session()
    session.trust_env = False
    session.verify = m3ter["ca_file"]
    answer = session.get(
        f"{m3ter['url']}/admin/counters",
        auth=(m3ter["access_key_id"], m3ter["api_secret"]),
        timeout=30,
    )
    answer.raise_for_status()
    return int(answer.json()["writes"])


@dataclass
class Step:
    key: str
    seconds: float
    m3ter_calls: int

    @property
    def stage(self) -> str:
        return STAGES.get(self.key.split("__")[0], self.key)


@dataclass
class Timed:
    """One command: its wall time, its runs' steps, and the runs' own start and end."""

    wall: float
    steps: list[Step] = field(default_factory=list)
    runs: int = 0
    events: int = 0
    in_runs: float = 0.0  # from each run's start to its end, summed

    def stage_seconds(self) -> dict[str, tuple[float, int]]:
        """Per stage: seconds in its steps and the m3ter calls they made."""
        found: dict[str, tuple[float, int]] = {}
        for step in self.steps:
            seconds, calls = found.get(step.stage, (0.0, 0))
            found[step.stage] = (seconds + step.seconds, calls + step.m3ter_calls)
        return found


def run_command(
    executable: str,
    arguments: Sequence[str],
    home: Path,
    environment: Mapping[str, str],
    *,
    fresh: bool = True,
) -> Timed:
    """Run `m3sync ARGUMENTS` at the loader's rate, in DAGSTER_HOME `home` (made afresh unless
    `fresh` is off: the runs before stay, as on an operator's instance); fail loudly."""
    if fresh:
        shutil.rmtree(home, ignore_errors=True)
    earlier = _run_ids(home)
    env = {
        **os.environ,
        "DAGSTER_HOME": str(home),
        "M3SYNC_M3TER_RATE_LIMIT": str(LOADER_RATE),
        "M3SYNC_M3TER_CONCURRENCY": "8",
        **environment,
    }
    for name in ("M3SYNC_START_DATE", "M3SYNC_MAPPINGS_DIR", "M3SYNC_MAPPINGS_SOURCE"):
        env.pop(name, None)
    started = time.perf_counter()
    result = subprocess.run(
        [executable, *arguments], capture_output=True, text=True, env=env, check=False
    )
    wall = time.perf_counter() - started
    if result.returncode:
        raise RuntimeError(f"m3sync {' '.join(arguments)} failed:\n{result.stdout}{result.stderr}")
    return read_runs(home, wall, earlier)


def _run_ids(home: Path) -> set[str]:
    if not (home / "dagster.yaml").exists():
        return set()
    with dg.DagsterInstance.from_config(str(home)) as instance:
        return {run.run_id for run in instance.get_runs()}


def read_runs(home: Path, wall: float, earlier: set[str]) -> Timed:
    """Where the runs of DAGSTER_HOME `home` not in `earlier` spent a command's `wall` time."""
    timed = Timed(wall)
    with dg.DagsterInstance.from_config(str(home)) as instance:
        for run in instance.get_runs():
            if run.run_id in earlier:
                continue
            timed.runs += 1
            stats = instance.get_run_stats(run.run_id)
            if stats.start_time and stats.end_time:
                timed.in_runs += stats.end_time - stats.start_time
            records = instance.get_records_for_run(run.run_id, limit=1_000_000).records
            timed.events += len(records)
            calls: dict[str, int] = {}
            for record in records:
                event = record.event_log_entry.dagster_event
                if event is None or event.event_type != dg.DagsterEventType.ASSET_MATERIALIZATION:
                    continue
                step = str(event.step_key)
                metadata = event.step_materialization_data.materialization.metadata
                if step.startswith("m3ter__") and step not in calls and "api_calls" in metadata:
                    calls[step] = int(metadata["api_calls"].value)  # type: ignore[arg-type]
            for stat in instance.get_run_step_stats(run.run_id):
                if stat.start_time and stat.end_time:
                    seconds = stat.end_time - stat.start_time
                    timed.steps.append(Step(stat.step_key, seconds, calls.get(stat.step_key, 0)))
    return timed


def print_breakdown(name: str, timed: Timed) -> None:
    """Where the command's time went: per stage, outside m3ter calls, and outside the steps."""
    print(f"  {name}: wall {timed.wall:.1f} s, {timed.runs} run(s), {timed.events:,} events")
    print(f"    {'stage':<11}{'steps s':>9}{'m3ter calls':>13}{'at 45/s s':>11}{'outside s':>11}")
    in_steps = 0.0
    for stage, (seconds, calls) in timed.stage_seconds().items():
        floor = calls / LOADER_RATE
        in_steps += seconds
        print(f"    {stage:<11}{seconds:>9.1f}{calls:>13,}{floor:>11.1f}{seconds - floor:>11.1f}")
    print(
        f"    runs' own bookkeeping (in runs, outside steps): {timed.in_runs - in_steps:.1f} s; "
        f"process start, code location and summary (outside runs): "
        f"{timed.wall - timed.in_runs:.1f} s"
    )


def print_comparison(walls: Mapping[str, float], baseline: str | None) -> None:
    if baseline is not None:
        ours, theirs = walls["this tree"], walls[baseline]
        print(f"this tree vs {baseline}: {ours:.1f} s vs {theirs:.1f} s ({theirs / ours:.2f}x)")


def yesterday() -> str:
    return (dt.datetime.now(dt.UTC).date() - dt.timedelta(days=1)).isoformat()
