"""Extract assets: one per Salesforce object, raw tables in the `salesforce` group."""

from collections.abc import Sequence

import dagster as dg

from assets.partitions import backfill_policy
from assets.resources import (
    ExtractResource,
    MappingsResource,
    SalesforceResource,
    WarehouseResource,
)
from pipeline.extract.errors import ExtractError
from pipeline.extract.objects import SourceObject
from pipeline.extract.run import ExtractResult, extract, plan_all
from pipeline.mapping.errors import MappingError
from pipeline.salesforce.errors import (
    QuotaFloorReached,
    SalesforceAuthError,
    SalesforceRequestError,
)
from pipeline.writeback.journal import writeback_began

PERMANENT = (
    ExtractError,
    MappingError,
    SalesforceAuthError,
    SalesforceRequestError,
    QuotaFloorReached,
)

# Transient failures are retried inside the pipeline's client; a step retry covers a run whose
# client gave up (a long outage), with back-off. Failures no retry can fix skip it.
STEP_RETRY = dg.RetryPolicy(
    max_retries=2, delay=30, backoff=dg.Backoff.EXPONENTIAL, jitter=dg.Jitter.PLUS_MINUS
)


# A range run repeats its metadata on every partition's materialization: per-partition row counts
# are listed for short ranges only.
MAX_LISTED_PARTITIONS = 31


def metadata(result: ExtractResult) -> dict[str, object]:
    by_partition = result.rows_by_partition
    listed = (
        {"rows_by_partition": dg.MetadataValue.json(by_partition)}
        if len(by_partition) <= MAX_LISTED_PARTITIONS
        else {}
    )
    return {
        "dagster/row_count": result.rows,
        "table": result.table,
        "partitions": len(by_partition),
        "partitions_with_rows": sum(1 for rows in by_partition.values() if rows),
        **listed,
        "deleted_rows": result.deleted,
        "method": result.method,
        "api_calls": result.api_calls,
        "bulk_jobs": result.bulk_jobs,
        "queries": result.queries,
        "bytes": result.bytes,
        "duration_seconds": round(result.seconds, 3),
        "dagster/column_schema": dg.TableSchema(
            columns=[dg.TableColumn(name) for name in result.columns]
        ),
    }


def extract_asset(
    source: SourceObject,
    partitions_def: dg.PartitionsDefinition | None,
    checked: Sequence[SourceObject] = (),
) -> dg.AssetsDefinition:
    """The raw table of `source`, with the fields the mappings read; before it starts a job,
    the mappings are compiled and the field plans of `source` and of every object in `checked`
    are resolved against describe, so that a run of several extracts fails on any object's
    missing field before the first query."""
    partitioned = source.partitioned and partitions_def is not None
    sources = [source, *(s for s in checked if s.name != source.name)]

    @dg.asset(
        key=["raw", source.table],
        group_name="salesforce",
        description=f"Salesforce {source.name} records, latest version per Id.",
        partitions_def=partitions_def if partitioned else None,
        backfill_policy=backfill_policy() if partitioned else None,
        kinds={"salesforce", "duckdb"},
        pool="salesforce_api",
        retry_policy=STEP_RETRY,
    )
    def _extract(
        context: dg.AssetExecutionContext,
        salesforce: SalesforceResource,
        warehouse: WarehouseResource,
        extract_settings: ExtractResource,
        mappings: MappingsResource,
    ) -> dg.MaterializeResult:
        partitions = context.partition_keys if partitioned else None
        try:
            client = salesforce.client()  # a refused login is permanent: no step retry
            compiled = mappings.compiled(client)
            written = {row.object for row in compiled.writeback}
            store = warehouse.warehouse()
            plans = plan_all(client, sources, compiled.fields, written, writeback_began(store))
            result = extract(
                client,
                store,
                source,
                partitions,
                extract_settings.settings(),
                plan=plans[source.name],
            )
        except PERMANENT as exc:
            raise dg.Failure(description=str(exc), allow_retries=False) from exc
        return dg.MaterializeResult(metadata=metadata(result))

    return _extract


def extract_assets(
    sources: Sequence[SourceObject], partitions_def: dg.PartitionsDefinition
) -> list[dg.AssetsDefinition]:
    return [extract_asset(source, partitions_def, checked=sources) for source in sources]
