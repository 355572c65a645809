"""Load assets: one per m3ter entity, in the `m3ter` group, after the staged asset's checks."""

import time
from collections.abc import Sequence

import dagster as dg

from assets.partitions import backfill_policy
from assets.resources import M3terResource, WarehouseResource
from pipeline.extract.objects import SourceObjects
from pipeline.load.coverage import Coverage, coverage, template_products
from pipeline.load.progress import writes_message
from pipeline.load.run import LoadResult, load
from pipeline.m3ter.errors import M3terError
from pipeline.mapping.spec import Entity

PROGRESS_SECONDS = 2.0
COVERAGE_CHECK = "coverage"
# The load after which every object a line needs to bill is in m3ter: it measures coverage.
MEASURES_COVERAGE: Entity = "account_plans"

# Which loaded entities each entity's references point at: those load first.
AFTER: dict[Entity, tuple[Entity, ...]] = {
    "compound_aggregations": (),
    "accounts": (),
    "contracts": ("accounts",),
    "plans": ("accounts",),
    "pricings": ("plans", "compound_aggregations"),
    "plan_groups": ("accounts",),
    "plan_group_links": ("plan_groups", "plans"),
    "account_plans": (
        "accounts",
        "plans",
        "pricings",
        "plan_groups",
        "plan_group_links",
        "contracts",
    ),
    "commitments": ("accounts", "contracts"),
}


class LoadConfig(dg.Config):
    """`dry_run`: compute the plan (actions and changed fields) without writing to m3ter."""

    dry_run: bool = False


# Changes listed in a materialization's plan table. A range run repeats its metadata on every
# partition's materialization, so the table stays short; `m3sync plan` lists every change.
MAX_LISTED_CHANGES = 20


def _table(rows: Sequence[dict[str, object]]) -> str:
    if not rows:
        return "(nothing to write)"
    lines = ["| action | source | code | changes (before → after) |", "|---|---|---|---|"]
    for row in rows[:MAX_LISTED_CHANGES]:
        changes = row["changes"]
        assert isinstance(changes, dict)
        shown = "; ".join(f"{k}: {b} → {a}" for k, (b, a) in changes.items())
        lines.append(
            f"| {row['action']} | {row['source']} | {row['code'] or ''} | "
            f"{shown.replace('|', '/')} |"
        )
    if len(rows) > MAX_LISTED_CHANGES:
        lines.append(f"\n... and {len(rows) - MAX_LISTED_CHANGES:,} more (`m3sync plan` lists all)")
    return "\n".join(lines)


def metadata(result: LoadResult) -> dict[str, object]:
    rejects = "\n".join(f"- {source}: {message}" for source, message in result.rejects[:50])
    return {
        "dry_run": result.dry_run,
        "actions": dg.MetadataValue.json(result.actions),
        "outcomes": dg.MetadataValue.json(result.outcomes),
        "api_calls": result.api_calls,
        "write_calls": result.writes,
        "rejects": len(result.rejects),
        "reject_messages": dg.MetadataValue.md(rejects or "(none)"),
        "plan": dg.MetadataValue.md(_table(result.changed)),
        "run_id": result.run_id,
        "duration_seconds": round(result.seconds, 3),
    }


def coverage_metadata(found: Coverage) -> dict[str, object]:
    months = "\n".join(
        ["| month | lines | billable | coverage |", "|---|---|---|---|"]
        + [
            f"| {month} | {lines:,} | {good:,} | {good / lines:.1%} |"
            for month, lines, good in found.by_month
            if lines
        ]
    )
    return {
        "coverage": round(found.share, 6),
        "lines": found.lines,
        "billable_lines": found.billable,
        "unbilled_lines": found.lines - found.billable,
        "coverage_findings": dg.MetadataValue.json([str(f) for f in found.findings]),
        "coverage_by_month": dg.MetadataValue.md(months),
    }


def coverage_check(found: Coverage, floor: float) -> dg.AssetCheckResult:
    return dg.AssetCheckResult(
        check_name=COVERAGE_CHECK,
        passed=found.share >= floor,
        severity=dg.AssetCheckSeverity.ERROR,
        metadata={"coverage": round(found.share, 6), "min_coverage": floor},
        description=(
            f"{found.billable:,} of {found.lines:,} priced lines bill in m3ter "
            f"({found.share:.1%}); the others: "
            + ("; ".join(str(f) for f in found.findings[:3]) or "none")
        ),
    )


def load_asset(
    entity: Entity, partitions_def: dg.PartitionsDefinition, objects: SourceObjects
) -> dg.AssetsDefinition:
    partitioned = objects.partitioned(entity)
    key = dg.AssetKey(["m3ter", entity])
    checks = (
        [
            dg.AssetCheckSpec(
                COVERAGE_CHECK,
                asset=key,
                description="Every priced Salesforce line bills in m3ter, or its reason is "
                "known; fails below M3SYNC_MIN_COVERAGE.",
            )
        ]
        if entity == MEASURES_COVERAGE
        else []
    )

    @dg.asset(
        key=key,
        group_name="m3ter",
        check_specs=checks,
        description=f"m3ter {entity.replace('_', ' ')} reconciled with staged.{entity}.",
        deps=[
            dg.AssetKey(["staged", entity]),
            *(dg.AssetKey(["m3ter", other]) for other in AFTER[entity]),
        ],
        partitions_def=partitions_def if partitioned else None,
        backfill_policy=backfill_policy() if partitioned else None,
        kinds={"m3ter"},
        pool="m3ter_api",
    )
    def _load(
        context: dg.AssetExecutionContext,
        config: LoadConfig,
        m3ter: M3terResource,
        warehouse: WarehouseResource,
    ) -> dg.MaterializeResult:
        partitions = context.partition_keys if partitioned else None
        settings = m3ter.settings()
        said = [0.0]

        def progress(done: int, total: int) -> None:
            # A line every few seconds: the CLI's progress bar and the UI's run log show it.
            if done == total or time.monotonic() - said[0] >= PROGRESS_SECONDS:
                said[0] = time.monotonic()
                context.log.info(writes_message(done, total))

        try:
            result = load(
                m3ter.client(),
                warehouse.warehouse(),
                entity,
                partitions,
                dry_run=config.dry_run,
                concurrency=settings.concurrency,
                current=m3ter.current(config.dry_run),
                progress=progress,
            )
        except M3terError as exc:
            raise dg.Failure(description=str(exc)) from exc
        unfinished = result.unfinished()
        if unfinished:
            raise dg.Failure(description=unfinished, metadata=metadata(result))
        if not checks:
            return dg.MaterializeResult(metadata=metadata(result))
        if config.dry_run:
            skipped = dg.AssetCheckResult(
                check_name=COVERAGE_CHECK, passed=True, description="dry run: nothing measured"
            )
            return dg.MaterializeResult(metadata=metadata(result), check_results=[skipped])
        found = coverage(warehouse.warehouse(), template_products(m3ter.current(False)))
        return dg.MaterializeResult(
            metadata={**metadata(result), **coverage_metadata(found)},
            check_results=[coverage_check(found, m3ter.min_coverage)],
        )

    return _load


def load_assets(
    partitions_def: dg.PartitionsDefinition, objects: SourceObjects
) -> list[dg.AssetsDefinition]:
    return [load_asset(entity, partitions_def, objects) for entity in AFTER]
