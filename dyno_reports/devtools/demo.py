"""`dyno-reports demo`: upgrade, seed a few tenants, answer every report over their recent periods, summarise.

The demo's tenants are seeded with a history of HISTORY (365 days) ending today 00:00 UTC (`seed_demo`,
which `make dev` uses too), each with its calendar (UTC, Australia/Sydney, America/Los_Angeles). The periods
a report is asked about come from each tenant's data, not from today: for each of the report's cadences,
the last PERIODS_PER_CADENCE closed periods of the tenant's calendar (its weeks, months, fiscal quarters)
that end by the tenant's history end, its `crm.tenant.created_at` (seeding sets it to the history's start)
+ HISTORY. So a demo on the day of seeding reports the periods `dyno-reports trend` shows by default
(`--cadence quarter --last 4` for the quarters), and a demo days later asks the same questions. A question
(tenant, report, window, default options) that has a SUCCEEDED run already is not run again: its latest run
(`reporting.report_run_latest`, by input fingerprint) is reported as existing, so a second demo adds no run.
"""

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from uuid import UUID

from sqlalchemy import Connection, Engine, select

from dyno_reports.core import config, periods
from dyno_reports.core.tenant_calendar import Period, TenantCalendar
from dyno_reports.devtools import demo_correction, seed
from dyno_reports.engine import executor, run_request
from dyno_reports.read import results, trend
from dyno_reports.reports import registry
from dyno_reports.reports.base import ReportDefinition
from dyno_reports.storage import db, migrate
from dyno_reports.storage.tables import tenant

DEMO_TENANTS = 3
DEMO_DEALS = 300
DEMO_SEED = 7
# Days, not 12 calendar months: created_at + HISTORY gives the seeded end back exactly (a month from 29 Feb does not).
HISTORY = timedelta(days=365)
PERIODS_PER_REPORT = 8  # `dyno-reports trend`'s default --last
# How many closed periods of each cadence a report is asked about: a year of fiscal quarters is four.
PERIODS_PER_CADENCE = {"week": PERIODS_PER_REPORT, "month": PERIODS_PER_REPORT, "quarter": 4}
CADENCE_WORDS = {"week": "weekly", "month": "monthly", "quarter": "quarterly"}
CLI = ".venv/bin/dyno-reports"  # as the README writes the commands
EXISTING = "EXISTING"


@dataclass(frozen=True)
class Answer:
    """One question the demo asked and its run: a new one (SUCCEEDED or FAILED), or the latest SUCCEEDED run
    that was there already (EXISTING). `headline`: the run's headline sums or error, filled in for new runs
    and for the latest period."""

    report_type: str
    tenant_id: UUID
    period: Period
    run_id: UUID
    status: str
    headline: str = ""

    @property
    def window(self) -> periods.Window:
        return self.period.window


def seed_demo(
    engine: Engine, *, now: datetime | None = None, progress: Callable[[str], None] | None = None
) -> list[seed.SeededTenant]:
    """The demo's tenants, seeded with a history of HISTORY ending today 00:00 UTC; tenants that exist
    already are kept as they are (`seed.seed` skips them)."""
    end = periods.start_of_today(now)
    return seed.seed(
        engine,
        tenants=DEMO_TENANTS,
        deals_per_tenant=DEMO_DEALS,
        random_seed=DEMO_SEED,
        start=end - HISTORY,
        end=end,
        progress=progress,
    )


def history_end(created_at: datetime, now: datetime | None = None) -> datetime:
    """Where a seeded tenant's history ends: its created_at (the history's start) + HISTORY, and never after
    today 00:00 UTC as of the CRM's longest write ago (a tenant created lately has no periods in the future,
    and a period that ended minutes ago is not final yet: its run would be refused)."""
    known = (now or datetime.now(UTC)) - config.crm_max_write()
    return min(created_at.astimezone(UTC) + HISTORY, periods.start_of_today(known))


def demo_periods(calendar: TenantCalendar, cadence: str, end: datetime) -> list[Period]:
    """The last PERIODS_PER_CADENCE closed periods of the cadence in the tenant's calendar ending by `end`,
    oldest first: those `dyno-reports trend` shows at `end`."""
    return trend.trend_periods(calendar, cadence, PERIODS_PER_CADENCE[cadence], now=end)


@dataclass(frozen=True)
class DemoTenant:
    """A seeded tenant as the demo asks about it: where its history ends, and its calendar."""

    history_end: datetime
    calendar: TenantCalendar


def demo_tenants(conn: Connection, tenant_ids: list[UUID]) -> dict[UUID, DemoTenant]:
    columns = (tenant.c.time_zone, tenant.c.week_start, tenant.c.fiscal_year_start_month, tenant.c.fiscal_year_named_by)
    rows = conn.execute(
        select(tenant.c.tenant_id, tenant.c.created_at, *columns).where(tenant.c.tenant_id.in_(tenant_ids))
    )
    return {row[0]: DemoTenant(history_end(row[1]), TenantCalendar(*row[2:])) for row in rows}


def run_demo(echo: Callable[[str], None] = print) -> list[Answer]:
    """Upgrade, seed, answer every report x tenant x period (report by report), print the summary and the
    commands that read the results; returns the answers in that order."""
    engine = db.get_engine()
    echo(f"database: {engine.url.render_as_string(hide_password=True)}")
    echo(f"migrations: at {migrate.upgrade(engine)}")
    tenants = seed_demo(engine)
    with engine.connect() as conn:
        known = demo_tenants(conn, [t.tenant_id for t in tenants])
    for t in tenants:
        echo(
            f"tenant {t.tenant_id}  {t.name}: {t.deals} deals, {t.history_rows} history rows"
            f" until {known[t.tenant_id].history_end:%Y-%m-%d}, {_calendar_text(known[t.tenant_id].calendar)}"
            + ("" if t.created else " (already seeded)")
        )
    answers = []
    for report in registry().values():
        echo(f"\n{report.report_type} ({', '.join(CADENCE_WORDS[c] for c in report.cadences)}): {report.title}")
        echo(f"  {'tenant':<10} {'zone':<20} {'periods':<33} {'new':>3} {'existing':>8} {'failed':>6}  latest period")
        for t in tenants:
            for cadence in report.cadences:
                found = known[t.tenant_id]
                asked = answer(engine, report, t.tenant_id, demo_periods(found.calendar, cadence, found.history_end))
                echo(_line(asked, found.calendar))
                answers += asked
    _summary(answers, echo)
    if tenants:
        _read_commands(answers, tenants, known, echo)
        first_id = tenants[0].tenant_id
        months = _asked(answers, first_id, "win_loss", "month")
        if months:
            describe = known[first_id].calendar.describe
            demo_correction.show_a_late_import(engine, first_id, months[-1].period, describe, echo)
    return answers


def answer(engine: Engine, report: ReportDefinition, tenant_id: UUID, asked: list[Period]) -> list[Answer]:
    """Each period's latest SUCCEEDED run with the default options, run now where there is none."""
    options = report.options_from(None)
    fingerprints = [results.fingerprint_of(report, tenant_id, p.window, options) for p in asked]
    answers = []
    with engine.connect() as conn:
        existing = results.latest_runs(conn, report, tenant_id, fingerprints)
        conn.rollback()
        for period, fingerprint in zip(asked, fingerprints, strict=True):
            if fingerprint in existing:
                answers.append(Answer(report.report_type, tenant_id, period, existing[fingerprint], EXISTING))
                continue
            request = run_request.build_request(
                conn, report.report_type, tenant_id, period_start=period.start, period_end=period.end
            )
            conn.rollback()  # validation only read: the run's own transaction starts next, on this connection
            result = executor.execute(engine, request, connection=conn)
            headline = executor.headline_text(result.headline) or (result.error_message or "")
            answers.append(Answer(report.report_type, tenant_id, period, result.run_id, result.status, headline))
        if answers and answers[-1].status == EXISTING:
            latest = answers[-1]
            sums = executor.headline_of(conn, report, tenant_id, latest.run_id)
            answers[-1] = dataclasses.replace(latest, headline=executor.headline_text(sums))
    return answers


def _line(asked: list[Answer], calendar: TenantCalendar) -> str:
    """One report x tenant x cadence: the tenant's zone, its periods (how many, the first and last labels), how
    many runs are new, existing and failed, the latest headline."""
    first, last = asked[0].period, asked[-1].period
    span = f"{len(asked)} {first.grain}s {first.label}..{last.label}"
    counts = [sum(a.status == status for a in asked) for status in ("SUCCEEDED", EXISTING, "FAILED")]
    new = counts[0] + counts[2]
    tenant_id = str(asked[0].tenant_id)[:8]
    return (
        f"  {tenant_id:<10} {calendar.time_zone:<20} {span:<33} {new:>3} {counts[1]:>8} {counts[2]:>6}"
        f"  {asked[-1].headline}"
    )


def _calendar_text(calendar: TenantCalendar) -> str:
    """`Australia/Sydney, weeks from Monday, fiscal year from July (named by its end)`."""
    weekday = date(2025, 6, 1 + calendar.week_start)  # 2025-06-02 is a Monday
    first_month = date(2025, calendar.fiscal_year_start_month, 1)
    return (
        f"{calendar.time_zone}, weeks from {weekday:%A}, fiscal year from {first_month:%B}"
        f" (named by its {calendar.fiscal_year_named_by})"
    )


def _summary(answers: list[Answer], echo: Callable[[str], None]) -> None:
    existing = sum(a.status == EXISTING for a in answers)
    failed = sum(a.status == "FAILED" for a in answers)
    new = len(answers) - existing
    echo(
        f"\n{len(answers)} report runs asked for: {new} run now ({new - failed} SUCCEEDED, {failed} FAILED), "
        f"{existing} already existed (their latest SUCCEEDED run, not run again)."
        " Facts are in reporting.report_<name>_fact, headers in reporting.report_run."
    )


def _read_commands(
    answers: list[Answer], tenants: list[seed.SeededTenant], known: dict[UUID, DemoTenant], echo: Callable[[str], None]
) -> None:
    """A few run ids and the commands that read them, each working as printed: the first tenant's latest week
    and month, the latest fiscal quarter of the second tenant (another calendar), and trends over them."""
    first = tenants[0]
    picks = [(first, "pipeline_overview", "week"), (first, "win_loss", "month")]
    picks += [(t, "win_loss", "quarter") for t in tenants[1:2]]
    echo(f"\nRead the results ({', '.join(t.name for t in tenants[:2])}):")
    for t, report_type, grain in picks:
        readable = [a for a in _asked(answers, t.tenant_id, report_type, grain) if a.status != "FAILED"]
        if readable:
            latest = readable[-1]
            described = known[t.tenant_id].calendar.describe(latest.period)
            echo(f"  {CLI} show {latest.run_id}    # {report_type}, {described}")
    echo(_trend_command(answers, known, first.tenant_id, "pipeline_overview", "--metric total_amount --by pipeline_id"))
    for t in tenants[1:2]:
        options = f"--cadence quarter --last {PERIODS_PER_CADENCE['quarter']} --metric won_amount"
        echo(_trend_command(answers, known, t.tenant_id, "win_loss", options, "quarter"))
    echo(f"  {CLI} runs list --tenant {first.tenant_id}")
    echo(f"  {CLI} tenants")


def _asked(answers: list[Answer], tenant_id: UUID, report_type: str, grain: str) -> list[Answer]:
    return [a for a in answers if (a.tenant_id, a.report_type, a.period.grain) == (tenant_id, report_type, grain)]


def _trend_command(
    answers: list[Answer],
    known: dict[UUID, DemoTenant],
    tenant_id: UUID,
    report_type: str,
    arguments: str,
    cadence: str = "week",
) -> str:
    """The trend of the tenant's periods the demo asked about; `--through` when they end before the last
    closed period (a tenant seeded by an earlier demo or `seed`)."""
    command = f"  {CLI} trend {report_type} --tenant {tenant_id} {arguments}"
    asked = _asked(answers, tenant_id, report_type, cadence)
    if asked and asked[-1].period != trend.trend_periods(known[tenant_id].calendar, cadence, 1)[-1]:
        command += f" --through {asked[-1].period.first_day}"
    return command
