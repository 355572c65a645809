"""What a command shows while its runs work: a live bar on a terminal, a line at least every
`PIPED_EVERY` seconds when its output goes to a file or a pipe.

It hears what the run's event log says (a step started or ended, a load's "N of M writes"
message) and knows nothing of Dagster itself.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import IO

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, SpinnerColumn, TextColumn

from pipeline.load.progress import read_writes

PIPED_EVERY = 20.0  # seconds between progress lines on a pipe
STAGES = {"raw": "extract", "staged": "stage", "m3ter": "load", "salesforce": "write back"}


def terminal_output() -> IO[str]:
    """This process's stdout as it is now, kept open on a descriptor of its own.

    Dagster's in-process runs point descriptor 1 at their compute log while they run (and show
    it through `tail -F`), so a console on `sys.stdout` stops being a terminal mid-run and its
    live display freezes; a copy taken before the run keeps the terminal.
    """
    sys.stdout.flush()
    return os.fdopen(os.dup(sys.stdout.fileno()), "w", buffering=1, encoding="utf-8")


def _clock(seconds: float) -> str:
    minutes, secs = divmod(int(seconds + 0.5), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}:{minutes:02}:{secs:02}" if hours else f"{minutes}:{secs:02}"


@dataclass
class _Writes:
    """A load's writes: how many of how many, and its pace since its first report."""

    done: int
    total: int
    first_done: int
    first_at: float

    def eta(self, now: float) -> float | None:
        elapsed = now - self.first_at
        if self.done >= self.total:
            return 0.0
        if elapsed < 1.0 or self.done <= self.first_done:
            return None
        return (self.total - self.done) / ((self.done - self.first_done) / elapsed)


@dataclass
class RunProgress:
    """The state of one run as its event log tells it, and its one-line description."""

    label: str
    steps: int
    partitions: int
    partitioned_steps: frozenset[str]  # the steps of partitioned assets
    clock: Callable[[], float] = time.monotonic
    steps_done: int = 0
    step: str | None = None
    detail: str = ""
    writes: _Writes | None = None
    started: float = field(init=False)
    _finished: set[str] = field(default_factory=set)

    def __post_init__(self) -> None:
        self.started = self.clock()

    def step_started(self, step_key: str) -> None:
        self.step, self.detail, self.writes = step_key, "", None

    def step_finished(self, step_key: str) -> None:
        self.steps_done += 1
        self._finished.add(step_key)

    def message(self, step_key: str, text: str) -> None:
        self.step = step_key
        writes = read_writes(text)
        if writes is None:
            self.detail = text.splitlines()[0][:80] if text else ""
            return
        done, total = writes
        if self.writes is None or self.writes.total != total:
            self.writes = _Writes(done, total, done, self.clock())
        else:
            self.writes.done = done
        self.detail = ""

    @property
    def partitions_done(self) -> int:
        """Partitions every partitioned asset of the run has materialized: a range run's steps
        each materialize the whole range, so all of them once the last such step is done."""
        return self.partitions if self.partitioned_steps <= self._finished else 0

    def stage(self) -> str:
        if self.step is None:
            return "starting"
        group, _, name = self.step.partition("__")
        return f"{STAGES.get(group, group)} {group}/{name}"

    def describe(self) -> str:
        """`load m3ter/pricings: 1,200 of 4,800 writes, 3,600 left, ETA 1:20; 0/1,096 days`."""
        now = self.clock()
        parts = [self.stage()]
        if self.writes is not None:
            left = self.writes.total - self.writes.done
            eta = self.writes.eta(now)
            parts[0] += f": {self.writes.done:,} of {self.writes.total:,} writes, {left:,} left" + (
                f", ETA {_clock(eta)}" if eta is not None else ""
            )
        elif self.detail:
            parts[0] += f": {self.detail}"
        parts.append(f"{self.partitions_done:,}/{self.partitions:,} partitions")
        return "; ".join(parts)

    def line(self) -> str:
        """The piped form: elapsed time, label, steps and the description."""
        elapsed = _clock(self.clock() - self.started)
        return f"[{elapsed}] {self.label}: {self.steps_done}/{self.steps} steps; {self.describe()}"


class ProgressView:
    """Shows a `RunProgress`: a live bar when `output` is a terminal, else a line every
    `PIPED_EVERY` seconds (and one when the run starts)."""

    def __init__(self, progress: RunProgress, output: IO[str]) -> None:
        self.progress = progress
        # Rich measures the terminal on descriptors 0-2, which a run may have redirected.
        width = os.get_terminal_size(output.fileno()).columns if output.isatty() else 0
        self.console = Console(file=output, width=width or None)  # a terminal of no size: 80
        self._last_line: float | None = None
        self._bar: Progress | None = None
        if self.console.is_terminal:
            self._bar = Progress(
                SpinnerColumn(),
                TextColumn("{task.fields[elapsed]}"),
                TextColumn("[bold]{task.fields[label]}"),
                BarColumn(bar_width=20),
                MofNCompleteColumn(),
                TextColumn("{task.description}"),
                console=self.console,
                transient=True,
            )
            self._task = self._bar.add_task(
                "starting", total=progress.steps, label=progress.label, elapsed="0:00"
            )

    def __enter__(self) -> ProgressView:
        if self._bar is not None:
            self._bar.start()
        self.show()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._bar is not None:
            self._bar.stop()
        self.console.file.flush()

    def show(self) -> None:
        progress = self.progress
        if self._bar is not None:
            self._bar.update(
                self._task,
                completed=progress.steps_done,
                description=progress.describe(),
                elapsed=_clock(progress.clock() - progress.started),
            )
            return
        now = progress.clock()
        if self._last_line is None or now - self._last_line >= PIPED_EVERY:
            self._last_line = now
            self.console.print(progress.line(), markup=False, highlight=False, soft_wrap=True)
