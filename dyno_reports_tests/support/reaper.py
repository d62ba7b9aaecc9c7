"""What run monitoring and the reconciliation sweep do for a Dagster run whose worker died (test helper, no DB)."""

from dagster import DagsterInstance, DagsterRun, SkipReason, build_sensor_context

from dyno_reports.dagster_defs.resources import ReportDatabase
from dyno_reports.dagster_defs.sweep import report_run_reconciliation_sweep


def sweep_once(instance: DagsterInstance, database_url: str) -> str:
    """One evaluation of the reconciliation sweep, as the daemon's tick would run it; returns its message."""
    context = build_sensor_context(
        instance=instance,
        sensor_name="report_run_reconciliation_sweep",
        resources={"dyno_db": ReportDatabase(database_url=database_url)},
    )
    result = report_run_reconciliation_sweep(context)
    assert isinstance(result, SkipReason) and result.skip_message
    return result.skip_message


def fail_and_reap(instance: DagsterInstance, run: DagsterRun, database_url: str) -> None:
    """Mark `run` failed as run monitoring would, then evaluate the sweep twice (it is idempotent)."""
    instance.report_run_failed(run)
    sweep_once(instance, database_url)
    sweep_once(instance, database_url)
