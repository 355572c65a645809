"""Commitments, which have no code in m3ter: keyed by their ExternalMapping, never made twice."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pipeline.load.current import Current
from pipeline.load.journal import Knowledge, write_pending
from pipeline.load.reconcile import plan
from pipeline.load.run import load, staged_rows
from pipeline.m3ter.client import M3terClient
from pipeline.m3ter.settings import sandbox_settings
from pipeline.sandbox.m3ter import M3terConfig
from pipeline.sandbox.m3ter.org import ExternalSystem, OrgSettings
from pipeline.sandbox.server import running_sandbox
from tests.load.conftest import DAY1


def _sandbox(tmp_path: Path, **settings: Any) -> Any:
    return running_sandbox(tmp_path / "sandbox", m3ter=M3terConfig(tmp_path / "m3ter", **settings))


def test_a_commitment_created_by_a_run_that_died_before_its_mapping_is_adopted(
    client, warehouse, prepaid
):
    load(client, warehouse, "accounts", [DAY1])
    rows = staged_rows(warehouse, "commitments", [DAY1])
    actions = plan("commitments", rows, Current(client), Knowledge(warehouse))
    first = actions[0]
    assert first.body is not None
    write_pending(warehouse, "commitments", "dead-run", actions)
    client.create("commitments", first.body)  # the run died before writing its mapping
    result = load(client, warehouse, "commitments", [DAY1])
    assert result.outcomes == {"create:applied": 2, "unchanged:applied": 1}
    assert len(list(client.list("commitments"))) == 3
    again = load(client, warehouse, "commitments", [DAY1])
    assert again.outcomes == {"unchanged:unchanged": 3} and again.writes == 0


def test_a_commitment_whose_table_the_org_does_not_map_is_refused_before_it_is_made(
    tmp_path: Path, warehouse, prepaid
):
    org = OrgSettings(external_systems=(ExternalSystem("Salesforce", ("Order",)),))
    with _sandbox(tmp_path, org=org) as running:
        client = M3terClient(sandbox_settings(running.info()["m3ter"]))
        load(client, warehouse, "accounts", [DAY1])
        result = load(client, warehouse, "commitments", [DAY1])
        assert result.outcomes == {"reject:rejected": 3}
        assert "has no table Account for Salesforce" in result.rejects[0][1]
        assert list(client.list("commitments")) == []


def test_a_commitment_whose_mapping_m3ter_refuses_is_kept_by_its_id_and_not_made_twice(
    tmp_path: Path, warehouse, prepaid
):
    # The configuration cannot be read, and refuses the mapping when it is written.
    org = OrgSettings(
        external_systems=(ExternalSystem("Salesforce", ("Order",)),),
        denied=frozenset({"retrieve:externalmappingconfiguration"}),
    )
    with _sandbox(tmp_path, org=org) as running:
        client = M3terClient(sandbox_settings(running.info()["m3ter"]))
        load(client, warehouse, "accounts", [DAY1])
        first = load(client, warehouse, "commitments", [DAY1])
        assert first.outcomes == {"create:applied": 3}
        messages = warehouse.connect().execute(
            "SELECT DISTINCT message FROM load.journal WHERE entity = 'commitments'"
        )
        (message,) = [m for (m,) in messages.fetchall()]
        assert message.startswith("made, but m3ter refused its ExternalMapping: externalTable")
        again = load(client, warehouse, "commitments", [DAY1])
        assert again.outcomes == {"unchanged:unchanged": 3} and again.writes == 0
        assert len(list(client.list("commitments"))) == 3
