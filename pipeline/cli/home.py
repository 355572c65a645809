"""`DAGSTER_HOME` for the commands: where their runs are recorded, made and configured once."""

from __future__ import annotations

import os
from pathlib import Path

DEFAULT_HOME = Path(".m3sync/dagster")
# Telemetry off; one step at a time in the `m3ter_api` pool across every run of this instance,
# so overlapping runs share m3ter's rate limit instead of each spending it whole.
INSTANCE_CONFIG = """\
telemetry:
  enabled: false
concurrency:
  pools:
    default_limit: 1
"""
PLANNED_EVENTS_AS_SUBSET = "DAGSTER_EMIT_PARTITION_SUBSET_IN_PLANNED_EVENTS"


def dagster_home() -> Path:
    """`DAGSTER_HOME`, made and configured on first use (an operator's own dagster.yaml stays)."""
    home = Path(os.environ.get("DAGSTER_HOME") or DEFAULT_HOME).resolve()
    home.mkdir(parents=True, exist_ok=True)
    config = home / "dagster.yaml"
    if not config.exists():
        config.write_text(INSTANCE_CONFIG)
    os.environ["DAGSTER_HOME"] = str(home)
    # One "materialization planned" event per asset and run instead of one per asset and
    # partition: Dagster's SQLite storage spends ~15 ms of Python on every event, and a year's
    # range run of ~22 partitioned assets would otherwise write 8,000 of them before any work.
    # Dagster's trade-off: partitions of a failed run show as missing rather than failed.
    os.environ.setdefault(PLANNED_EVENTS_AS_SUBSET, "true")
    return home
