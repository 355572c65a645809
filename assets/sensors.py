"""A failed run is logged, and posted to a webhook when `M3SYNC_ALERT_WEBHOOK` is set."""

import os

import dagster as dg

from pipeline.alerts import AlertError, FailureSummary, one_line, post_failure

WEBHOOK = "M3SYNC_ALERT_WEBHOOK"
WEBHOOK_CA = "M3SYNC_ALERT_CA_FILE"


def summary_of(run: dg.DagsterRun, message: str | None) -> FailureSummary:
    tags = run.tags
    if "dagster/partition" in tags:
        partitions: tuple[str, ...] = (tags["dagster/partition"],)
    elif "dagster/asset_partition_range_start" in tags:
        start, end = (
            tags["dagster/asset_partition_range_start"],
            tags["dagster/asset_partition_range_end"],
        )
        partitions = (f"{start}...{end}",)
    else:
        partitions = ()
    return FailureSummary(
        run_id=run.run_id,
        job=run.job_name,
        reason=one_line(message or "the run failed"),
        partitions=partitions,
    )


@dg.run_failure_sensor(
    name="run_failure_alert",
    description=f"Logs every failed run and posts it to ${WEBHOOK} when that is set.",
    default_status=dg.DefaultSensorStatus.RUNNING,
    monitor_all_code_locations=False,
)
def run_failure_alert(context: dg.RunFailureSensorContext) -> None:
    summary = summary_of(context.dagster_run, context.failure_event.message)
    context.log.error(summary.text())
    url = os.environ.get(WEBHOOK)
    if not url:
        return
    try:
        post_failure(url, summary, ca_file=os.environ.get(WEBHOOK_CA))
    except AlertError as exc:
        # The alert is lost, not the sensor: the failure is in the log above.
        context.log.error(str(exc))
