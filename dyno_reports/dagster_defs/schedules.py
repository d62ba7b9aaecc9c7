"""Schedules: after each week / month closes, run the just-closed period for every tenant.

One job per cadence (the assets of a cadence share one partitions definition).
Run keys are the partition keys, so a re-evaluated tick never launches a duplicate.
"""

from dagster import (
    AssetSelection,
    DefaultScheduleStatus,
    RunRequest,
    ScheduleDefinition,
    ScheduleEvaluationContext,
    SkipReason,
    define_asset_job,
    partition_loading_context,
    schedule,
)

from dyno_reports.dagster_defs.partitions import TENANT, period_partitions
from dyno_reports.reports import REGISTRY

CRONS = {"week": "0 2 * * 1", "month": "0 2 1 * *"}  # 02:00 UTC after the period closed
CADENCE_NAMES = {"week": "weekly", "month": "monthly"}


def cadence_job(cadence: str):
    keys = [name for name, report in sorted(REGISTRY.items()) if report.cadence == cadence]
    return define_asset_job(
        f"{CADENCE_NAMES[cadence]}_reports",
        selection=AssetSelection.assets(*keys),
        description=f"Every {CADENCE_NAMES[cadence]} report for one tenant and period.",
    )


def cadence_schedule(cadence: str, start: str, job) -> ScheduleDefinition:
    period_def = period_partitions(cadence, start)

    @schedule(
        name=f"{CADENCE_NAMES[cadence]}_reports_schedule",
        job=job,
        cron_schedule=CRONS[cadence],
        execution_timezone="UTC",
        default_status=DefaultScheduleStatus.STOPPED,
        description=f"After each {cadence} closes: the just-closed {cadence} for every tenant.",
    )
    def _schedule(context: ScheduleEvaluationContext):
        with partition_loading_context(effective_dt=context.scheduled_execution_time, dynamic_partitions_store=context.instance):
            period = period_def.get_last_partition_key()
        tenants = sorted(context.instance.get_dynamic_partitions(TENANT))
        if period is None or not tenants:
            return SkipReason(f"no closed {cadence} yet" if period is None else "no tenant partitions (run sync-tenants)")
        return [
            RunRequest(
                run_key=f"{period}|{tenant}",
                partition_key=f"{period}|{tenant}",
                tags={"dyno/tenant": tenant, "dyno/period": period, "dyno/cadence": cadence},
            )
            for tenant in tenants
        ]

    return _schedule


def jobs_and_schedules(start: str) -> tuple[list, list]:
    cadences = sorted({report.cadence for report in REGISTRY.values()})
    jobs = {cadence: cadence_job(cadence) for cadence in cadences}
    return list(jobs.values()), [cadence_schedule(c, start, jobs[c]) for c in cadences]

