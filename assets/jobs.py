"""What an operator runs: the partitioned sync, its nightly schedule, the full reconcile."""

import os

import dagster as dg

from assets.resources import M3terResource, WarehouseResource
from pipeline.load.drift import ReconcileResult, full_reconcile
from pipeline.m3ter.errors import M3terError

SYNC = "sync"
FULL_RECONCILE = "full_reconcile"
NIGHTLY = "nightly"
DEFAULT_NIGHTLY_AT = "02:00"


# Every asset: extract, stage and load one range of daily partitions. The unpartitioned
# reference data (Product2, compound aggregations) is read whole in every run.
sync_job = dg.define_asset_job(
    SYNC,
    selection=dg.AssetSelection.all(),
    description="Extract, stage and load a range of daily partitions into m3ter.",
)


def nightly_at() -> tuple[int, int]:
    """`M3SYNC_NIGHTLY_AT` as (hour, minute) in UTC, default 02:00."""
    raw = os.environ.get("M3SYNC_NIGHTLY_AT", DEFAULT_NIGHTLY_AT)
    hour, _, minute = raw.partition(":")
    if not (hour.isdigit() and minute.isdigit() and int(hour) < 24 and int(minute) < 60):
        raise ValueError(f"M3SYNC_NIGHTLY_AT must be HH:MM (UTC), got {raw!r}")
    return int(hour), int(minute)


def nightly_schedule() -> dg.ScheduleDefinition:
    """Yesterday's partition (the last complete UTC day), every night; off until an operator
    switches it on, so a fresh deployment never writes to m3ter unasked."""
    hour, minute = nightly_at()
    return dg.build_schedule_from_partitioned_job(
        sync_job,
        name=NIGHTLY,
        hour_of_day=hour,
        minute_of_hour=minute,
        description="Sync yesterday's partition into m3ter.",
        default_status=dg.DefaultScheduleStatus.STOPPED,
    )


class ReconcileConfig(dg.Config):
    """`apply`: write the differences to m3ter; otherwise only report them."""

    apply: bool = False


def _report(result: ReconcileResult) -> str:
    lines = [
        "| entity | source | code | cause | fields (m3ter → Salesforce) |",
        "|---|---|---|---|---|",
    ]
    for entity in result.entities:
        for item in entity.listed:
            fields = "; ".join(f"{k}: {b} → {a}" for k, (b, a) in item.changes.items())
            lines.append(
                f"| {item.entity} | {item.source} | {item.code or ''} | {item.cause} | "
                f"{fields.replace('|', '/')} |"
            )
    return "\n".join(lines) if len(lines) > 2 else "(m3ter equals the staged state)"


@dg.op(
    name="reconcile_all",
    description="Diff every staged object against m3ter; report drift; apply when asked.",
    pool="m3ter_api",
)
def reconcile_all(
    context: dg.OpExecutionContext,
    config: ReconcileConfig,
    m3ter: M3terResource,
    warehouse: WarehouseResource,
) -> None:
    try:
        result = full_reconcile(
            m3ter.client(),
            warehouse.warehouse(),
            apply=config.apply,
            concurrency=m3ter.settings().concurrency,
        )
    except M3terError as exc:
        raise dg.Failure(description=str(exc)) from exc
    for entity in result.entities:
        context.log_event(
            dg.AssetObservation(
                asset_key=["m3ter", entity.entity],
                metadata={"applied": result.applied, **entity.causes},
            )
        )
    context.log.info(
        "%s: %d drifted objects, %d pending changes",
        "applied" if result.applied else "reported",
        result.drift,
        result.pending,
    )
    unfinished = [e.load.unfinished() for e in result.entities if e.load is not None]
    if any(unfinished):
        raise dg.Failure(description="; ".join(filter(None, unfinished)))
    context.add_output_metadata(
        {
            "applied": result.applied,
            "drift": result.drift,
            "pending": result.pending,
            "by_entity": dg.MetadataValue.json({e.entity: e.causes for e in result.entities}),
            "objects": dg.MetadataValue.md(_report(result)),
        }
    )


@dg.job(
    name=FULL_RECONCILE,
    description="The whole staged state against m3ter: drift report, repair with apply: true.",
)
def full_reconcile_job() -> None:
    reconcile_all()
