"""`m3sync doctor`: check the configured org and m3ter organization before the first run."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Annotated

import typer

from pipeline.cli.app import app, console, m3ter_settings


@app.command("doctor")
def doctor(
    sandbox: Annotated[
        Path | None,
        typer.Option(
            "--sandbox",
            help="Check the sandbox this sandbox.json describes instead of the org and m3ter "
            "organization the M3SYNC_* variables configure.",
        ),
    ] = None,
) -> None:
    """One line per check, green or red; exit status 1 if any is red."""
    from pipeline.mapping.source import MappingSource
    from pipeline.preflight import run_checks
    from pipeline.salesforce.settings import sandbox_settings, settings_from_env

    def salesforce():  # type: ignore[no-untyped-def]
        if sandbox is not None:
            return sandbox_settings(json.loads(sandbox.read_text())["salesforce"])
        return settings_from_env()

    failed = 0
    for check in run_checks(
        salesforce, lambda: m3ter_settings(sandbox), MappingSource.from_env(os.environ)
    ):
        mark, style = ("✓", "green") if check.ok else ("✗", "red")
        failed += not check.ok
        console.print(
            f"[{style}]{mark}[/{style}] {check.name}: ",
            end="",
            highlight=False,
            soft_wrap=True,
        )
        console.print(check.detail, markup=False, highlight=False, soft_wrap=True)
    if failed:
        raise typer.Exit(1)
