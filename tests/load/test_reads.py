"""A partition run reads what its rows name, in batches, however much m3ter holds."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from pathlib import Path

import pytest

from pipeline.load.current import Current
from pipeline.load.run import load
from pipeline.m3ter.client import M3terClient
from pipeline.m3ter.settings import sandbox_settings
from pipeline.mapping.compiler import compile_mappings
from pipeline.mapping.files import load_mappings
from pipeline.sandbox.m3ter import M3terConfig
from pipeline.sandbox.m3ter.org import ExternalSystem, OrgSettings
from pipeline.sandbox.server import running_sandbox
from pipeline.staging.stage import stage
from tests.load.conftest import DAY1, DAY2, ENTITIES, FIRST, MAPPINGS, run, write_raw
from tests.load.test_lost_answers import COMMITMENTS
from tests.shipped import describe

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


def test_a_commitment_whose_table_the_org_does_not_map_is_refused_before_it_is_made(
    tmp_path: Path, warehouse
):
    directory = tmp_path / "mappings"
    directory.mkdir()
    (directory / "accounts.yaml").write_text(MAPPINGS["accounts"])
    (directory / "commitments.yaml").write_text(COMMITMENTS)
    compiled = compile_mappings(load_mappings(directory), describe)
    org = OrgSettings(external_systems=(ExternalSystem("Salesforce", ("Order",)),))
    config = M3terConfig(state_dir=tmp_path / "m3ter", org=org)
    write_raw(warehouse, DAY1, FIRST)
    with running_sandbox(tmp_path / "sandbox", m3ter=config) as running:
        client = M3terClient(sandbox_settings(running.info()["m3ter"]))
        for entity in ("accounts", "commitments"):
            stage(warehouse, compiled[entity], [DAY1])
            result = load(client, warehouse, entity, [DAY1])
        assert result.outcomes == {"reject:rejected": 3}
        assert "has no table Account for Salesforce" in result.rejects[0][1]
        assert list(client.list("commitments")) == []


def test_a_commitment_whose_mapping_m3ter_refuses_is_kept_by_its_id_and_not_made_twice(
    tmp_path: Path, warehouse
):
    directory = tmp_path / "mappings"
    directory.mkdir()
    (directory / "accounts.yaml").write_text(MAPPINGS["accounts"])
    (directory / "commitments.yaml").write_text(COMMITMENTS)
    compiled = compile_mappings(load_mappings(directory), describe)
    # The configuration cannot be read, and refuses the mapping when it is written.
    org = OrgSettings(
        external_systems=(ExternalSystem("Salesforce", ("Order",)),),
        denied=frozenset({"retrieve:externalmappingconfiguration"}),
    )
    config = M3terConfig(state_dir=tmp_path / "m3ter", org=org)
    write_raw(warehouse, DAY1, FIRST)
    with running_sandbox(tmp_path / "sandbox", m3ter=config) as running:
        client = M3terClient(sandbox_settings(running.info()["m3ter"]))
        for entity in ("accounts", "commitments"):
            stage(warehouse, compiled[entity], [DAY1])
            first = load(client, warehouse, entity, [DAY1])
        assert first.outcomes == {"create:applied": 3}
        messages = warehouse.connect().execute(
            "SELECT DISTINCT message FROM load.journal WHERE entity = 'commitments'"
        )
        (message,) = [m for (m,) in messages.fetchall()]
        assert message.startswith("made, but m3ter refused its ExternalMapping: externalTable")
        again = load(client, warehouse, "commitments", [DAY1])
        assert again.outcomes == {"unchanged:unchanged": 3} and again.writes == 0
        assert len(list(client.list("commitments"))) == 3
