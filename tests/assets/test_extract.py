"""Extract assets materialized by Dagster against the org sandbox."""

from __future__ import annotations

import dagster as dg
import pytest

from assets.extract import extract_asset
from assets.partitions import daily_partitions
from assets.resources import (
    ExtractResource,
    MappingsResource,
    SalesforceResource,
    WarehouseResource,
)
from pipeline.salesforce.settings import sandbox_settings
from pipeline.warehouse import Warehouse
from tests.extract.conftest import YESTERDAY
from tests.shipped import mapped


@pytest.fixture
def resources(sandbox, tmp_path):
    info = sandbox.info()["salesforce"]
    return {
        "salesforce": SalesforceResource.from_settings(sandbox_settings(info)),
        "warehouse": WarehouseResource(root=str(tmp_path / "warehouse")),
        "extract_settings": ExtractResource(rest_threshold=0),
        "mappings": MappingsResource(),
    }


def test_a_partition_materialization_reports_what_it_extracted(resources, tmp_path):
    asset = extract_asset(mapped("OrderItem"), daily_partitions())
    result = dg.materialize([asset], partition_key=YESTERDAY, resources=resources)
    assert result.success
    (event,) = result.asset_materializations_for_node(asset.op.name)
    meta = event.metadata
    assert meta["dagster/row_count"].value > 0
    assert meta["method"].value == "bulk" and meta["bulk_jobs"].value == 1
    assert {"deleted_rows", "api_calls", "bytes", "duration_seconds"} <= set(meta)
    rows = (
        Warehouse(tmp_path / "warehouse")
        .connect()
        .execute("SELECT count(*) FROM raw.order_item")
        .fetchone()[0]
    )
    assert rows == meta["dagster/row_count"].value


def test_reference_objects_are_unpartitioned(resources):
    asset = extract_asset(mapped("Product2"), daily_partitions())
    assert asset.partitions_def is None
    assert dg.materialize([asset], resources=resources).success


def test_no_secret_appears_in_run_metadata(resources, sandbox):
    asset = extract_asset(mapped("Account"), daily_partitions())
    result = dg.materialize([asset], partition_key=YESTERDAY, resources=resources)
    text = repr([e.event_specific_data for e in result.all_events])
    info = sandbox.info()["salesforce"]
    for secret in ("password", "security_token", "client_secret"):
        assert info[secret] not in text


def test_a_missing_field_fails_the_run_without_step_retries(resources):
    from pipeline.extract.objects import SourceObject

    asset = extract_asset(SourceObject("Account", ("Nope__c",)), daily_partitions())
    result = dg.materialize(
        [asset], partition_key=YESTERDAY, resources=resources, raise_on_error=False
    )
    assert not result.success
    failure = result.get_step_failure_events()[0].step_failure_data.error
    assert "Account: cannot select 'Nope__c'" in failure.message
    assert not [e for e in result.all_events if e.event_type_value == "STEP_UP_FOR_RETRY"]


def test_a_missing_field_of_any_object_fails_before_the_first_job(resources, sandbox):
    from pipeline.extract.objects import SourceObject

    bad = SourceObject("Contract", ("Nope__c",))
    asset = extract_asset(mapped("OrderItem"), daily_partitions(), checked=[bad])
    jobs = sandbox.salesforce.usage.bulk_jobs
    result = dg.materialize(
        [asset], partition_key=YESTERDAY, resources=resources, raise_on_error=False
    )
    assert not result.success
    assert sandbox.salesforce.usage.bulk_jobs == jobs
    error = result.get_step_failure_events()[0].step_failure_data.error
    assert "Contract: cannot select 'Nope__c'" in error.message
