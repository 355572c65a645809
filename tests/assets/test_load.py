"""Load assets materialized by Dagster after extract and staging, into the m3ter sandbox."""

from __future__ import annotations

from collections.abc import Iterator

import dagster as dg
import pytest

from assets.extract import extract_asset
from assets.load import load_asset
from assets.partitions import daily_partitions
from assets.resources import (
    ExtractResource,
    M3terResource,
    MappingsResource,
    SalesforceResource,
    StageResource,
    WarehouseResource,
)
from assets.staging import staged_asset
from pipeline.extract.objects import SourceObject
from pipeline.m3ter.client import M3terClient
from pipeline.m3ter.settings import sandbox_settings as m3ter_settings
from pipeline.salesforce.settings import sandbox_settings
from pipeline.sandbox.m3ter import M3terConfig
from pipeline.sandbox.server import running_sandbox
from pipeline.warehouse import Warehouse
from tests.extract.conftest import YESTERDAY
from tests.shipped import shipped


@pytest.fixture(scope="module")
def m3ter_info(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    state = tmp_path_factory.mktemp("m3ter")
    with running_sandbox(state, m3ter=M3terConfig(state_dir=state / "m3ter")) as running:
        yield running.info()["m3ter"]


def _run(sandbox, m3ter_info, root, dry_run: bool) -> dg.ExecuteInProcessResult:
    partitions = daily_partitions()
    return dg.materialize(
        [
            extract_asset(SourceObject("Account"), partitions),
            staged_asset("accounts", partitions, shipped().objects),
            load_asset("accounts", partitions, shipped().objects),
        ],
        partition_key=YESTERDAY,
        resources={
            "salesforce": SalesforceResource.from_settings(
                sandbox_settings(sandbox.info()["salesforce"])
            ),
            "warehouse": WarehouseResource(root=str(root)),
            "extract_settings": ExtractResource(),
            "mappings": MappingsResource(),
            "stage_settings": StageResource(max_reject_share=1.0),
            "m3ter": M3terResource.from_settings(m3ter_settings(m3ter_info)),
        },
        run_config={"ops": {"m3ter__accounts": {"config": {"dry_run": dry_run}}}},
    )


def test_a_dry_run_records_the_plan_and_writes_nothing(sandbox, m3ter_info, tmp_path):
    result = _run(sandbox, m3ter_info, tmp_path / "warehouse", dry_run=True)
    (event,) = result.asset_materializations_for_node("m3ter__accounts")
    assert event.metadata["dry_run"].value is True and event.metadata["write_calls"].value == 0
    assert "create" in event.metadata["actions"].value
    assert "| action |" in event.metadata["plan"].value


def test_a_load_creates_the_staged_accounts_in_m3ter(sandbox, m3ter_info, tmp_path):
    result = _run(sandbox, m3ter_info, tmp_path / "warehouse", dry_run=False)
    (event,) = result.asset_materializations_for_node("m3ter__accounts")
    created = event.metadata["outcomes"].value.get("create:applied", 0)
    staged = (
        Warehouse(tmp_path / "warehouse")
        .connect()
        .execute("SELECT code FROM staged.accounts WHERE NOT _tombstone")
    )
    wanted = {code for (code,) in staged.fetchall()}
    codes = {a["code"] for a in M3terClient(m3ter_settings(m3ter_info)).list("accounts")}
    assert wanted and wanted <= codes
    assert created == len(wanted) == event.metadata["write_calls"].value
