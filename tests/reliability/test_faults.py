"""Each fault kind on each API, alone and mixed at 10%: the backfill either finishes with m3ter
equal to the clean run's state, or fails with a one-line reason and the next run finishes it;
then a third run, with nothing changed, writes nothing.

Faults come from the sandboxes' own injection (real sockets: a 5xx answer, a connection closed
without an answer, a slow answer, an expired session or token, a failed bulk job, a spent daily
API quota, m3ter's 429 over its per-second limit, and m3ter applying a write whose answer is then
lost, on each collection m3sync writes), drawn from a seeded sequence.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pytest

from pipeline.sandbox.server import RunningSandbox
from tests.reliability.conftest import assert_converged, assert_quiet_rerun
from tests.reliability.ledger import LEDGER
from tests.reliability.world import WRITTEN, World, one_line_failure

RATE = 0.1
SALESFORCE_KINDS = ("http500", "http502", "http503", "http504", "drop", "slow", "expire")
M3TER_KINDS = ("http500", "http502", "http503", "http504", "drop", "slow", "expire", "lost_answer")
# Every collection m3sync writes to, ExternalMappings included.
LOST_ANSWERS = (*WRITTEN, "externalmappings")
# Bulk API 2.0 jobs only run above the REST threshold: this makes every window a bulk job.
BULK = {"resources": {"extract_settings": {"config": {"rest_threshold": 0}}}}


@dataclass(frozen=True)
class Fault:
    salesforce: str = ""
    m3ter: str = ""
    sandbox: dict[str, Any] = field(default_factory=dict)
    run_config: dict[str, Any] = field(default_factory=dict)


def _mixed(kinds: tuple[str, ...]) -> str:
    return ",".join(f"{kind}={RATE / len(kinds):.4f}" for kind in kinds)


FAULTS: dict[str, Fault] = {
    **{f"salesforce-{k}": Fault(salesforce=f"{k}={RATE}") for k in SALESFORCE_KINDS},
    "salesforce-bulk_fail": Fault(salesforce="bulk_fail=0.3", run_config=BULK),
    "salesforce-quota": Fault(sandbox={"daily_api_requests": 20}),
    **{f"m3ter-{k}": Fault(m3ter=f"{k}={RATE}") for k in M3TER_KINDS if k != "lost_answer"},
    # Alone, at half the writes of its collection: a dozen accounts or two compound
    # aggregations must meet some, and half leaves every write's retries room to succeed.
    **{f"m3ter-lost_answer@{c}": Fault(m3ter=f"lost_answer@{c}=0.5") for c in LOST_ANSWERS},
    # The loader paces itself at 200 requests/s; this m3ter answers 429 above 10.
    "m3ter-429": Fault(sandbox={"m3ter_rate_limit": 10}),
    "mixed": Fault(salesforce=_mixed(SALESFORCE_KINDS), m3ter=_mixed(M3TER_KINDS)),
    "mixed-bulk": Fault(
        salesforce=_mixed(SALESFORCE_KINDS) + ",bulk_fail=0.1",
        m3ter=_mixed(M3TER_KINDS),
        sandbox={"fault_seed": 7},
        run_config=BULK,
    ),
}
# Each case is two backfills: all of them run with M3SYNC_RELIABILITY=full. The default run's
# fault tests are the layers' own (tests/extract, tests/load, tests/m3ter, tests/salesforce).
CASES = [pytest.param(name, id=name, marks=[pytest.mark.full]) for name in FAULTS]


def _lost_answers(sandbox: RunningSandbox) -> int:
    assert sandbox.m3ter is not None
    injected = sandbox.m3ter.faults.injected
    return sum(n for entry, n in injected.items() if entry.startswith("lost_answer"))


def _injected(sandbox: RunningSandbox) -> int:
    assert sandbox.salesforce is not None and sandbox.m3ter is not None
    counters = sandbox.m3ter.counters.snapshot()["counters"]
    too_many = sum(c["count"] for c in counters if c["status"] == 429)
    quota = sandbox.salesforce.usage.used >= sandbox.salesforce.usage.limit
    return (
        sum(sandbox.salesforce.faults.injected.values())
        + sum(sandbox.m3ter.faults.injected.values())
        + too_many
        + quota
    )


@pytest.mark.parametrize("name", CASES)
def test_a_run_under_faults_finishes_or_fails_clearly_and_the_next_finishes(
    world: World, reference, name: str
):
    fault = FAULTS[name]
    with world.sandbox(fault.salesforce, fault.m3ter, **fault.sandbox) as sandbox:
        result = world.backfill(fault.run_config)
        assert _injected(sandbox) > 0, "no fault was injected"
        LEDGER.record("lost_answers", name, _lost_answers(sandbox))
    if result.returncode != 0:
        assert "failed" in one_line_failure(result)
        with world.sandbox():
            again = world.backfill(fault.run_config)
            assert again.returncode == 0, again.stdout + again.stderr
            assert_converged(world, reference, name, "faults")
    else:
        with world.sandbox():
            assert_converged(world, reference, name, "faults")
    assert_quiet_rerun(world, name, fault.run_config)
