"""Fixtures shared by every suite: real sandbox servers on real loopback sockets.

Tests marked `operator` (slow end-to-end runs of the `m3sync` commands) run only with
`M3SYNC_OPERATOR=1`, the README's operator suite command, so the default run stays short.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from typing import Any

import pytest

from pipeline.sandbox.faults import FaultConfig
from pipeline.sandbox.salesforce.app import SalesforceConfig
from pipeline.sandbox.server import RunningSandbox, running_sandbox

SANDBOX_ACCOUNTS = 150  # 3,000 OrderItems: more than one 2,000-record REST page

StartSandbox = Callable[..., AbstractContextManager[RunningSandbox]]
OPERATOR = os.environ.get("M3SYNC_OPERATOR", "") == "1"


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if OPERATOR:
        return
    deselected = [item for item in items if item.get_closest_marker("operator")]
    if deselected:
        config.hook.pytest_deselected(items=deselected)
        items[:] = [item for item in items if not item.get_closest_marker("operator")]


@pytest.fixture(scope="session")
def sandbox(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningSandbox]:
    """One org sandbox for the whole session, with the demo org and no faults."""
    state = tmp_path_factory.mktemp("sandbox")
    config = SalesforceConfig(state_dir=state / "salesforce", accounts=SANDBOX_ACCOUNTS, seed=7)
    with running_sandbox(state, salesforce=config) as running:
        yield running


@pytest.fixture
def start_sandbox(tmp_path: Path) -> StartSandbox:
    """Starts a dedicated small sandbox with its own settings (faults, quota, session lifetime)."""

    @contextmanager
    def start(
        faults: dict[str, float] | None = None,
        fault_seed: int = 0,
        slow_seconds: float = 0.2,
        accounts: int = 5,
        name: str = "own",
        **settings: Any,
    ) -> Iterator[RunningSandbox]:
        state = tmp_path / name
        config = SalesforceConfig(
            state_dir=state / "salesforce",
            accounts=accounts,
            seed=3,
            faults=FaultConfig(rates=faults or {}, seed=fault_seed, slow_seconds=slow_seconds),
            **settings,
        )
        with running_sandbox(state, salesforce=config) as running:
            yield running

    return start
