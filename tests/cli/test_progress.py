"""A command's progress: a line at least every PIPED_EVERY seconds on a pipe, a live bar on a
terminal, and writes left with an ETA from the load's own messages."""

from __future__ import annotations

import fcntl
import io
import os
import select
import struct
import subprocess
import sys
import termios
import time

from pipeline.cli.progress import PIPED_EVERY, ProgressView, RunProgress
from pipeline.load.progress import read_writes, writes_message


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def progress(clock: Clock) -> RunProgress:
    return RunProgress(
        "run 1/1 2024-01-01..2024-01-03",
        steps=4,
        partitions=3,
        partitioned_steps=frozenset({"raw__account", "staged__accounts"}),
        clock=clock,
    )


def test_the_loads_message_reads_back_as_done_and_total() -> None:
    assert read_writes(writes_message(1200, 4800)) == (1200, 4800)
    assert read_writes("created 3 accounts") is None


def test_writes_left_and_an_eta_follow_the_loads_pace() -> None:
    clock = Clock()
    run = progress(clock)
    run.step_started("m3ter__pricings")
    run.message("m3ter__pricings", writes_message(0, 900))
    clock.now += 10
    run.message("m3ter__pricings", writes_message(450, 900))
    assert run.describe().startswith("load m3ter/pricings: 450 of 900 writes, 450 left, ETA 0:10")


def test_the_partitions_are_done_once_every_partitioned_step_is() -> None:
    run = progress(Clock())
    run.step_finished("raw__account")
    run.step_finished("m3ter__compound_aggregations")
    assert run.describe().endswith("0/3 partitions")
    run.step_finished("staged__accounts")
    assert run.describe().endswith("3/3 partitions")


def test_the_stage_is_named_by_the_steps_asset_group() -> None:
    run = progress(Clock())
    assert run.stage() == "starting"
    run.step_started("raw__order_item")
    assert run.stage() == "extract raw/order_item"
    run.step_started("staged__plans")
    assert run.stage() == "stage staged/plans"


def test_a_piped_run_prints_a_line_at_start_and_every_interval() -> None:
    clock = Clock()
    run = progress(clock)
    out = io.StringIO()
    with ProgressView(run, out) as view:
        run.step_started("raw__account")
        clock.now += PIPED_EVERY / 2
        view.show()
        clock.now += PIPED_EVERY / 2
        run.step_finished("raw__account")
        view.show()
    lines = out.getvalue().splitlines()
    assert lines == [
        "[0:00] run 1/1 2024-01-01..2024-01-03: 0/4 steps; starting; 0/3 partitions",
        "[0:20] run 1/1 2024-01-01..2024-01-03: 1/4 steps; extract raw/account; 0/3 partitions",
    ]


def test_a_terminal_gets_a_live_bar_that_moves_while_the_run_works() -> None:
    controller, terminal = os.openpty()
    fcntl.ioctl(terminal, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 160, 0, 0))
    clock = Clock()
    run = progress(clock)
    with os.fdopen(terminal, "w") as out, ProgressView(run, out) as view:
        run.step_started("m3ter__plans")
        run.message("m3ter__plans", writes_message(10, 40))
        clock.now += 65
        view.show()
        out.flush()
        shown = b""
        deadline = time.monotonic() + 5
        while b"1:05" not in shown and time.monotonic() < deadline:
            if select.select([controller], [], [], 0.5)[0]:
                shown += os.read(controller, 65536)
    os.close(controller)
    assert b"load m3ter/plans: 10 of 40 writes, 30 left" in shown
    assert b"1:05" in shown  # the elapsed clock moves with the run


DURING_A_RUN = """
import threading, time
import dagster as dg
from pipeline.cli.progress import ProgressView, RunProgress, terminal_output

run = RunProgress("a run", steps=1, partitions=1, partitioned_steps=frozenset({"slow"}))

@dg.asset
def slow() -> None:
    time.sleep(2)

graph = dg.Definitions(assets=[slow]).resolve_asset_graph()
job = dg.define_asset_job("j").resolve(asset_graph=graph)
with ProgressView(run, terminal_output()) as view:
    def follow() -> None:
        time.sleep(1)
        run.step_started("raw__during")  # what the follower hears while the step runs
        view.show()
    threading.Thread(target=follow).start()
    job.execute_in_process(instance=dg.DagsterInstance.local_temp())  # captures compute logs
"""


def test_the_bar_reaches_the_terminal_while_dagster_captures_the_runs_output() -> None:
    controller, terminal = os.openpty()  # a terminal that reports no size, as under `script`
    process = subprocess.Popen(
        [sys.executable, "-W", "ignore", "-c", DURING_A_RUN],
        stdin=subprocess.DEVNULL,
        stdout=terminal,
        stderr=subprocess.DEVNULL,
    )
    os.close(terminal)
    shown = b""
    deadline = time.monotonic() + 60
    while process.poll() is None and time.monotonic() < deadline:
        if select.select([controller], [], [], 0.5)[0]:
            try:
                shown += os.read(controller, 65536)
            except OSError:
                break
    process.wait(timeout=30)
    os.close(controller)
    assert b"extract raw/during" in shown
