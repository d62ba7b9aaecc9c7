"""`dyno-reports demo`: upgrade, seed a few tenants, run every report over a few periods, summarise."""

from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from dateutil.relativedelta import relativedelta

from dyno_reports import db, executor
from dyno_reports.reports import REGISTRY
from dyno_reports.storage import migrate

DEMO_TENANTS = 3
DEMO_DEALS = 300
DEMO_SEED = 7
# The seeded history runs from 2024-07-01 to 2025-07-01: report the last periods before its end.
LAST_WEEK = datetime(2025, 6, 23, tzinfo=UTC)  # a Monday
LAST_MONTH = datetime(2025, 6, 1, tzinfo=UTC)
PERIODS_PER_REPORT = 3


def demo_periods(cadence: str) -> list[tuple[datetime, datetime]]:
    """The last few closed periods of the cadence inside the seeded history, oldest first."""
    if cadence == "week":
        starts = [LAST_WEEK - timedelta(weeks=i) for i in range(PERIODS_PER_REPORT)]
        return [(s, s + timedelta(weeks=1)) for s in reversed(starts)]
    starts = [LAST_MONTH - relativedelta(months=i) for i in range(PERIODS_PER_REPORT)]
    return [(s, s + relativedelta(months=1)) for s in reversed(starts)]


def run_demo(echo: Callable[[str], None] = print) -> list[executor.RunResult]:
    from dyno_reports import seed

    engine = db.get_engine()
    echo(f"database: {engine.url.render_as_string(hide_password=True)}")
    echo(f"migrations: at {migrate.upgrade(engine)}")
    tenants = seed.seed(engine, tenants=DEMO_TENANTS, deals_per_tenant=DEMO_DEALS, random_seed=DEMO_SEED)
    for t in tenants:
        echo(
            f"tenant {t.tenant_id}  {t.name}: {t.deals} deals, {t.history_rows} history rows"
            + ("" if t.created else " (already seeded)")
        )
    results = []
    for report in REGISTRY.values():
        echo(f"\n{report.report_type} ({report.cadence}ly): {report.title}")
        echo(f"  {'tenant':<10} {'period':<23} {'status':<9} {'rows':>4}  headline")
        for tenant in tenants:
            for start, end in demo_periods(report.cadence):
                results.append(_run_one(engine, report.report_type, tenant.tenant_id, start, end, echo))
    failed = [r for r in results if not r.succeeded]
    echo(
        f"\n{len(results)} report runs, {len(results) - len(failed)} SUCCEEDED, {len(failed)} FAILED."
        " Facts are in reporting.report_<name>_fact, headers in reporting.report_run."
    )
    return results


def _run_one(engine, report_type, tenant_id, start, end, echo) -> executor.RunResult:
    with engine.connect() as conn:
        request = executor.build_request(conn, report_type, tenant_id, period_start=start, period_end=end)
    result = executor.execute(engine, request)
    headline = ", ".join(f"{k}={v}" for k, v in result.headline.items()) or (result.error_message or "")
    period = f"{start:%Y-%m-%d}..{end:%Y-%m-%d}"
    echo(f"  {str(tenant_id)[:8]:<10} {period:<23} {result.status:<9} {result.fact_rows:>4}  {headline}")
    return result
