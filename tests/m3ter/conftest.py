"""m3ter client fixtures: the production client against sandboxes on real loopback sockets.

One sandbox (limit off, no faults) serves the whole session and is reset before each test; tests
that need their own settings (limit on, faults, short tokens) start a dedicated one.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from typing import Any

import pytest
import requests

from pipeline.m3ter.client import M3terClient
from pipeline.m3ter.settings import M3terSettings, sandbox_settings
from pipeline.retry import RetryPolicy
from pipeline.sandbox.faults import FaultConfig
from pipeline.sandbox.m3ter import M3terConfig
from pipeline.sandbox.server import RunningSandbox, running_sandbox

# Retries without the production pauses, so fault tests stay quick.
FAST_RETRY = RetryPolicy(attempts=6, base_delay=0.01, max_delay=2.0)


def m3ter_info(running: RunningSandbox) -> dict[str, str]:
    return dict(running.info()["m3ter"])


def settings_for(running: RunningSandbox, **overrides: Any) -> M3terSettings:
    """The sandbox's settings, unpaced unless a test sets `rate_limit`."""
    return dataclasses.replace(
        sandbox_settings(m3ter_info(running)), **{"rate_limit": 0, **overrides}
    )


def admin(running: RunningSandbox, method: str, path: str) -> Any:
    return admin_call(m3ter_info(running), method, path)


def admin_call(info: dict[str, str], method: str, path: str) -> Any:
    """An admin endpoint's JSON answer (HTTP Basic with the service user's credentials)."""
    with requests.Session() as session:
        session.trust_env = False
        answer = session.request(
            method,
            f"{info['url']}/admin/{path}",
            auth=(info["access_key_id"], info["api_secret"]),
            verify=info["ca_file"],
            timeout=10,
        )
    answer.raise_for_status()
    return answer.json()


def statuses(running: RunningSandbox) -> dict[int, int]:
    """How many org and token calls the sandbox answered with each status (0: dropped)."""
    counts: dict[int, int] = {}
    for row in admin(running, "GET", "counters")["counters"]:
        counts[row["status"]] = counts.get(row["status"], 0) + row["count"]
    return counts


MakeClient = Callable[..., M3terClient]
StartSandbox = Callable[..., AbstractContextManager[RunningSandbox]]


@pytest.fixture(scope="session")
def shared_sandbox(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningSandbox]:
    state = tmp_path_factory.mktemp("m3ter-client")
    config = M3terConfig(state_dir=state / "m3ter", rate_limit_per_second=None)
    with running_sandbox(state, m3ter=config) as running:
        yield running


@pytest.fixture
def sandbox(shared_sandbox: RunningSandbox) -> RunningSandbox:
    """The shared sandbox, back in its seeded state with zeroed counters."""
    admin(shared_sandbox, "POST", "reset")
    admin(shared_sandbox, "POST", "counters/reset")
    return shared_sandbox


@pytest.fixture
def start_sandbox(tmp_path: Path) -> StartSandbox:
    """Starts a dedicated sandbox: `faults` rates with a fixed seed, limit and token lifetime."""

    @contextmanager
    def start(
        faults: dict[str, float] | None = None,
        fault_seed: int = 0,
        rate_limit_per_second: float | None = None,
        token_ttl_seconds: float = 3600,
        **settings: Any,
    ) -> Iterator[RunningSandbox]:
        config = M3terConfig(
            state_dir=tmp_path / "m3ter",
            token_ttl_seconds=token_ttl_seconds,
            rate_limit_per_second=rate_limit_per_second,
            faults=FaultConfig(rates=faults or {}, seed=fault_seed, slow_seconds=0.1),
            **settings,
        )
        with running_sandbox(tmp_path, m3ter=config) as running:
            yield running

    return start


@pytest.fixture
def make_client() -> Iterator[MakeClient]:
    """Builds clients for a sandbox (fast retries by default) and closes them after the test."""
    made: list[M3terClient] = []

    def make(
        running: RunningSandbox, retry: RetryPolicy = FAST_RETRY, **overrides: Any
    ) -> M3terClient:
        client = M3terClient(settings_for(running, **overrides), retry)
        made.append(client)
        return client

    yield make
    for client in made:
        client.close()


@pytest.fixture
def client(sandbox: RunningSandbox, make_client: MakeClient) -> M3terClient:
    return make_client(sandbox)
