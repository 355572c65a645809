"""A partition run reads what its rows name, in batches, however much m3ter holds."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator

import pytest

from pipeline.load.current import Current
from pipeline.load.run import load
from pipeline.m3ter.client import M3terClient
from pipeline.m3ter.settings import sandbox_settings
from pipeline.sandbox.m3ter import M3terConfig
from pipeline.sandbox.server import running_sandbox
from pipeline.staging.stage import stage
from tests.load.conftest import DAY1, DAY2, ENTITIES, FIRST, run, write_raw

OTHERS = 150  # accounts m3ter holds that no staged row names


@pytest.fixture(scope="module")
def crowded(tmp_path_factory: pytest.TempPathFactory) -> Iterator[M3terClient]:
    """An m3ter of its own holding accounts that no staged row names."""
    state = tmp_path_factory.mktemp("crowded")
    with running_sandbox(state, m3ter=M3terConfig(state_dir=state / "m3ter")) as running:
        settings = sandbox_settings(running.info()["m3ter"])
        with M3terClient(dataclasses.replace(settings, rate_limit=0)) as quick:
            for n in range(OTHERS):
                body = {"code": f"other-{n}", "name": "Other", "emailAddress": "o@other.test"}
                quick.create("accounts", body)
        with M3terClient(settings) as client:
            yield client


def _reads(client: M3terClient, warehouse, compiled, day: str, whole: bool) -> int:
    current = Current(client, whole=whole)
    before = client.reads
    for entity in ENTITIES:
        stage(warehouse, compiled[entity], [day])
        load(client, warehouse, entity, [day], current=current)
    return client.reads - before


def test_a_run_does_not_page_through_accounts_no_row_names(crowded, warehouse, compiled):
    write_raw(warehouse, DAY1, FIRST)
    reads = _reads(crowded, warehouse, compiled, DAY1, whole=False)
    assert reads <= 8  # accounts by code, templates, aggregations, contracts: one page each


def test_a_full_reconcile_lists_every_collection_it_touches(crowded, warehouse, compiled):
    write_raw(warehouse, DAY1, FIRST)
    assert _reads(crowded, warehouse, compiled, DAY1, whole=True) >= OTHERS // 100 + 1


def test_a_changed_record_is_read_by_the_id_the_last_run_journaled(client, warehouse, compiled):
    write_raw(warehouse, DAY1, FIRST)
    run(client, warehouse, compiled, DAY1)
    write_raw(warehouse, DAY2, [(2, FIRST[1][1], 0.09, False)], accounts=[])
    before = client.spent()
    outcomes = run(client, warehouse, compiled, DAY2)
    assert outcomes["pricings"] == {"update:applied": 1}
    # by id: each entity's own objects, plus its references and the plan templates
    assert (client.spent() - before).reads <= 10
