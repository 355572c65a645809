"""Staged assets: one per m3ter entity, in the `staged` group, each with a blocking reject check."""

from collections.abc import Sequence

import dagster as dg

from assets.extract import PERMANENT
from assets.partitions import backfill_policy
from assets.resources import (
    MappingsResource,
    SalesforceResource,
    StageResource,
    WarehouseResource,
)
from pipeline.extract.objects import SourceObjects
from pipeline.mapping.spec import ENTITIES, Entity
from pipeline.staging.stage import StageError, StageResult, stage

REJECT_CHECK = "reject_share"


def _markdown(rows: Sequence[dict[str, object]]) -> str:
    if not rows:
        return "(no rows)"
    names = list(rows[0])
    lines = ["| " + " | ".join(names) + " |", "|" + "---|" * len(names)]
    for row in rows:
        cells = ("" if row[n] is None else str(row[n]).replace("|", "\\|") for n in names)
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def metadata(result: StageResult) -> dict[str, object]:
    return {
        "dagster/row_count": result.rows - result.tombstones,
        "table": result.table,
        "partitions": len(result.rows_by_partition),
        "tombstones": result.tombstones,
        "rejects": result.rejects,
        "rejects_by_check": dg.MetadataValue.json(result.rejects_by_check),
        "reject_share": round(result.reject_share, 6),
        "segment_wildcards": result.segment_wildcards,
        "rows_with_segment_wildcards": result.rows_with_wildcards,
        "preview": dg.MetadataValue.md(_markdown(result.preview)),
        "profile_seconds": dg.MetadataValue.json(result.profile),
        "duration_seconds": round(result.seconds, 3),
    }


def reject_check(result: StageResult, max_share: float, allowance: int) -> dg.AssetCheckResult:
    return dg.AssetCheckResult(
        check_name=REJECT_CHECK,
        passed=result.reject_share <= max_share or result.rejected_rows <= allowance,
        severity=dg.AssetCheckSeverity.ERROR,
        metadata={
            "reject_share": round(result.reject_share, 6),
            "max_reject_share": max_share,
            "reject_allowance": allowance,
            "rejects_by_check": dg.MetadataValue.json(result.rejects_by_check),
        },
        description=(
            f"{result.rejected_rows} rejected rows ({result.reject_share:.2%}); "
            f"the load stops above {max_share:.2%} and {allowance} rows"
        ),
    )


def staged_asset(
    entity: Entity, partitions_def: dg.PartitionsDefinition, objects: SourceObjects
) -> dg.AssetsDefinition:
    """The staged table of `entity`, after the raw tables its active mappings read."""
    sources = objects.by_entity[entity]
    partitioned = objects.partitioned(entity)
    key = dg.AssetKey(["staged", entity])

    @dg.asset(
        key=key,
        group_name="staged",
        description=(
            f"Desired m3ter {entity.replace('_', ' ')}, mapped from Salesforce and validated; "
            "rejected rows are in staged.rejects."
        ),
        deps=[dg.AssetKey(["raw", source.table]) for source in sources],
        partitions_def=partitions_def if partitioned else None,
        backfill_policy=backfill_policy() if partitioned else None,
        kinds={"duckdb", "pandera"},
        check_specs=[
            dg.AssetCheckSpec(
                REJECT_CHECK,
                asset=key,
                blocking=True,
                description="The share of rejected rows stays under the configured maximum.",
            )
        ],
    )
    def _stage(
        context: dg.AssetExecutionContext,
        salesforce: SalesforceResource,
        warehouse: WarehouseResource,
        mappings: MappingsResource,
        stage_settings: StageResource,
    ) -> dg.MaterializeResult:
        partitions = context.partition_keys if partitioned else None
        try:
            compiled = mappings.compiled(salesforce.client())
            result = stage(
                warehouse.warehouse(), compiled[entity], partitions, stage_settings.settings()
            )
        except (*PERMANENT, StageError) as exc:
            raise dg.Failure(description=str(exc), allow_retries=False) from exc
        return dg.MaterializeResult(
            metadata=metadata(result),
            check_results=[
                reject_check(
                    result, stage_settings.max_reject_share, stage_settings.reject_allowance
                )
            ],
        )

    return _stage


def staged_assets(
    partitions_def: dg.PartitionsDefinition, objects: SourceObjects
) -> list[dg.AssetsDefinition]:
    return [staged_asset(entity, partitions_def, objects) for entity in ENTITIES]
