"""`dyno-reports demo`: upgrade, seed a few tenants, answer every report over their recent periods, summarise.

The demo's tenants are seeded with a history of HISTORY (365 days) ending today 00:00 UTC (`seed_demo`,
which `make dev` uses too). The periods a report is asked about come from each tenant's data, not from
today: the last PERIODS_PER_REPORT closed periods of the report's cadence that end by the tenant's history
end, its `crm.tenant.created_at` (seeding sets it to the history's start) + HISTORY. So a demo on the day
of seeding reports the periods `dyno-reports trend` shows by default, and a demo days later asks the same
questions. A question (tenant, report, window, default options) that has a SUCCEEDED run already is not
run again: its latest run (`reporting.report_run_latest`, by input fingerprint) is reported as existing,
so a second demo adds no run.
"""

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from uuid import UUID

from sqlalchemy import Connection, Engine, select

from dyno_reports import db, executor, periods, results, seed, trend
from dyno_reports.reports import REGISTRY
from dyno_reports.reports.base import ReportDefinition
from dyno_reports.storage import migrate
from dyno_reports.storage.tables import tenant

DEMO_TENANTS = 3
DEMO_DEALS = 300
DEMO_SEED = 7
# Days, not 12 calendar months: created_at + HISTORY gives the seeded end back exactly (a month from 29 Feb does not).
HISTORY = timedelta(days=365)
PERIODS_PER_REPORT = 8  # `dyno-reports trend`'s default --last
CLI = ".venv/bin/dyno-reports"  # as the README writes the commands
EXISTING = "EXISTING"


@dataclass(frozen=True)
class Answer:
    """One question the demo asked and its run: a new one (SUCCEEDED or FAILED), or the latest SUCCEEDED run
    that was there already (EXISTING). `headline`: the run's headline sums or error, filled in for new runs
    and for the latest period."""

    report_type: str
    tenant_id: UUID
    window: periods.Window
    run_id: UUID
    status: str
    headline: str = ""


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
    today 00:00 UTC (a tenant created lately has no periods in the future)."""
    return min(created_at.astimezone(UTC) + HISTORY, periods.start_of_today(now))


def demo_windows(cadence: str, end: datetime) -> list[periods.Window]:
    """The last PERIODS_PER_REPORT closed periods of the cadence ending by `end`, oldest first: those
    `dyno-reports trend` shows by default on the day `end` begins."""
    return trend.period_windows(cadence, PERIODS_PER_REPORT, today=end.date())


def history_ends(conn: Connection, tenant_ids: list[UUID]) -> dict[UUID, datetime]:
    rows = conn.execute(select(tenant.c.tenant_id, tenant.c.created_at).where(tenant.c.tenant_id.in_(tenant_ids)))
    return {tenant_id: history_end(created_at) for tenant_id, created_at in rows}


def run_demo(echo: Callable[[str], None] = print) -> list[Answer]:
    """Upgrade, seed, answer every report x tenant x period (report by report), print the summary and the
    commands that read the results; returns the answers in that order."""
    engine = db.get_engine()
    echo(f"database: {engine.url.render_as_string(hide_password=True)}")
    echo(f"migrations: at {migrate.upgrade(engine)}")
    tenants = seed_demo(engine)
    with engine.connect() as conn:
        ends = history_ends(conn, [t.tenant_id for t in tenants])
    for t in tenants:
        echo(
            f"tenant {t.tenant_id}  {t.name}: {t.deals} deals, {t.history_rows} history rows"
            f" until {ends[t.tenant_id]:%Y-%m-%d}" + ("" if t.created else " (already seeded)")
        )
    answers = []
    for report in REGISTRY.values():
        echo(f"\n{report.report_type} ({report.cadence}ly): {report.title}")
        echo(
            f"  {'tenant':<10} {f'{PERIODS_PER_REPORT} {report.cadence}s':<23} {'new':>3} {'existing':>8} "
            f"{'failed':>6}  latest period"
        )
        for t in tenants:
            asked = answer(engine, report, t.tenant_id, demo_windows(report.cadence, ends[t.tenant_id]))
            echo(_line(asked))
            answers += asked
    _summary(answers, echo)
    if tenants:
        _read_commands(answers, tenants[0], echo)
    return answers


def answer(engine: Engine, report: ReportDefinition, tenant_id: UUID, windows: list[periods.Window]) -> list[Answer]:
    """Each window's latest SUCCEEDED run with the default options, run now where there is none."""
    options = report.options_from(None)
    fingerprints = [results.fingerprint_of(report, tenant_id, w, options) for w in windows]
    answers = []
    with engine.connect() as conn:
        existing = results.latest_runs(conn, report, tenant_id, fingerprints)
        conn.rollback()
        for window, fingerprint in zip(windows, fingerprints, strict=True):
            if fingerprint in existing:
                answers.append(Answer(report.report_type, tenant_id, window, existing[fingerprint], EXISTING))
                continue
            request = executor.build_request(
                conn, report.report_type, tenant_id, period_start=window.start, period_end=window.end
            )
            conn.rollback()  # validation only read: the run's own transaction starts next, on this connection
            result = executor.execute(engine, request, connection=conn)
            headline = executor.headline_text(result.headline) or (result.error_message or "")
            answers.append(Answer(report.report_type, tenant_id, window, result.run_id, result.status, headline))
        if answers and answers[-1].status == EXISTING:
            latest = answers[-1]
            sums = executor.headline_of(conn, report, tenant_id, latest.run_id)
            answers[-1] = dataclasses.replace(latest, headline=executor.headline_text(sums))
    return answers


def _line(asked: list[Answer]) -> str:
    """One report x tenant: its periods' span, how many runs are new, existing and failed, the latest headline."""
    span = f"{asked[0].window.start:%Y-%m-%d}..{asked[-1].window.end:%Y-%m-%d}"
    counts = [sum(a.status == status for a in asked) for status in ("SUCCEEDED", EXISTING, "FAILED")]
    new = counts[0] + counts[2]
    tenant_id = str(asked[0].tenant_id)[:8]
    return f"  {tenant_id:<10} {span:<23} {new:>3} {counts[1]:>8} {counts[2]:>6}  {asked[-1].headline}"


def _summary(answers: list[Answer], echo: Callable[[str], None]) -> None:
    existing = sum(a.status == EXISTING for a in answers)
    failed = sum(a.status == "FAILED" for a in answers)
    new = len(answers) - existing
    echo(
        f"\n{len(answers)} report runs asked for: {new} run now ({new - failed} SUCCEEDED, {failed} FAILED), "
        f"{existing} already existed (their latest SUCCEEDED run, not run again)."
        " Facts are in reporting.report_<name>_fact, headers in reporting.report_run."
    )


def _read_commands(answers: list[Answer], first: seed.SeededTenant, echo: Callable[[str], None]) -> None:
    """A few run ids of the first tenant and the commands that read them, each working as printed."""
    mine = [a for a in answers if a.tenant_id == first.tenant_id]
    echo(f"\nRead the results ({first.name}):")
    for report_type in ("pipeline_overview", "win_loss"):
        readable = [a for a in mine if a.report_type == report_type and a.status != "FAILED"]
        if readable:
            latest = readable[-1]
            echo(f"  {CLI} show {latest.run_id}    # {report_type}, {latest.window.start:%Y-%m-%d}")
    overview = [a.window for a in mine if a.report_type == "pipeline_overview"]
    through = ""
    if overview and overview[-1] != trend.period_windows("week", PERIODS_PER_REPORT)[-1]:
        through = f" --through {overview[-1].start:%Y-%m-%d}"  # the history ends before last week
    echo(f"  {CLI} trend pipeline_overview --tenant {first.tenant_id} --metric total_amount --by pipeline_id" + through)
    echo(f"  {CLI} runs list --tenant {first.tenant_id}")
    echo(f"  {CLI} tenants")
