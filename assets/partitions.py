"""Daily partitions on SystemModstamp and how many of them one run takes."""

import os

import dagster as dg

DEFAULT_START_DATE = "2023-01-01"
# A backfill of up to ten years is one run: one query per object for the whole range, and each
# stage's fixed cost paid once. A failed run repeats only its extract and stage: the load's
# journal skips what m3ter already holds.
DEFAULT_PARTITIONS_PER_RUN = 3660


def daily_partitions() -> dg.DailyPartitionsDefinition:
    """Daily windows on SystemModstamp, in UTC, from M3SYNC_START_DATE."""
    start = os.environ.get("M3SYNC_START_DATE", DEFAULT_START_DATE)
    return dg.DailyPartitionsDefinition(start_date=start, timezone="UTC")


def partitions_per_run() -> int:
    raw = os.environ.get("M3SYNC_BACKFILL_PARTITIONS_PER_RUN", str(DEFAULT_PARTITIONS_PER_RUN))
    try:
        value = int(raw)
    except ValueError:
        raise ValueError(
            f"M3SYNC_BACKFILL_PARTITIONS_PER_RUN must be a whole number, got {raw!r}"
        ) from None
    if value < 1:
        raise ValueError(f"M3SYNC_BACKFILL_PARTITIONS_PER_RUN must be at least 1, got {value}")
    return value


def backfill_policy() -> dg.BackfillPolicy:
    """One policy for every partitioned asset, so a job's assets never disagree."""
    return dg.BackfillPolicy.multi_run(max_partitions_per_run=partitions_per_run())
