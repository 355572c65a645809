"""The reliability suite: a fast subset in the default run, the whole matrix on demand.

Tests marked `full` run only with `M3SYNC_RELIABILITY=full` (the README's reliability command,
`tests/conftest.py` leaves them out otherwise); the rest run in the default test run. Either
way the suite ends with its summary.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

import pytest

from tests.reliability.ledger import LEDGER, SUMMARY_FILE
from tests.reliability.world import State, World, clean_state


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if not LEDGER.tried():
        return
    terminalreporter.section("reliability summary")
    for line in LEDGER.lines():
        terminalreporter.write_line(line)
    LEDGER.write()
    terminalreporter.write_line(f"written to {SUMMARY_FILE}")


@pytest.fixture(scope="session")
def reference(tmp_path_factory: pytest.TempPathFactory) -> Iterator[State]:
    yield clean_state(tmp_path_factory.mktemp("reference"))


@pytest.fixture
def world(tmp_path) -> World:
    return World(tmp_path)


def assert_converged(world: World, reference: State, case: str, kind: str | None) -> None:
    """m3ter equals the clean run's state, nothing lost or doubled; counted in the ledger as a
    survived `kind` ("faults", "crashes"), with what was lost and doubled."""
    state = world.m3ter()
    lost, extra = state.lost_from(reference), state.extra_over(reference)
    if kind is not None:
        LEDGER.record(kind, case)
    LEDGER.record("lost", case, len(lost))
    LEDGER.record("duplicates", case, state.duplicates + len(extra))
    assert not lost, f"lost: {lost[:5]}"
    assert not extra and state.duplicates == 0, f"extra: {extra[:5]}"
    assert not state.changed_from(reference), state.changed_from(reference)[:5]


def assert_quiet_rerun(
    world: World, case: str, run_config: Mapping[str, Any] | None = None
) -> None:
    """Another backfill, with nothing changed anywhere, writes nothing to m3ter."""
    with world.sandbox() as sandbox:
        assert sandbox.m3ter is not None
        sandbox.m3ter.counters.reset()
        result = world.backfill(run_config)
        assert result.returncode == 0, result.stdout + result.stderr
        writes = sandbox.m3ter.counters.snapshot()["writes"]
    LEDGER.record("rerun_writes", case, writes)
    assert writes == 0
