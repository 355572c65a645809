"""Dagster's production deployment as processes: an instance on PostgreSQL (the project's
`deploy/dagster.yaml`), `dagster code-server start` serving the code location, `dagster-daemon
run` launching queued runs through it, and `dagster-webserver` answering GraphQL as the UI's
backend, beside the sandbox on real sockets."""

from __future__ import annotations

import datetime as dt
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import requests

from pipeline.sandbox.environment import sandbox_environment
from tests.deploy.postgres import Postgres, free_port
from tests.reliability.world import World

PROJECT = Path(__file__).resolve().parents[2]
DEPLOY = PROJECT / "deploy"
BIN = Path(sys.executable).parent
TERMINAL = {"SUCCESS", "FAILURE", "CANCELED"}
BACKFILL_DONE = {"COMPLETED", "COMPLETED_SUCCESS", "COMPLETED_FAILED", "FAILED", "CANCELED"}


@dataclass
class Service:
    name: str
    command: list[str]
    log: Path
    env: Mapping[str, str]
    process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        with self.log.open("ab") as out:
            self.process = subprocess.Popen(
                self.command, stdout=out, stderr=subprocess.STDOUT, env=dict(self.env), cwd=PROJECT
            )

    def stop(self, sig: int = signal.SIGTERM) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.send_signal(sig)
        try:
            self.process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None


@dataclass
class Deployment:
    """The services of one deployment over a sandbox (`info`, its description), on top of
    `base` (the environment the operator gives every process), and what a test asks them."""

    base: Mapping[str, str]
    info: Mapping[str, Any]
    postgres: Postgres
    root: Path
    partitions_per_run: int | None  # None: the code location's default
    services: dict[str, Service] = field(default_factory=dict)

    @property
    def home(self) -> Path:
        return self.root / "dagster"

    @property
    def graphql(self) -> str:
        return f"http://127.0.0.1:{self.web_port}/graphql"

    def env(self) -> dict[str, str]:
        """What every process of the deployment has: the instance's and the code location's."""
        env = {
            **self.base,
            **sandbox_environment(self.info),
            **self.postgres.env,
            "DAGSTER_HOME": str(self.home),
            "M3SYNC_START_DATE": self.info["salesforce"]["history_from"],
            "M3SYNC_CODE_SERVER_HOST": "127.0.0.1",
            "M3SYNC_CODE_SERVER_PORT": str(self.code_port),
            "M3SYNC_WORKSPACE": str(DEPLOY / "workspace.yaml"),
            "DAGSTER_EMIT_PARTITION_SUBSET_IN_PLANNED_EVENTS": "true",
            "DAGSTER_EVENT_BATCH_SIZE": "1000",
        }
        if self.partitions_per_run is not None:
            env["M3SYNC_BACKFILL_PARTITIONS_PER_RUN"] = str(self.partitions_per_run)
        return env

    def start(self) -> None:
        self.home.mkdir(parents=True, exist_ok=True)
        shutil.copy(DEPLOY / "dagster.yaml", self.home / "dagster.yaml")
        self.code_port, self.web_port = free_port(), free_port()
        env = self.env()
        workspace = ["-w", str(DEPLOY / "workspace.yaml")]
        commands = {
            "code-server": [
                str(BIN / "dagster"), "code-server", "start", "-m", "assets.definitions",
                "--location-name", "m3sync", "-h", "127.0.0.1", "-p", str(self.code_port),
            ],
            "daemon": [str(BIN / "dagster-daemon"), "run", *workspace],
            "webserver": [
                str(BIN / "dagster-webserver"), *workspace, "-h", "127.0.0.1",
                "-p", str(self.web_port),
            ],
        }  # fmt: skip
        for name, command in commands.items():
            self.services[name] = Service(name, command, self.root / f"{name}.log", env)
        setup = self.m3sync("setup", "dagster")
        assert setup.returncode == 0, setup.stdout + setup.stderr
        self.services["code-server"].start()
        self._wait_for_code_server()
        self.services["daemon"].start()
        self.services["webserver"].start()
        self._wait_for_webserver()

    def stop(self) -> None:
        for name in ("webserver", "daemon", "code-server"):
            if name in self.services:
                self.services[name].stop()

    def restart(self, name: str, sig: int = signal.SIGTERM) -> None:
        self.services[name].stop(sig)
        self.services[name].start()

    def logs(self) -> str:
        """The services' last words and each failed run's reasons, for an assertion message."""
        services = [
            f"--- {s.name}\n{s.log.read_text(errors='replace')[-3000:]}"
            for s in self.services.values()
            if s.log.exists()
        ]
        return "\n".join([*services, *self.failures()])

    def failures(self) -> list[str]:
        """Why each failed run failed: its failure events' messages and errors."""
        failed = []
        for run in self.runs():
            if run["status"] != "FAILURE":
                continue
            found = self.query(
                "query($id: ID!) { logsForRun(runId: $id) { ... on EventConnection { events {"
                " __typename ... on MessageEvent { message stepKey }"
                " ... on ExecutionStepFailureEvent { error { message } }"
                " ... on RunFailureEvent { error { message } } } } } }",
                {"id": run["runId"]},
            )
            events = found["logsForRun"]["events"]
            reasons = [
                " ".join(
                    (
                        e.get("stepKey") or "",
                        e["message"],
                        (e.get("error") or {}).get("message", ""),
                    )
                )
                for e in events
                if e["__typename"] in {"ExecutionStepFailureEvent", "RunFailureEvent"}
                or "fail" in (e.get("message") or "").lower()
            ]
            failed.append(f"--- run {run['runId']} failed:\n" + "\n".join(reasons[-6:]))
        return failed

    def _wait_for_code_server(self, timeout: float = 180) -> None:
        deadline = time.monotonic() + timeout
        check = [str(BIN / "dagster"), "api", "grpc-health-check", "-p", str(self.code_port)]
        while time.monotonic() < deadline:
            if not self.services["code-server"].alive():
                raise RuntimeError(f"the code server exited:\n{self.logs()}")
            if subprocess.run(check, capture_output=True, check=False).returncode == 0:
                return
            time.sleep(1)
        raise TimeoutError(f"the code server did not serve:\n{self.logs()}")

    def _wait_for_webserver(self, timeout: float = 180) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not self.services["webserver"].alive():
                raise RuntimeError(f"the webserver exited:\n{self.logs()}")
            try:
                if self.query("{ version }").get("version"):
                    return
            except requests.RequestException:
                pass
            time.sleep(1)
        raise TimeoutError(f"the webserver did not answer:\n{self.logs()}")

    def query(self, text: str, variables: Mapping[str, Any] | None = None) -> dict[str, Any]:
        """One GraphQL request to the webserver, as the UI sends it."""
        answer = requests.post(
            self.graphql, json={"query": text, "variables": dict(variables or {})}, timeout=60
        )
        answer.raise_for_status()
        body = answer.json()
        if body.get("errors"):
            raise AssertionError(body["errors"])
        return body["data"]

    # --- what the UI does and shows ---

    def partitioned_assets(self) -> list[list[str]]:
        nodes = self.query("{ assetNodes { assetKey { path } isPartitioned } }")["assetNodes"]
        return [n["assetKey"]["path"] for n in nodes if n["isPartitioned"]]

    def all_assets(self) -> list[list[str]]:
        nodes = self.query("{ assetNodes { assetKey { path } } }")["assetNodes"]
        return [n["assetKey"]["path"] for n in nodes]

    def launch_backfill(self, partitions: Sequence[str]) -> str:
        """Every asset over `partitions`, as the asset graph's "Materialize all → Launch
        backfill" does."""
        mutation = """
        mutation Launch($params: LaunchBackfillParams!) {
          launchPartitionBackfill(backfillParams: $params) {
            __typename
            ... on LaunchBackfillSuccess { backfillId }
            ... on PythonError { message stack }
            ... on PartitionSetNotFoundError { message }
            ... on InvalidStepError { invalidStepKey }
            ... on InvalidOutputError { invalidOutputName }
            ... on UnauthorizedError { message }
          }
        }"""
        params = {
            "partitionNames": list(partitions),
            "assetSelection": [{"path": path} for path in self.all_assets()],
            "fromFailure": False,
        }
        launched = self.query(mutation, {"params": params})["launchPartitionBackfill"]
        assert launched["__typename"] == "LaunchBackfillSuccess", launched
        return str(launched["backfillId"])

    def backfill_status(self, backfill_id: str) -> str:
        found = self.query(
            "query($id: String!) { partitionBackfillOrError(backfillId: $id) {"
            " ... on PartitionBackfill { status } } }",
            {"id": backfill_id},
        )
        return str(found["partitionBackfillOrError"]["status"])

    def wait_for_backfill(self, backfill_id: str, timeout: float = 900) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            status = self.backfill_status(backfill_id)
            if status in BACKFILL_DONE and not self.active_runs():
                return status
            time.sleep(2)
        raise TimeoutError(f"backfill {backfill_id} still running:\n{self.logs()}")

    def runs(self) -> list[dict[str, Any]]:
        found = self.query(
            "{ runsOrError { ... on Runs { results { runId status tags { key value }"
            " stepStats { stepKey status startTime endTime } } } } }"
        )
        return list(found["runsOrError"]["results"])

    def active_runs(self) -> list[dict[str, Any]]:
        return [r for r in self.runs() if r["status"] not in TERMINAL]

    def wait_for_runs(self, timeout: float = 900) -> list[dict[str, Any]]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            runs = self.runs()
            if runs and all(r["status"] in TERMINAL for r in runs):
                return runs
            time.sleep(2)
        raise TimeoutError(f"runs still going:\n{self.logs()}")

    def partition_stats(self) -> dict[str, dict[str, int]]:
        found = self.query(
            "{ assetNodes { assetKey { path } isPartitioned"
            " partitionStats { numMaterialized numPartitions numFailed } } }"
        )
        return {
            "/".join(n["assetKey"]["path"]): n["partitionStats"]
            for n in found["assetNodes"]
            if n["isPartitioned"]
        }

    def m3sync(self, *args: str, timeout: float = 900) -> subprocess.CompletedProcess[str]:
        """An operator's `m3sync` on this deployment's instance."""
        return subprocess.run(
            [str(BIN / "m3sync"), *args],
            capture_output=True,
            text=True,
            env=self.env(),
            timeout=timeout,
            check=False,
            cwd=self.root,
        )


def history(world: World) -> list[str]:
    """Every daily partition of the org, from its first day to yesterday."""
    first = dt.date.fromisoformat(world.info["salesforce"]["history_from"])
    last = dt.datetime.now(dt.UTC).date() - dt.timedelta(days=1)
    return [(first + dt.timedelta(days=n)).isoformat() for n in range((last - first).days + 1)]


@contextmanager
def deployment(
    world: World, postgres: Postgres, root: Path, partitions_per_run: int | None = 2
) -> Iterator[Deployment]:
    """A deployment over `world`'s sandbox on a fresh database; its services stopped on exit."""
    with deployment_over(world.env(), world.info, postgres, root, partitions_per_run) as deployed:
        yield deployed


@contextmanager
def deployment_over(
    base: Mapping[str, str],
    info: Mapping[str, Any],
    postgres: Postgres,
    root: Path,
    partitions_per_run: int | None = None,
) -> Iterator[Deployment]:
    """A deployment over the sandbox `info` describes, on a fresh database; its services
    stopped on exit."""
    postgres.fresh_database()
    with ExitStack() as stack:
        deployed = Deployment(base, info, postgres, root, partitions_per_run)
        stack.callback(deployed.stop)
        deployed.start()
        yield deployed


def load_steps(runs: Sequence[Mapping[str, Any]]) -> list[tuple[float, float, str]]:
    """Every load step's (start, end, run) over `runs`: the steps that write to m3ter."""
    steps = []
    for run in runs:
        for step in run["stepStats"]:
            if step["stepKey"].startswith("m3ter__") and step["startTime"]:
                steps.append((step["startTime"], step["endTime"] or time.time(), run["runId"]))
    return sorted(steps)
