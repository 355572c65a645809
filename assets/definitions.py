"""The m3sync Dagster code location (`dagster dev -w workspace.yaml`).

Configuration comes from the environment (see the README's configuration reference). Which
variables are *set* decides what is configured; their values reach Dagster only as `EnvVar`s, so
secrets never show in run config, the UI or metadata.
"""

import os

import dagster as dg

from assets.extract import extract_assets
from assets.jobs import (
    full_reconcile_job,
    nightly_schedule,
    refresh_job,
    refresh_schedule,
    sync_job,
)
from assets.load import load_assets
from assets.partitions import daily_partitions
from assets.resources import (
    ExtractResource,
    M3terResource,
    MappingsResource,
    SalesforceResource,
    StageResource,
    WarehouseResource,
)
from assets.sensors import run_failure_alert
from assets.staging import staged_assets
from assets.writeback import writeback_asset
from pipeline.extract.objects import SourceObjects
from pipeline.m3ter.settings import ENVIRONMENT as M3TER_ENVIRONMENT
from pipeline.mapping.source import ENVIRONMENT as MAPPINGS_ENVIRONMENT
from pipeline.mapping.source import MappingSource, writeback_on
from pipeline.salesforce.client import SalesforceClient
from pipeline.salesforce.settings import ENVIRONMENT, settings_from_env


def _from_env(names: dict[str, str]) -> dict[str, dg.EnvVar]:
    return {field: dg.EnvVar(var) for field, var in names.items() if var in os.environ}


def resources() -> dict[str, dg.ConfigurableResource]:
    warehouse = _from_env({"root": "M3SYNC_WAREHOUSE"})
    mappings: dict[str, object] = dict(_from_env(MAPPINGS_ENVIRONMENT))
    mappings["writeback"] = writeback_on(os.environ)
    stage: dict[str, object] = {}
    for name, var, convert in (
        ("max_reject_share", "M3SYNC_MAX_REJECT_SHARE", float),
        ("reject_allowance", "M3SYNC_REJECT_ALLOWANCE", int),
    ):
        if os.environ.get(var):
            stage[name] = convert(os.environ[var])
    text = ("base_url", "org_id", "access_key_id", "api_secret", "ca_file")
    m3ter: dict[str, object] = dict(
        _from_env({k: v for k, v in M3TER_ENVIRONMENT.items() if k in text})
    )
    for name, convert in (("rate_limit", float), ("ip_limit", int), ("concurrency", int)):
        if M3TER_ENVIRONMENT[name] in os.environ:
            m3ter[name] = convert(os.environ[M3TER_ENVIRONMENT[name]])
    if os.environ.get("M3SYNC_MIN_COVERAGE"):
        m3ter["min_coverage"] = float(os.environ["M3SYNC_MIN_COVERAGE"])
    return {
        "salesforce": SalesforceResource(**_from_env(ENVIRONMENT)),
        "m3ter": M3terResource(**m3ter),
        "warehouse": WarehouseResource(**warehouse),
        "extract_settings": ExtractResource(),
        "mappings": MappingsResource(**mappings),
        "stage_settings": StageResource(**stage),
    }


def mapped_objects() -> SourceObjects:
    """The objects the configured mappings name, read as the code location loads: the assets
    follow the mappings, so a changed mapping set shows after a reload of the code location.
    Mappings kept in the org are read from it with the `M3SYNC_SALESFORCE_*` settings."""
    source = MappingSource.from_env(os.environ)
    return source.objects(lambda: SalesforceClient(settings_from_env()))


@dg.definitions
def defs() -> dg.Definitions:
    partitions = daily_partitions()
    objects = mapped_objects()
    return dg.Definitions(
        assets=[
            *extract_assets(objects, partitions),
            *staged_assets(partitions, objects),
            *load_assets(partitions, objects),
            *([writeback_asset] if writeback_on(os.environ) else []),
        ],
        jobs=[sync_job, full_reconcile_job, refresh_job],
        schedules=[nightly_schedule(), refresh_schedule()],
        sensors=[run_failure_alert],
        resources=resources(),
        executor=dg.in_process_executor,
    )
