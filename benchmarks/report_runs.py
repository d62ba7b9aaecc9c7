"""Each report's full run (executor: header, INSERT ... SELECT, status) next to its bare SQL alone.

    python -m benchmarks.report_runs [--deals 100000] [--repeats 5]

Uses DYNO_DATABASE_URL's server (else the embedded one), in a database of its own
(`dyno_bench`), seeded once with one tenant of --deals deals (plus a small second
tenant, so the tenant predicate has something to exclude). Prints medians of
--repeats runs, measured alternately (bare, full, bare, full, ...) in one process.
"""

import argparse
import statistics
import time
from datetime import UTC, datetime, timedelta

from dateutil.relativedelta import relativedelta
from sqlalchemy import create_engine, text

from dyno_reports.devtools import seed
from dyno_reports.engine import executor, run_request
from dyno_reports.reports import registry
from dyno_reports.storage import db, migrate

BENCH_DATABASE = "dyno_bench"
PERIOD = {
    "week": (datetime(2025, 6, 23, tzinfo=UTC), timedelta(weeks=1)),
    "month": (datetime(2025, 6, 1, tzinfo=UTC), relativedelta(months=1)),
}


def bench_engine():
    url = db.resolve_database_url()
    db.ensure_database(url, BENCH_DATABASE)
    return create_engine(url.set(database=BENCH_DATABASE))


def timed(fn) -> float:
    started = time.perf_counter()
    fn()
    return time.perf_counter() - started


def measure(engine, report, tenant_id, repeats: int) -> tuple[list[float], list[float], int]:
    start, length = PERIOD[report.cadence]
    with engine.connect() as conn:
        request = run_request.build_request(
            conn, report.report_type, tenant_id, period_start=start, period_end=start + length
        )
    params = request.sql_params()

    def bare():
        with engine.connect() as conn:
            conn.execute(text(report.sql), params).all()

    rows = 0

    def full():
        nonlocal rows
        result = executor.execute(engine, request)
        assert result.succeeded, result.error_message
        rows = result.fact_rows

    bare(), full()  # warm caches and connections
    bare_times, full_times = [], []
    for _ in range(repeats):
        bare_times.append(timed(bare))
        full_times.append(timed(full))
    return bare_times, full_times, rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--deals", type=int, default=100_000)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    engine = bench_engine()
    migrate.upgrade(engine)
    started = time.perf_counter()
    # The random seed is the size, so each size gets its own tenant in the one bench database.
    (big,) = seed.seed(engine, tenants=1, deals_per_tenant=args.deals, random_seed=args.deals)
    seed.seed(engine, tenants=1, deals_per_tenant=1000, random_seed=1)
    print(
        f"tenant {big.tenant_id}: {big.deals} deals, {big.history_rows} history rows "
        f"(seeded or found in {time.perf_counter() - started:.1f} s)"
    )
    print(f"{'report':<20} {'bare SQL ms':>12} {'full run ms':>12} {'ratio':>6} {'fact rows':>9}")
    for report in registry().values():
        bare_times, full_times, rows = measure(engine, report, big.tenant_id, args.repeats)
        bare_ms, full_ms = statistics.median(bare_times) * 1000, statistics.median(full_times) * 1000
        print(f"{report.report_type:<20} {bare_ms:>12.1f} {full_ms:>12.1f} {full_ms / bare_ms:>6.2f} {rows:>9}")


if __name__ == "__main__":
    main()
