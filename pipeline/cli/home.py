"""`DAGSTER_HOME` for the commands: where their runs are recorded, made and configured once."""

from __future__ import annotations

import json
import os
from pathlib import Path

DEFAULT_HOME = Path(".m3sync/dagster")
# Telemetry off; one step at a time in the `m3ter_api` pool across every run of this instance,
# so overlapping runs share m3ter's rate limit instead of each spending it whole.
EARLIER_CONFIG = """\
telemetry:
  enabled: false
concurrency:
  pools:
    default_limit: 1
"""
# The same, with Dagster's SQLite event log in its usual place storing a range step's
# materializations in one transaction (`assets/storage.py`).
INSTANCE_CONFIG = (
    EARLIER_CONFIG
    + """\
event_log_storage:
  module: assets.storage
  class: BatchedSqliteEventLogStorage
  config:
    base_dir: {runs}
"""
)
PLANNED_EVENTS_AS_SUBSET = "DAGSTER_EMIT_PARTITION_SUBSET_IN_PLANNED_EVENTS"
EVENT_BATCH_SIZE = "DAGSTER_EVENT_BATCH_SIZE"


def dagster_home() -> Path:
    """`DAGSTER_HOME`, made and configured on first use (an operator's own dagster.yaml stays;
    one m3sync wrote before it batched events is brought up to date)."""
    home = Path(os.environ.get("DAGSTER_HOME") or DEFAULT_HOME).resolve()
    home.mkdir(parents=True, exist_ok=True)
    config = home / "dagster.yaml"
    if not config.exists() or config.read_text() == EARLIER_CONFIG:
        # Absolute: Dagster reads a relative base_dir from the working directory.
        config.write_text(INSTANCE_CONFIG.format(runs=json.dumps(str(home / "history" / "runs"))))
    os.environ["DAGSTER_HOME"] = str(home)
    # One "materialization planned" event per asset and run instead of one per asset and
    # partition, and a range step's materializations handed to the storage as one batch:
    # Dagster's SQLite storage spends ~10 ms on each event it stores alone, and a year's range
    # run of ~22 partitioned assets reports 8,000 materializations. Dagster's trade-off for the
    # first: partitions of a failed run show as missing rather than failed.
    os.environ.setdefault(PLANNED_EVENTS_AS_SUBSET, "true")
    os.environ.setdefault(EVENT_BATCH_SIZE, "1000")
    return home
