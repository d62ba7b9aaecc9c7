"""What the performance benchmarks share: databases, the benchmark periods, timing, goals and Markdown tables."""

import resource
import statistics
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

from dateutil.relativedelta import relativedelta
from sqlalchemy import Engine, create_engine, inspect

from dyno_reports.devtools import seed
from dyno_reports.engine import run_request
from dyno_reports.reports import registry
from dyno_reports.reports.base import ReportDefinition
from dyno_reports.storage import db, migrate

# The data of benchmarks.report_runs (tenants of 100k and 1M deals, random seed = size, and 1,000 deals
# with seed 1); read only here: the crm tables are not written unless a size nobody seeded is asked for.
BENCH_DATABASE = "dyno_bench"
# 1,000 small tenants for the fleet benchmark, and the 40-deal tenant the CLI benchmark runs on.
FLEET_DATABASE = "dyno_bench_fleet"
SMALL_TENANT_DEALS = 40
SMALL_TENANT_SEED = 40
# Weekly reports: the week starting Monday 2025-06-23; monthly: June 2025 (UTC), near the end of the seeded year.
PERIOD: dict[str, tuple[datetime, timedelta | relativedelta]] = {
    "week": (datetime(2025, 6, 23, tzinfo=UTC), timedelta(weeks=1)),
    "month": (datetime(2025, 6, 1, tzinfo=UTC), relativedelta(months=1)),
}


def server_url():
    """DYNO_DATABASE_URL's server (else the embedded one), as a SQLAlchemy URL."""
    return db.resolve_database_url()


def database_engine(name: str, **engine_args: Any) -> Engine:
    """An engine on database `name` of the benchmark server, creating the database if it is missing."""
    url = server_url()
    db.ensure_database(url, name)
    return create_engine(url.set(database=name), **engine_args)


def ensure_fact_tables(engine: Engine) -> None:
    """Upgrade the schema when a registered report's fact table is missing (a report added since the data
    was seeded); otherwise leave the revision alone, so older code can still be measured on the same data."""
    inspector = inspect(engine)
    if not all(inspector.has_table(r.fact_table.name, schema=r.fact_table.schema) for r in registry().values()):
        migrate.upgrade(engine)


def period_of(report: ReportDefinition) -> tuple[datetime, datetime]:
    """The benchmark window [S, E) of `report`, by its cadence."""
    start, length = PERIOD[report.cadence]
    return start, start + length


def request_for(engine: Engine, report: ReportDefinition, tenant_id: UUID) -> run_request.RunRequest:
    start, end = period_of(report)
    with engine.connect() as conn:
        return run_request.build_request(conn, report.report_type, tenant_id, period_start=start, period_end=end)


def small_tenant(engine: Engine) -> seed.SeededTenant:
    """The 40-deal tenant of the fleet database (seeded on first use)."""
    (tenant,) = seed.seed(engine, tenants=1, deals_per_tenant=SMALL_TENANT_DEALS, random_seed=SMALL_TENANT_SEED)
    return tenant


def timed(fn: Callable[[], object]) -> float:
    """Seconds `fn()` took."""
    started = time.perf_counter()
    fn()
    return time.perf_counter() - started


def median_ms(seconds: Sequence[float]) -> float:
    return statistics.median(seconds) * 1000


def peak_rss_mb() -> float:
    """This process's peak resident set size so far, in MB (ru_maxrss is in KiB on Linux)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def verdict(value: float, limit: float) -> str:
    """'ok' when value <= limit, else a bold 'missed' (Markdown)."""
    return "ok" if value <= limit else "**missed**"


def print_table(headers: Sequence[str], rows: Sequence[Sequence[object]]) -> None:
    """A Markdown table; numeric columns (every cell an int or float) right-aligned."""
    numeric = [all(isinstance(row[i], int | float) for row in rows) for i in range(len(headers))]
    print("| " + " | ".join(headers) + " |")
    print("|" + "|".join("---:" if right else "---" for right in numeric) + "|")
    for row in rows:
        print("| " + " | ".join(_cell(value) for value in row) + " |")
    print()


def _cell(value: object) -> str:
    if isinstance(value, float):
        return f"{value:,.2f}" if abs(value) < 10 else f"{value:,.1f}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)
