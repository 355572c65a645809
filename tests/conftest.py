"""Fixtures shared by every suite: real sandbox servers on real loopback sockets.

Tests marked `operator` (slow end-to-end runs of the `m3sync` commands) run only with
`M3SYNC_OPERATOR=1`, the README's operator suite command, tests marked `full` (the whole
fault matrix) only with `M3SYNC_RELIABILITY=full`, the reliability command, and tests marked
`deploy` (Dagster's deployment on PostgreSQL) only with `M3SYNC_DEPLOY=1`, the deploy command,
so the default run stays short.
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
FULL = os.environ.get("M3SYNC_RELIABILITY", "").lower() == "full"
DEPLOY = os.environ.get("M3SYNC_DEPLOY", "") == "1"


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Leave out the named suites' tests unless their command asks for them."""
    skipped = {"operator": not OPERATOR, "full": not FULL, "deploy": not DEPLOY}
    names = [name for name, skip in skipped.items() if skip]
    deselected = [i for i in items if any(i.get_closest_marker(n) for n in names)]
    if deselected:
        config.hook.pytest_deselected(items=deselected)
        items[:] = [item for item in items if item not in deselected]


@pytest.fixture(scope="session")
def sandbox(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningSandbox]:
    """One org sandbox for the whole session, with the demo org and no faults."""
    state = tmp_path_factory.mktemp("sandbox")
    # The recycle bin is kept whole: these tests count the generated org's records, deleted
    # ones included (`tests/sandbox/salesforce/test_recycle_bin.py` purges).
    config = SalesforceConfig(
        state_dir=state / "salesforce", accounts=SANDBOX_ACCOUNTS, seed=7, recycle_bin_days=None
    )
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
        settings.setdefault("recycle_bin_days", None)  # the generated org whole, as above
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
