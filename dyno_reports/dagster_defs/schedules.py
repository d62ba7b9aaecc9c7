"""Schedules: every hour, each tenant's period that closed in its own zone during the hour before, in batches.

One job and one schedule per cadence (`weekly_reports`, `monthly_reports`,
`quarterly_reports`: the assets of a cadence share one partitions definition).
Every hour on the hour (UTC), the tick at T reads the calendars of the registered
tenants (one query) and asks, per slot, for the tenants whose period of that slot
is due: closed in (T - M - 1 h, T - M] in their time zone, M being the CRM's
longest write transaction (`config.crm_max_write`, 10 minutes), so that its run
is final (docs/definitions.md, "As known at"). Over consecutive ticks each
(tenant, slot) is asked exactly once, within an hour and M of its local close
(zones at :30 and :45 too), never before M has passed since it closed. Tenants with different fiscal years close
different quarter labels at the same instant: each label is a slot of its own.

Batches: a Dagster run targets one partition key or one contiguous range, and a
range over slot x tenant is the tenants between its two ends in registration
order. So, per slot, a tick asks for the maximal runs of consecutive registered
tenants that are all due, each cut every 100 tenants (a partition range; run key
`<slot>|<first tenant>..<last tenant>`, so a re-evaluated tick launches nothing
twice). The tenant sensor and `sync-tenants` register new tenants in the order of
the instant their month, then their week, closes, then by fiscal year
(`tenants.py`), so one zone's tenants, and within it one week start's, are
contiguous: a zone's close is a few runs, never one per tenant. Tenants
registered before that order existed keep their places: their ticks take more
runs, each still a correct range. A tenant missing from crm.tenant is read in the
default calendar (its run refuses it, as before). A missed tick (the daemon
down) is not caught up: backfill its slot.
"""

from collections import defaultdict
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

from dagster import (
    AssetSelection,
    DefaultScheduleStatus,
    RunRequest,
    ScheduleDefinition,
    ScheduleEvaluationContext,
    SkipReason,
    define_asset_job,
    schedule,
)

from dyno_reports.core import config
from dyno_reports.core.tenant_calendar import TenantCalendar
from dyno_reports.dagster_defs.assets import MAX_PARTITIONS_PER_RUN
from dyno_reports.dagster_defs.cadences import CADENCE_NAMES, assets_of_cadence
from dyno_reports.dagster_defs.partitions import TENANT
from dyno_reports.dagster_defs.resources import ReportDatabase
from dyno_reports.dagster_defs.run_partitions import RANGE_END_TAG, RANGE_START_TAG
from dyno_reports.dagster_defs.slots import DEFAULT_CALENDAR, calendars_of, slot_key

if TYPE_CHECKING:  # not exported at dagster's top level
    from dyno_reports.dagster_defs.dagster_private import UnresolvedAssetJobDefinition

HOURLY = "0 * * * *"
TICK_INTERVAL = timedelta(hours=1)
TENANTS_PER_RUN = MAX_PARTITIONS_PER_RUN
# Run monitoring fails a run that runs longer than this many seconds (docs/reliability.md).
MAX_RUNTIME_TAG = "dagster/max_runtime"


def report_run_tags() -> dict[str, str]:
    """Tags of every report run: its longest runtime (`config.report_max_runtime`, read now)."""
    return {MAX_RUNTIME_TAG: str(config.report_max_runtime())}


def cadence_job(cadence: str) -> "UnresolvedAssetJobDefinition":
    keys = [asset.name for asset in assets_of_cadence(cadence)]
    return define_asset_job(
        f"{CADENCE_NAMES[cadence]}_reports",
        selection=AssetSelection.assets(*keys),
        description=f"Every {CADENCE_NAMES[cadence]} report for a period and one or more tenants.",
        tags=report_run_tags(),
    )


def due_slots(
    cadence: str, tenants: Sequence[str], calendars: Mapping[str, TenantCalendar], at: datetime
) -> dict[str, set[str]]:
    """slot -> the tenants whose period of that slot is due at `at`: closed in (at - M - 1 h, at - M], M the
    CRM's longest write (computed once per calendar)."""
    final_at = at - config.crm_max_write()
    closed: dict[TenantCalendar, str | None] = {}
    due: dict[str, set[str]] = defaultdict(set)
    for tenant_id in tenants:
        calendar = calendars.get(tenant_id, DEFAULT_CALENDAR)
        if calendar not in closed:
            period = calendar.last_closed(cadence, final_at)
            closed[calendar] = slot_key(cadence, period) if period.end > final_at - TICK_INTERVAL else None
        slot = closed[calendar]
        if slot is not None:
            due[slot].add(tenant_id)
    return due


def contiguous_batches(tenants: Sequence[str], due: set[str], size: int = TENANTS_PER_RUN) -> list[list[str]]:
    """The maximal runs of consecutive `tenants` (registration order) that are all in `due`, each cut every
    `size` tenants from its start: each batch is one partition range. Cut from the start, a range's
    batches stay the same when tenants are registered after it (a re-evaluated tick launches nothing twice)."""
    ranges: list[list[str]] = [[]]
    for tenant_id in tenants:
        if tenant_id in due:
            ranges[-1].append(tenant_id)
        elif ranges[-1]:
            ranges.append([])
    return [run[first : first + size] for run in ranges for first in range(0, len(run), size)]


def batch_requests(slot: str, batches: Sequence[Sequence[str]], cadence: str) -> list[RunRequest]:
    """One run request per batch of tenants (a contiguous range in registration order) for `slot`."""
    requests = []
    for batch in batches:
        start, end = f"{slot}|{batch[0]}", f"{slot}|{batch[-1]}"
        requests.append(
            RunRequest(
                run_key=f"{start}..{batch[-1]}",
                tags={
                    RANGE_START_TAG: start,
                    RANGE_END_TAG: end,
                    "dyno/period": slot,
                    "dyno/cadence": cadence,
                    "dyno/tenants": str(len(batch)),
                    **report_run_tags(),
                },
            )
        )
    return requests


def tick_requests(
    cadence: str, tenants: Sequence[str], calendars: Mapping[str, TenantCalendar], at: datetime
) -> list[RunRequest]:
    """Every run the tick at `at` asks for: per slot closed in the past hour, its contiguous batches."""
    due = due_slots(cadence, tenants, calendars, at)
    return [
        request
        for slot in sorted(due)
        for request in batch_requests(slot, contiguous_batches(tenants, due[slot]), cadence)
    ]


def cadence_schedule(cadence: str, job: "UnresolvedAssetJobDefinition") -> ScheduleDefinition:
    name = CADENCE_NAMES[cadence]

    @schedule(
        name=f"{name}_reports_schedule",
        job=job,
        cron_schedule=HOURLY,
        execution_timezone="UTC",
        default_status=DefaultScheduleStatus.STOPPED,
        description=f"Every hour: each tenant's {cadence} that closed in its time zone in the hour before the "
        f"CRM's longest write (10 minutes by default), in contiguous batches of at most {TENANTS_PER_RUN} tenants "
        "per run.",
    )
    def _schedule(context: ScheduleEvaluationContext, dyno_db: ReportDatabase):
        tenants = context.instance.get_dynamic_partitions(TENANT)  # registration order: what ranges follow
        if not tenants:
            return SkipReason("no tenant partitions (run sync-tenants)")
        with dyno_db.engine().connect() as conn:
            calendars = calendars_of(conn, tenants)
        at = (context.scheduled_execution_time or datetime.now(UTC)).astimezone(UTC)
        requests = tick_requests(cadence, tenants, calendars, at)
        return requests or SkipReason(f"no tenant's {cadence} closed in the hour up to {at.isoformat()}")

    return _schedule


def jobs_and_schedules() -> tuple[list["UnresolvedAssetJobDefinition"], list[ScheduleDefinition]]:
    cadences = [cadence for cadence in CADENCE_NAMES if assets_of_cadence(cadence)]
    jobs = {cadence: cadence_job(cadence) for cadence in cadences}
    return list(jobs.values()), [cadence_schedule(c, jobs[c]) for c in cadences]
