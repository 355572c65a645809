"""The concurrency pools the code location's steps claim, given their limits before any run
claims them."""

from __future__ import annotations

import dagster as dg

FALLBACK_LIMIT = 1  # one step at a time, as the CLI's own instance configures


def declared_pools(definitions: dg.Definitions) -> set[str]:
    """Every pool a step of any job names (`m3ter_api`, `salesforce_api`)."""
    return {pool for job in definitions.resolve_all_job_defs() for pool in job.graph.pools}


def initialize_pools(
    instance: dg.DagsterInstance, pools: set[str], limit: int | None = None
) -> dict[str, int]:
    """Give each pool without a limit the instance's `concurrency.pools.default_limit` (else 1),
    or every pool `limit` when given. Returns what each pool allows now.

    Dagster 1.13 makes a pool's limit row when a step first claims it, and on PostgreSQL two runs
    that do so at the same moment race: the loser's failed INSERT aborts its transaction, the
    UPDATE that follows raises `InFailedSqlTransaction`, and the run fails. A limit set
    beforehand is a row that exists (and that Dagster, marking it not from the default, never
    re-creates).
    """
    storage = instance.event_log_storage
    existing = {pool.name: pool.limit for pool in storage.get_pool_limits()}
    wanted = limit or instance.global_op_concurrency_default_limit or FALLBACK_LIMIT
    for pool in sorted(pools if limit else pools - set(existing)):
        storage.set_concurrency_slots(pool, wanted)
        existing[pool] = wanted
    return {pool: existing[pool] for pool in sorted(pools)}
