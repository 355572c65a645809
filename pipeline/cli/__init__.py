"""The `m3sync` command: each module adds its commands to one Typer application."""

from __future__ import annotations

import traceback

from pipeline.cli import (  # noqa: F401
    coverage,
    doctor,
    explain,
    inspect,
    mappings,
    plan,
    runs,
    sandbox,
    setup,
)
from pipeline.cli.app import Options, app, console


def main() -> None:
    try:
        app()
    except Exception as exc:  # the one place that turns any failure into a line
        if Options.verbose:
            console.print(traceback.format_exc(), markup=False, highlight=False)
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        console.print(
            f"m3sync failed: {reason} (--verbose shows the traceback)",
            style="red",
            markup=False,
            highlight=False,
            soft_wrap=True,
        )
        raise SystemExit(1) from None
