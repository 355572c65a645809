"""The batched SQLite event log stores a range step's materializations as Dagster's own stores
them one by one: same partitions, metadata, data versions and latest record."""

from pathlib import Path

import dagster as dg
import pytest

from assets.storage import BatchedSqliteEventLogStorage
from pipeline.cli.home import INSTANCE_CONFIG

DAYS = dg.DailyPartitionsDefinition(start_date="2024-01-01", end_date="2024-02-15")


@dg.asset(partitions_def=DAYS, backfill_policy=dg.BackfillPolicy.single_run())
def daily(context: dg.AssetExecutionContext) -> dg.MaterializeResult:
    return dg.MaterializeResult(
        metadata={"rows": len(context.partition_keys)}, data_version=dg.DataVersion("v1")
    )


def _range_run(home: Path, config: str) -> dg.DagsterInstance:
    (home / "dagster.yaml").write_text(config)
    instance = dg.DagsterInstance.from_config(str(home))
    keys = DAYS.get_partition_keys()
    job = dg.Definitions(assets=[daily], jobs=[dg.define_asset_job("daily_job")]).resolve_job_def(
        "daily_job"
    )
    result = job.execute_in_process(
        instance=instance,
        tags={
            "dagster/asset_partition_range_start": keys[0],
            "dagster/asset_partition_range_end": keys[-1],
        },
    )
    assert result.success
    return instance


def _stored(instance: dg.DagsterInstance) -> dict[str, object]:
    key = dg.AssetKey("daily")
    records = instance.fetch_materializations(key, limit=1000).records
    latest = instance.get_latest_materialization_event(key)
    assert latest is not None and latest.asset_materialization is not None
    return {
        "partitions": instance.get_materialized_partitions(key),
        "events": sorted(
            (r.partition_key, r.asset_materialization.metadata["rows"].value)  # type: ignore[union-attr]
            for r in records
        ),
        "latest": latest.asset_materialization.partition,
        "versions": {
            p: instance.get_latest_data_version_record(key, False, p).asset_materialization.tags[  # type: ignore[union-attr]
                "dagster/data_version"
            ]
            for p in ("2024-01-01", "2024-02-14")
        },
    }


def test_a_range_steps_materializations_are_stored_as_one_by_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DAGSTER_EVENT_BATCH_SIZE", "1000")
    monkeypatch.setenv("DAGSTER_EMIT_PARTITION_SUBSET_IN_PLANNED_EVENTS", "true")
    (tmp_path / "plain").mkdir()
    (tmp_path / "batched").mkdir()
    plain = _range_run(tmp_path / "plain", "telemetry:\n  enabled: false\n")
    runs = tmp_path / "batched" / "history" / "runs"
    batched = _range_run(tmp_path / "batched", INSTANCE_CONFIG.format(runs=f'"{runs}"'))
    assert isinstance(batched.event_log_storage, BatchedSqliteEventLogStorage)
    assert _stored(batched) == _stored(plain)
    assert len(_stored(batched)["events"]) == 45  # type: ignore[arg-type]
