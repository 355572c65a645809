"""A small demo org and an m3ter organization on real sockets, and the operator's `m3sync` beside
them in processes of its own, so that a test can inject faults, kill the pipeline at any moment
and compare what m3ter holds afterwards with what a clean run leaves there."""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
from collections import Counter
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb

from pipeline.m3ter.client import M3terClient
from pipeline.m3ter.settings import sandbox_settings
from pipeline.sandbox.faults import FaultConfig
from pipeline.sandbox.m3ter import M3terConfig
from pipeline.sandbox.salesforce.app import SalesforceConfig
from pipeline.sandbox.server import RunningSandbox, running_sandbox
from tests.processes import M3SYNC

# 12 accounts over 6 days: every source kind, a deleted record and an m3ter refusal, in seconds.
ACCOUNTS, SEED, HISTORY_DAYS = 12, 4, 6
# The m3ter collections m3sync writes, and those it refers to (seeded by the sandbox).
WRITTEN = (
    "compoundaggregations",
    "accounts",
    "contracts",
    "plans",
    "pricings",
    "accountplans",
    "commitments",
)
REFERRED = ("products", "meters", "aggregations", "plantemplates")
SERVER_FIELDS = {"id", "version", "dtCreated", "dtLastModified", "createdBy", "lastModifiedBy"}


@dataclass(frozen=True)
class State:
    """m3ter's objects written by m3sync, keyed by code (commitments by their external id),
    with server-made fields dropped and references to other objects given as their codes."""

    objects: dict[tuple[str, str], dict[str, Any]]
    duplicates: int

    def lost_from(self, reference: State) -> list[tuple[str, str]]:
        return sorted(set(reference.objects) - set(self.objects))

    def extra_over(self, reference: State) -> list[tuple[str, str]]:
        return sorted(set(self.objects) - set(reference.objects))

    def changed_from(self, reference: State) -> list[tuple[str, str]]:
        both = set(reference.objects) & set(self.objects)
        return sorted(k for k in both if reference.objects[k] != self.objects[k])


def _without_server_fields(value: Any, codes: Mapping[str, str]) -> Any:
    if isinstance(value, dict):
        return {
            k: _without_server_fields(v, codes)
            for k, v in sorted(value.items())
            if k not in SERVER_FIELDS
        }
    if isinstance(value, list):
        return [_without_server_fields(v, codes) for v in value]
    if isinstance(value, str) and value in codes:
        return f"<{codes[value]}>"
    return value


def m3ter_state(info: Mapping[str, Any]) -> State:
    client = M3terClient(sandbox_settings(info["m3ter"]))
    listed = {c: list(client.list(c)) for c in (*REFERRED, *WRITTEN)}
    mappings = list(client.list("externalmappings"))
    codes = {o["id"]: o.get("code") or o["id"] for objs in listed.values() for o in objs}
    external = {m["m3terId"]: m["externalId"] for m in mappings}
    codes.update(external)
    objects: dict[tuple[str, str], dict[str, Any]] = {}
    seen: Counter[tuple[str, str]] = Counter()
    for collection in WRITTEN:
        for obj in listed[collection]:
            key = obj.get("code") or external.get(obj["id"]) or f"(unkeyed {obj['id']})"
            seen[(collection, key)] += 1
            objects[(collection, key)] = _without_server_fields(obj, codes)
    per_external = Counter((m["m3terEntity"], m["externalId"]) for m in mappings)
    duplicates = sum(n - 1 for n in seen.values()) + sum(n - 1 for n in per_external.values())
    duplicates += sum(1 for _, key in objects if key.startswith("(unkeyed"))
    return State(objects, duplicates)


class World:
    """One org and one m3ter organization under `root`, kept across sandbox restarts."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.info_file = root / "sandbox" / "sandbox.json"
        self.config_file = root / "run.yaml"
        self.info: dict[str, Any] = {}

    @contextmanager
    def sandbox(
        self,
        faults: str = "",
        m3ter_faults: str = "",
        *,
        fault_seed: int = 0,
        slow_seconds: float = 0.5,
        daily_api_requests: int = 100_000,
        m3ter_rate_limit: float | None = None,
    ) -> Iterator[RunningSandbox]:
        state = self.root / "sandbox"
        salesforce = SalesforceConfig(
            state_dir=state / "salesforce",
            accounts=ACCOUNTS,
            seed=SEED,
            history_days=HISTORY_DAYS,
            daily_api_requests=daily_api_requests,
            faults=FaultConfig.parse(faults, seed=fault_seed, slow_seconds=slow_seconds),
        )
        m3ter = M3terConfig(
            state_dir=state / "m3ter",
            rate_limit_per_second=m3ter_rate_limit,
            faults=FaultConfig.parse(m3ter_faults, seed=fault_seed, slow_seconds=slow_seconds),
        )
        with running_sandbox(state, salesforce=salesforce, m3ter=m3ter) as running:
            self.info = running.info()
            yield running

    def env(self) -> dict[str, str]:
        return {
            **os.environ,
            "DAGSTER_HOME": str(self.root / "dagster"),
            "M3SYNC_WAREHOUSE": str(self.root / "warehouse"),
            # Quick: this m3ter has no per-second limit unless a case sets one (the 429 case).
            "M3SYNC_M3TER_RATE_LIMIT": "200",
            "M3SYNC_M3TER_CONCURRENCY": "8",
            "COLUMNS": "200",
        }

    def backfill_command(self, run_config: Mapping[str, Any] | None = None) -> list[str]:
        """The whole org's history, as an operator backfills it."""
        last = dt.datetime.now(dt.UTC).date() - dt.timedelta(days=1)
        command = [M3SYNC, "backfill", "--from", self.info["salesforce"]["history_from"]]
        command += ["--to", last.isoformat(), "--sandbox", str(self.info_file)]
        if run_config:
            self.config_file.write_text(json.dumps(run_config))
            command += ["--config", str(self.config_file)]
        return command

    def backfill(
        self, run_config: Mapping[str, Any] | None = None, timeout: float = 600
    ) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            self.backfill_command(run_config),
            capture_output=True,
            text=True,
            env=self.env(),
            timeout=timeout,
            check=False,
        )

    def start_backfill(self, log: Path) -> subprocess.Popen[bytes]:
        with log.open("wb") as out:
            return subprocess.Popen(
                self.backfill_command(), stdout=out, stderr=subprocess.STDOUT, env=self.env()
            )

    def m3ter(self) -> State:
        return m3ter_state(self.info)

    def half_written(self) -> list[str]:
        """Warehouse files a reader could see that are not whole: every partition file a view
        reads (`data/<schema>/<table>/*.parquet`) must read to its end, and the catalog open."""
        broken = []
        data = self.root / "warehouse" / "data"
        con = duckdb.connect()
        for path in sorted(data.glob("*/*/*.parquet")) if data.exists() else []:
            try:
                con.execute("SELECT count(*) FROM read_parquet(?)", [str(path)]).fetchall()
            except duckdb.Error as exc:
                broken.append(f"{path.relative_to(data)}: {exc}")
        catalog = self.root / "warehouse" / "warehouse.duckdb"
        if catalog.exists():
            try:
                duckdb.connect(str(catalog), read_only=True).close()
            except duckdb.Error as exc:
                broken.append(f"warehouse.duckdb: {exc}")
        return broken

    def leftovers(self) -> list[str]:
        """Temporary files and folders of writers that are gone (views never read them; the
        next write to their table sweeps them)."""
        warehouse = self.root / "warehouse"
        return sorted(
            str(path.relative_to(warehouse))
            for path in warehouse.rglob("*.tmp-*")
            if not path.name.endswith(".lock")
            and not any(".tmp-" in parent.name for parent in path.relative_to(warehouse).parents)
        )


def one_line_failure(result: subprocess.CompletedProcess[str]) -> str:
    """The reason a failed command gave: its last line; no traceback may come with it."""
    output = result.stdout + result.stderr
    assert "Traceback" not in output and "Stack Trace" not in output, output[-3000:]
    lines = [line for line in result.stdout.splitlines() if line.strip()]
    return lines[-1] if lines else ""


def clean_state(root: Path) -> State:
    """What m3ter holds after one clean backfill of the org on an instance of its own: the state
    every faulty, killed or deployed run must converge to."""
    world = World(root)
    with world.sandbox():
        result = world.backfill()
        assert result.returncode == 0, result.stdout + result.stderr
        state = world.m3ter()
    assert state.duplicates == 0 and state.objects
    return state
