"""What an operator runs: the partitioned sync, its nightly schedule, the full reconcile."""

import os
from dataclasses import asdict

import dagster as dg

from assets.extract import PERMANENT
from assets.resources import (
    ExtractResource,
    M3terResource,
    MappingsResource,
    SalesforceResource,
    StageResource,
    WarehouseResource,
)
from pipeline.extract.live import compare_all_live_ids
from pipeline.load.drift import ReconcileResult, full_reconcile
from pipeline.m3ter.errors import M3terError
from pipeline.refresh import RefreshResult, refresh

SYNC = "sync"
FULL_RECONCILE = "full_reconcile"
NIGHTLY = "nightly"
DEFAULT_NIGHTLY_AT = "02:00"
REFRESH = "refresh"
WEEKLY_REFRESH = "weekly_refresh"
DEFAULT_REFRESH_CRON = "0 3 * * 0"  # Sundays 03:00 UTC


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
    description="Salesforce's live records against the warehouse, and every staged object "
    "against m3ter; report drift; apply when asked.",
    pool="m3ter_api",
)
def reconcile_all(
    context: dg.OpExecutionContext,
    config: ReconcileConfig,
    salesforce: SalesforceResource,
    mappings: MappingsResource,
    m3ter: M3terResource,
    warehouse: WarehouseResource,
    extract_settings: ExtractResource,
    stage_settings: StageResource,
) -> None:
    try:
        client = salesforce.client()
        compiled = mappings.compiled(client)
        stored = warehouse.warehouse()
        live = compare_all_live_ids(
            client, stored, list(compiled.objects.objects), extract_settings.settings()
        )
        if config.apply and any(found.gone or found.missed for found in live):
            # The refresh turns records Salesforce no longer has into tombstones, stages those
            # a window missed on a day the warehouse holds, and loads both.
            refresh(
                client,
                m3ter.client(),
                stored,
                compiled,
                extract_settings.settings(),
                stage_settings.settings(),
                concurrency=m3ter.settings().concurrency,
            )
        result = full_reconcile(
            m3ter.client(),
            stored,
            apply=config.apply,
            concurrency=m3ter.settings().concurrency,
        )
    except (*PERMANENT, M3terError) as exc:
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
            "salesforce": dg.MetadataValue.json({found.sobject: asdict(found) for found in live}),
        }
    )


@dg.job(
    name=FULL_RECONCILE,
    description="The whole staged state against m3ter: drift report, repair with apply: true.",
)
def full_reconcile_job() -> None:
    reconcile_all()


class RefreshConfig(dg.Config):
    """`dry_run`: plan the m3ter writes without making them."""

    dry_run: bool = False


def _refresh_metadata(result: RefreshResult) -> dict[str, object]:
    by_object = {o.sobject: asdict(o) for o in result.objects}
    return {
        "found": result.found,
        "api_calls": sum(o.api_calls for o in result.objects),
        "bulk_jobs": sum(o.bulk_jobs for o in result.objects),
        "rows_read": sum(o.live for o in result.objects),
        "by_object": dg.MetadataValue.json(by_object),
        "m3ter_writes": sum(r.writes for r in result.loaded),
        "outcomes": dg.MetadataValue.json({r.entity: r.outcomes for r in result.loaded}),
    }


@dg.op(
    name="refresh_all",
    description="Read every mapped record again; stage and load what changed without a stamp.",
    pool="m3ter_api",
)
def refresh_all(
    context: dg.OpExecutionContext,
    config: RefreshConfig,
    salesforce: SalesforceResource,
    mappings: MappingsResource,
    warehouse: WarehouseResource,
    extract_settings: ExtractResource,
    stage_settings: StageResource,
    m3ter: M3terResource,
) -> None:
    try:
        client = salesforce.client()
        result = refresh(
            client,
            m3ter.client(),
            warehouse.warehouse(),
            mappings.compiled(client),
            extract_settings.settings(),
            stage_settings.settings(),
            dry_run=config.dry_run,
            concurrency=m3ter.settings().concurrency,
        )
    except (*PERMANENT, M3terError) as exc:
        raise dg.Failure(description=str(exc)) from exc
    for found in result.objects:
        context.log.info(
            "%s: %d live, %d changed, %d gone, %d missed, %d never extracted",
            found.sobject,
            found.live,
            found.changed,
            found.gone,
            found.missed,
            found.unknown,
        )
    unfinished = [r.unfinished() for r in result.loaded]
    if any(unfinished):
        raise dg.Failure(description="; ".join(filter(None, unfinished)))
    context.add_output_metadata(_refresh_metadata(result))


@dg.job(
    name=REFRESH,
    description="What daily windows cannot see (formula values, purged deletes), into m3ter.",
)
def refresh_job() -> None:
    refresh_all()


def refresh_schedule() -> dg.ScheduleDefinition:
    """Weekly (`M3SYNC_REFRESH_CRON`, default Sundays 03:00 UTC); off until an operator
    switches it on, like the nightly."""
    return dg.ScheduleDefinition(
        name=WEEKLY_REFRESH,
        job=refresh_job,
        cron_schedule=os.environ.get("M3SYNC_REFRESH_CRON", DEFAULT_REFRESH_CRON),
        execution_timezone="UTC",
        description="Refresh every mapped record: formula values and purged deletes.",
        default_status=dg.DefaultScheduleStatus.STOPPED,
    )
