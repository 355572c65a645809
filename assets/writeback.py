"""The write-back asset: each changed sync outcome onto its Salesforce record, after the load.

It exists when runs write back (`M3SYNC_WRITEBACK=1`); its failures never fail the run's load,
which has landed: they are journaled per record and tried again by the next run.
"""

import datetime as dt

import dagster as dg

from assets.load import AFTER
from assets.resources import (
    ExtractResource,
    MappingsResource,
    SalesforceResource,
    WarehouseResource,
)
from pipeline.salesforce.errors import SalesforceAuthError
from pipeline.writeback.run import (
    WritebackResult,
    WritebackSettings,
    run_writes_back,
    write_back,
)


def metadata(result: WritebackResult) -> dict[str, object]:
    rows = [
        f"| {o.sobject} | {o.changed:,} | {o.written:,} | {o.failed:,} | {o.deferred:,} | "
        f"{o.method} | {', '.join(f'{k} {v:,}' for k, v in sorted(o.errors.items()))} |"
        for o in result.objects
    ]
    table = "\n".join(
        [
            "| object | changed | written | failed | deferred | through | errors |",
            "|---|---|---|---|---|---|---|",
            *rows,
        ]
    )
    return {
        "written": result.written,
        "failed": result.failed,
        "statuses": dict(sorted(result.statuses.items())),
        "api_calls": result.api_calls,
        "bulk_jobs": result.bulk_jobs,
        "objects": dg.MetadataValue.md(table),
    }


@dg.asset(
    key=dg.AssetKey(["salesforce", "writeback"]),
    group_name="salesforce",
    description="Each Salesforce record's m3ter sync status, written back where the "
    "mappings say (mappings/writeback.yaml); journaled in load.writeback.",
    deps=[dg.AssetKey(["m3ter", entity]) for entity in AFTER],
    kinds={"salesforce"},
    pool="salesforce_api",
)
def writeback_asset(
    context: dg.AssetExecutionContext,
    salesforce: SalesforceResource,
    warehouse: WarehouseResource,
    extract_settings: ExtractResource,
    mappings: MappingsResource,
) -> dg.MaterializeResult:
    tags = context.run.tags
    last = tags.get("dagster/asset_partition_range_end") or tags.get("dagster/partition")
    if not run_writes_back(last, dt.datetime.now(dt.UTC).date()):
        context.log.info(f"the run ends at {last}: the run that reaches yesterday writes back")
        return dg.MaterializeResult(metadata={"written": 0, "failed": 0, "skipped": True})
    try:
        client = salesforce.client()
        compiled = mappings.compiled(client)
    except SalesforceAuthError as exc:
        raise dg.Failure(description=str(exc), allow_retries=False) from exc
    extract = extract_settings.settings()
    result = write_back(
        client,
        warehouse.warehouse(),
        compiled,
        WritebackSettings(quota_floor=extract.quota_floor, overlap=extract.overlap),
    )
    if result.failed:
        context.log.warning(
            f"{result.failed:,} sync statuses could not be written back; the next run tries "
            "them again (load.writeback has each reason)"
        )
    return dg.MaterializeResult(metadata=metadata(result))
