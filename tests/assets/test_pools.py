"""The pools the code location's steps claim get their limits before any run claims them."""

from __future__ import annotations

import dagster as dg

from assets.definitions import defs
from assets.pools import declared_pools, initialize_pools


def _limits(instance: dg.DagsterInstance) -> dict[str, int | None]:
    return {pool.name: pool.limit for pool in instance.event_log_storage.get_pool_limits()}


def test_the_code_location_declares_the_m3ter_and_salesforce_pools() -> None:
    assert declared_pools(defs()) >= {"m3ter_api", "salesforce_api"}


def test_a_pool_without_a_limit_gets_one_step_at_a_time() -> None:
    with dg.instance_for_test() as instance:
        assert initialize_pools(instance, {"m3ter_api"}) == {"m3ter_api": 1}
        assert _limits(instance) == {"m3ter_api": 1}


def test_a_pool_gets_the_instances_default_limit() -> None:
    overrides = {"concurrency": {"pools": {"default_limit": 3}}}
    with dg.instance_for_test(overrides=overrides) as instance:
        assert initialize_pools(instance, {"m3ter_api"}) == {"m3ter_api": 3}


def test_a_limit_an_operator_set_is_kept() -> None:
    with dg.instance_for_test() as instance:
        instance.event_log_storage.set_concurrency_slots("m3ter_api", 2)
        assert initialize_pools(instance, {"m3ter_api", "salesforce_api"}) == {
            "m3ter_api": 2,
            "salesforce_api": 1,
        }


def test_an_explicit_limit_sets_every_pool() -> None:
    with dg.instance_for_test() as instance:
        instance.event_log_storage.set_concurrency_slots("m3ter_api", 2)
        assert initialize_pools(instance, {"m3ter_api", "salesforce_api"}, limit=5) == {
            "m3ter_api": 5,
            "salesforce_api": 5,
        }
