"""Staged assets materialized by Dagster after the extracts, against the org sandbox."""

from __future__ import annotations

import shutil
from pathlib import Path

import dagster as dg
import pytest

from assets.extract import extract_asset
from assets.partitions import daily_partitions
from assets.resources import (
    ExtractResource,
    MappingsResource,
    SalesforceResource,
    StageResource,
    WarehouseResource,
)
from assets.staging import REJECT_CHECK, staged_asset
from pipeline.extract.objects import SourceObject
from pipeline.salesforce.settings import sandbox_settings
from pipeline.warehouse import Warehouse
from tests.extract.conftest import YESTERDAY
from tests.shipped import MAPPINGS_DIR, shipped


def _resources(
    sandbox, root: Path, mappings: Path = MAPPINGS_DIR, max_share: float = 0.1, allowance: int = 0
):
    return {
        "salesforce": SalesforceResource.from_settings(
            sandbox_settings(sandbox.info()["salesforce"])
        ),
        "warehouse": WarehouseResource(root=str(root)),
        "extract_settings": ExtractResource(),
        "mappings": MappingsResource(directory=str(mappings)),
        "stage_settings": StageResource(max_reject_share=max_share, reject_allowance=allowance),
    }


def _accounts_run(sandbox, root: Path, **resources) -> dg.ExecuteInProcessResult:
    partitions = daily_partitions()
    return dg.materialize(
        [
            extract_asset(SourceObject("Account"), partitions),
            staged_asset("accounts", partitions, shipped().objects),
        ],
        partition_key=YESTERDAY,
        resources=_resources(sandbox, root, **resources),
        raise_on_error=False,
    )


def _rejecting_every_account(tmp_path: Path) -> Path:
    """The shipped mappings, with an email address m3ter's pattern refuses for every account."""
    mappings = tmp_path / "mappings"
    shutil.copytree(MAPPINGS_DIR, mappings)
    accounts = mappings / "accounts.yaml"
    text = accounts.read_text().replace("    emailAddress: Billing_Email__c\n", "")
    accounts.write_text(text.replace("  hardcoded:\n", "  hardcoded:\n    emailAddress: nobody\n"))
    return mappings


def test_a_staged_materialization_reports_rows_rejects_and_a_preview(sandbox, tmp_path):
    result = _accounts_run(sandbox, tmp_path / "warehouse")
    assert result.success
    (event,) = result.asset_materializations_for_node("staged__accounts")
    meta = event.metadata
    assert {"tombstones", "rejects", "rejects_by_check", "reject_share", "preview"} <= set(meta)
    assert {"profile_seconds", "segment_wildcards"} <= set(meta)
    staged = Warehouse(tmp_path / "warehouse").connect()
    (rows,) = staged.execute("SELECT count(*) FROM staged.accounts WHERE NOT _tombstone").fetchone()
    assert rows == meta["dagster/row_count"].value


def test_the_reject_check_passes_under_the_configured_share(sandbox, tmp_path):
    result = _accounts_run(sandbox, tmp_path / "warehouse", max_share=1.0)
    (check,) = result.get_asset_check_evaluations()
    assert check.check_name == REJECT_CHECK and check.passed


def test_rejects_above_the_share_fail_the_blocking_check_and_the_run(sandbox, tmp_path):
    mappings = _rejecting_every_account(tmp_path)
    result = _accounts_run(sandbox, tmp_path / "warehouse", mappings=mappings, max_share=0.1)
    assert not result.success
    (check,) = result.get_asset_check_evaluations()
    assert not check.passed and check.metadata["reject_share"].value == pytest.approx(1.0)


def test_rejects_within_the_allowance_pass_whatever_their_share(sandbox, tmp_path):
    mappings = _rejecting_every_account(tmp_path)
    result = _accounts_run(
        sandbox, tmp_path / "warehouse", mappings=mappings, max_share=0.1, allowance=10_000
    )
    (check,) = result.get_asset_check_evaluations()
    assert check.passed and check.metadata["reject_share"].value == pytest.approx(1.0)


def test_extracts_select_the_fields_the_mappings_read(sandbox, tmp_path):
    partitions = daily_partitions()
    result = dg.materialize(
        [extract_asset(SourceObject("OrderItem"), partitions)],
        partition_key=YESTERDAY,
        resources=_resources(sandbox, tmp_path / "warehouse"),
    )
    assert result.success
    con = Warehouse(tmp_path / "warehouse").connect()
    columns = {row[0] for row in con.execute("DESCRIBE raw.order_item").fetchall()}
    assert {"Order.Account.Region__c", "Product2.M3ter_Aggregation_Code__c", "EndDate"} <= columns
