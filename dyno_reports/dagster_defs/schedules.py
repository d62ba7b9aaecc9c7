"""Schedules: after each week / month closes, run the just-closed period for every tenant, in batches.

One job per cadence (the assets of a cadence share one partitions definition).
A tick asks for ceil(N / 100) runs for N tenants: each run covers one period and a
contiguous slice of the tenant partitions (in their registration order, which is
the order Dagster's partition ranges follow), as a partition range. Every
partition still gets its own `report_run` and its own materialisation, and one
tenant's failure does not stop the others (see `io_manager`). Run keys name the
period and the slice's first and last tenant, so a re-evaluated tick never
launches a duplicate, and tenants registered later form new slices.
"""

from collections.abc import Sequence
from typing import TYPE_CHECKING

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

from dyno_reports.dagster_defs.assets import MAX_PARTITIONS_PER_RUN
from dyno_reports.dagster_defs.failures import RANGE_END_TAG, RANGE_START_TAG
from dyno_reports.dagster_defs.partitions import TENANT, period_partitions
from dyno_reports.reports import REGISTRY

if TYPE_CHECKING:  # not exported at dagster's top level
    from dagster._core.definitions.unresolved_asset_job_definition import UnresolvedAssetJobDefinition

CRONS = {"week": "0 2 * * 1", "month": "0 2 1 * *"}  # 02:00 UTC after the period closed
CADENCE_NAMES = {"week": "weekly", "month": "monthly"}
TENANTS_PER_RUN = MAX_PARTITIONS_PER_RUN


def cadence_job(cadence: str) -> "UnresolvedAssetJobDefinition":
    keys = [name for name, report in sorted(REGISTRY.items()) if report.cadence == cadence]
    return define_asset_job(
        f"{CADENCE_NAMES[cadence]}_reports",
        selection=AssetSelection.assets(*keys),
        description=f"Every {CADENCE_NAMES[cadence]} report for a period and one or more tenants.",
    )


def batch_requests(period: str, tenants: Sequence[str], cadence: str) -> list[RunRequest]:
    """One run request per slice of `TENANTS_PER_RUN` tenants (in registration order) for `period`."""
    requests = []
    for first in range(0, len(tenants), TENANTS_PER_RUN):
        batch = tenants[first : first + TENANTS_PER_RUN]
        start, end = f"{period}|{batch[0]}", f"{period}|{batch[-1]}"
        requests.append(
            RunRequest(
                run_key=f"{start}..{batch[-1]}",
                tags={
                    RANGE_START_TAG: start,
                    RANGE_END_TAG: end,
                    "dyno/period": period,
                    "dyno/cadence": cadence,
                    "dyno/tenants": str(len(batch)),
                },
            )
        )
    return requests


def cadence_schedule(cadence: str, start: str, job: "UnresolvedAssetJobDefinition") -> ScheduleDefinition:
    period_def = period_partitions(cadence, start)

    @schedule(
        name=f"{CADENCE_NAMES[cadence]}_reports_schedule",
        job=job,
        cron_schedule=CRONS[cadence],
        execution_timezone="UTC",
        default_status=DefaultScheduleStatus.STOPPED,
        description=f"After each {cadence} closes: the just-closed {cadence} for every tenant, "
        f"{TENANTS_PER_RUN} tenants per run.",
    )
    def _schedule(context: ScheduleEvaluationContext):
        with partition_loading_context(
            effective_dt=context.scheduled_execution_time, dynamic_partitions_store=context.instance
        ):
            period = period_def.get_last_partition_key()
        tenants = context.instance.get_dynamic_partitions(TENANT)  # registration order: what ranges follow
        if period is None or not tenants:
            return SkipReason(
                f"no closed {cadence} yet" if period is None else "no tenant partitions (run sync-tenants)"
            )
        return batch_requests(period, tenants, cadence)

    return _schedule


def jobs_and_schedules(start: str) -> tuple[list["UnresolvedAssetJobDefinition"], list[ScheduleDefinition]]:
    cadences = sorted({report.cadence for report in REGISTRY.values()})
    jobs = {cadence: cadence_job(cadence) for cadence in cadences}
    return list(jobs.values()), [cadence_schedule(c, start, jobs[c]) for c in cadences]
