"""Fixtures shared by every suite: real sandbox servers on real loopback sockets."""

from __future__ import annotations

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
