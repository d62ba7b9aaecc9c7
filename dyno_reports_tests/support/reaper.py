"""What run monitoring and the failure reaper do for a Dagster run whose worker died (test helper, no DB of its own)."""

from dagster import DagsterEventType, DagsterInstance, DagsterRun, build_run_status_sensor_context

from dyno_reports.dagster_defs.failures import report_run_failure_reaper
from dyno_reports.dagster_defs.resources import ReportDatabase


def fail_and_reap(instance: DagsterInstance, run: DagsterRun, database_url: str) -> None:
    """Mark `run` failed as run monitoring would, then evaluate the reaper on it twice (it is idempotent)."""
    instance.report_run_failed(run)
    event = instance.all_logs(run.run_id, of_type=DagsterEventType.RUN_FAILURE)[0].dagster_event
    context = build_run_status_sensor_context(
        sensor_name="report_run_failure_reaper",
        dagster_event=event,
        dagster_instance=instance,
        dagster_run=instance.get_run_by_id(run.run_id),
        resources={"dyno_db": ReportDatabase(database_url=database_url)},
    ).for_run_failure()
    report_run_failure_reaper(context)
    report_run_failure_reaper(context)
