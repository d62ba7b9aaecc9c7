"""A backfill: every period of one cadence of a tenant's calendar in a range, one run each, in period order.

`plan` validates everything before anything is written: the report, the tenant, the cadence (one of the
report's), the range (`--from`/`--to` read as `run --period-start` reads a bound: a date is the tenant's
local midnight), at least one whole period in it, at most MAX_PERIODS, every period final (its end at or
before K, now minus the CRM's longest write: a backfill records no so-far runs, so a range reaching a period
that is not final is refused, as `run` without --so-far refuses it), and each period's request (options,
pipelines). `backfill` then computes the periods from one pass over the tenant's history where the report has
a multi-period statement (multi_period.py), and writes each period through the one executor on one connection,
as its own run: a FAILED run fails only its period, a failed pass the periods it covered.
"""

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

from sqlalchemy import Connection, Engine

from dyno_reports.core import periods
from dyno_reports.core.errors import InputError, UnknownTenant, shown
from dyno_reports.core.tenant_calendar import Period, TenantCalendar
from dyno_reports.engine import executor, multi_period, run_request, run_window
from dyno_reports.engine import known_at as knowledge
from dyno_reports.engine.run_request import iso
from dyno_reports.reports import get_report
from dyno_reports.storage import db

MAX_PERIODS = 520  # ten years of weeks
NOT_FINAL_ADVICE = "a backfill runs final periods only: end --to earlier, or `run --so-far` that period"


@dataclass(frozen=True)
class Plan:
    """The validated backfill: the tenant's calendar and each period with its request, in period order."""

    calendar: TenantCalendar
    cadence: str
    periods: list[Period]
    requests: list[run_request.RunRequest]


@dataclass(frozen=True)
class PeriodRun:
    """One period's run: its label as the calendar describes it and the executor's result."""

    period: Period
    described: str
    result: executor.RunResult

    def summary(self) -> dict[str, Any]:
        result = self.result
        return {
            "label": self.period.label,
            "period_start": iso(self.period.start),
            "period_end": iso(self.period.end),
            "status": result.status,
            "run_id": str(result.run_id),
            "error_message": result.error_message,
        }


def plan(
    conn: Connection,
    report_type: str,
    tenant_id: str | UUID,
    start: str | datetime,
    end: str | datetime,
    *,
    cadence: str | None = None,
    options: str | dict[str, Any] | None = None,
    now: datetime | None = None,
) -> Plan:
    """Validate the backfill (InputError, UnknownTenant) and build every period's request, all with one K."""
    report = get_report(report_type)
    chosen = cadence or report.cadence
    if chosen not in report.cadences:
        raise InputError(f"report {report_type} runs for {', '.join(report.cadences)}, not {shown(chosen)}")
    tenant_uuid = run_request.parse_tenant_id(tenant_id)
    calendar = run_window.read_calendar(conn, tenant_uuid)
    if calendar is None:
        raise UnknownTenant(tenant_uuid)
    current = (now or datetime.now(UTC)).astimezone(UTC)
    first, last = _instant(calendar, start, "--from"), _instant(calendar, end, "--to")
    if first >= last:
        raise InputError(f"--from must be before --to, got {shown(start)} and {shown(end)}")
    found = periods_within(calendar, chosen, first, last)
    known_at = knowledge.resolve_known_at(calendar, None, current)
    if found[-1].end > known_at:
        reason = knowledge.not_final(found[-1].end, known_at, current, given=False, advice=NOT_FINAL_ADVICE)
        raise InputError(f"{calendar.describe(found[-1])}: {reason}")
    requests = [
        run_request.build_request(
            conn, report_type, tenant_uuid, period_start=p.start, period_end=p.end, options=options, now=current
        )
        for p in found
    ]
    return Plan(calendar, chosen, found, requests)


def _instant(calendar: TenantCalendar, bound: str | datetime, what: str) -> datetime:
    """A bound as `run --period-start` reads one: text in the tenant's calendar, a datetime as an instant."""
    if isinstance(bound, datetime):
        if bound.tzinfo is None:
            raise InputError(f"{what} {bound.isoformat()} has no time zone: give an instant")
        return periods.check_bounds(bound, what).astimezone(UTC)
    return calendar.parse_bound(bound, what)


def periods_within(calendar: TenantCalendar, cadence: str, start: datetime, end: datetime) -> list[Period]:
    """The calendar's periods of `cadence` starting at or after `start` and ending at or before `end`;
    InputError when there is none, or more than MAX_PERIODS."""
    period = calendar.period_at(cadence, start)
    if period.start < start:
        period = calendar.next_period(period)
    found: list[Period] = []
    while period.end <= end:
        if len(found) == MAX_PERIODS:
            raise InputError(f"the range holds more than {MAX_PERIODS} {cadence}s: backfill it in parts")
        found.append(period)
        if period.end == end:
            break
        period = calendar.next_period(period)
    if not found:
        raise InputError(f"no whole {cadence} of the tenant's calendar ({calendar.time_zone}) lies in the range")
    return found


def run_all(
    engine: Engine,
    conn: Connection,
    planned: Plan,
    progress: Callable[[int, int, PeriodRun], None] | None = None,
    guard: multi_period.Guard | None = None,
    announce: Callable[[str], None] | None = None,
) -> list[PeriodRun]:
    """The planned periods' facts from one pass where the report has one (`multi_period.computed_passes`),
    then each period through the executor on `conn`, in period order; `progress(index, count, run)` after each
    (index from 1); `guard(run_id)` wraps each run and the pass (the CLI's signal handling); `announce(line)`
    before and after each pass."""
    conn.rollback()  # validation only read: each run's own transaction starts on this connection
    run_ids = [uuid.uuid4() for _ in planned.requests]
    computed = multi_period.computed_passes(engine, conn, planned.requests, run_ids, guard=guard, announce=announce)
    done = []
    for index, (period, request) in enumerate(zip(planned.periods, planned.requests, strict=True)):
        run_id = run_ids[index]
        with multi_period.guarded(guard, run_id):
            result = executor.execute(engine, request, run_id=run_id, connection=conn, computed=computed.get(index))
        done.append(PeriodRun(period, planned.calendar.describe(period), result))
        if progress is not None:
            progress(index + 1, len(planned.periods), done[-1])
    return done


def backfill(
    engine: Engine,
    report_type: str,
    tenant_id: str | UUID,
    start: str | datetime,
    end: str | datetime,
    options: str | dict[str, Any] | None = None,
    *,
    cadence: str | None = None,
    progress: Callable[[int, int, PeriodRun], None] | None = None,
    guard: multi_period.Guard | None = None,
    now: datetime | None = None,
) -> list[PeriodRun]:
    """Plan (nothing written on a refusal), then run every period on one connection (`run_all`)."""
    with db.connect(engine) as conn:
        planned = plan(conn, report_type, tenant_id, start, end, cadence=cadence, options=options, now=now)
        return run_all(engine, conn, planned, progress, guard)


def totals(runs: list[PeriodRun]) -> dict[str, int]:
    """How many periods, how many SUCCEEDED and how many FAILED."""
    failed = sum(not r.result.succeeded for r in runs)
    return {"periods": len(runs), "succeeded": len(runs) - failed, "failed": failed}
