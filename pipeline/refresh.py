"""The refresh: what daily windows cannot see, found and billed (formula values, purged deletes,
records that became visible on days already extracted).

Each daily-partitioned object the mappings read is read again whole (`extract/refresh.py`); what
differs lands in its `_refresh` raw partition, which is then staged and loaded like a day: every
entity with a partitioned source is staged for `_refresh`, and every staged entity is loaded for
it in dependency order, so a formula value that changed updates its m3ter object and a purged
record's objects are end-dated. A refresh that finds nothing writes nothing to m3ter.
"""

from __future__ import annotations

from dataclasses import dataclass

from pipeline.extract.refresh import REFRESH, ObjectRefresh, refresh_object
from pipeline.extract.run import ExtractSettings, plan_all
from pipeline.load.client import Client
from pipeline.load.current import Current
from pipeline.load.entities import ORDER
from pipeline.load.run import LoadResult, load
from pipeline.mapping.compiler import CompiledSet
from pipeline.salesforce.client import SalesforceClient
from pipeline.staging.stage import StageResult, StageSettings, stage
from pipeline.warehouse import Warehouse


@dataclass(frozen=True)
class RefreshResult:
    objects: list[ObjectRefresh]
    staged: list[StageResult]
    loaded: list[LoadResult]

    @property
    def found(self) -> int:
        """Records whose values changed, that are gone, or that windows missed, across every
        object."""
        return sum(o.changed + o.gone + o.missed for o in self.objects)


def refresh(
    salesforce: SalesforceClient,
    m3ter: Client,
    warehouse: Warehouse,
    compiled: CompiledSet,
    extract_settings: ExtractSettings,
    stage_settings: StageSettings,
    *,
    dry_run: bool = False,
    concurrency: int = 4,
) -> RefreshResult:
    """Refresh every daily-partitioned object, then stage and load what differs."""
    partitioned = [o for o in compiled.objects.objects if o.partitioned]
    names = {o.name for o in partitioned}
    plans = plan_all(salesforce, partitioned, compiled.fields)
    objects = [
        refresh_object(salesforce, warehouse, o, extract_settings, plans[o.name])
        for o in partitioned
    ]
    entities = [e for e in ORDER if any(s in names for s in compiled[e].sources)]
    staged = [stage(warehouse, compiled[e], [REFRESH], stage_settings) for e in entities]
    current = Current(m3ter)
    loaded = [
        load(
            m3ter,
            warehouse,
            e,
            [REFRESH],
            dry_run=dry_run,
            concurrency=concurrency,
            current=current,
        )
        for e in entities
    ]
    return RefreshResult(objects, staged, loaded)
