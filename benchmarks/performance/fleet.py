"""Per-run overhead across a fleet of small tenants: every report for every tenant through the executor, minus its SQL.

    python -m benchmarks.performance.fleet [--tenants 1000] [--deals 100] [--quick] [--database NAME]

On a database of its own, `dyno_bench_fleet` (or --database: e.g. a copy at another revision, to compare two
commits side by side), seeded on first use with --tenants tenants of --deals deals (random seed 1000; asking
for fewer tenants later reuses the first ones). The run requests are built first (timed apart: `build_request`
validates tenant and pipelines). Then, in one process, for each tenant and each report of registry(): the
report's bare SELECT (rows fetched, on one autocommit connection: one round trip) and the full
`executor.execute` run, one after the other. Overhead per run = (sum of runs - sum of bare SELECTs) / runs:
what a run costs beyond its own SQL.

The bare SELECT is prepared after 5 executions and then runs a generic plan, while a run plans its statement
for its tenant every time (`plan_cache_mode = force_custom_plan`, on purpose). So each SELECT is also timed
as a run plans it (inside a transaction with the run's settings, rolled back): the difference between the two
bare timings is the planner's share of the overhead.
"""

import argparse
import time

from sqlalchemy import Connection, text

from benchmarks.performance.common import FLEET_DATABASE, database_engine, print_table, request_for, verdict
from dyno_reports.devtools import seed
from dyno_reports.engine import executor, run_request
from dyno_reports.engine.run_records import run_settings, setting_values
from dyno_reports.reports import registry
from dyno_reports.storage import migrate

FLEET_SEED = 1000
OVERHEAD_GOAL_MS = 3.0


def bare_select(conn: Connection, request: run_request.RunRequest) -> float:
    """Seconds the report's own SELECT takes, its rows fetched."""
    started = time.perf_counter()
    conn.execute(text(request.report.sql), request.sql_params()).all()
    return time.perf_counter() - started


def custom_planned_select(conn: Connection, request: run_request.RunRequest) -> float:
    """Seconds the report's own SELECT takes under the settings of a run (custom plans, the report's own)."""
    settings = request.report.transaction_settings()
    with conn.begin() as transaction:
        conn.execute(run_settings(None, report_settings=settings), setting_values(request.tenant_id, None, settings))
        elapsed = bare_select(conn, request)
        transaction.rollback()
    return elapsed


def full_run(engine, request: run_request.RunRequest) -> float:
    started = time.perf_counter()
    result = executor.execute(engine, request)
    elapsed = time.perf_counter() - started
    assert result.succeeded, result.error_message
    return elapsed


def run(tenants: int, deals: int, database: str = FLEET_DATABASE) -> None:
    engine = database_engine(database)
    migrate.upgrade(engine)
    started = time.perf_counter()
    fleet = seed.seed(engine, tenants=tenants, deals_per_tenant=deals, random_seed=FLEET_SEED)
    seeded_s = time.perf_counter() - started
    started = time.perf_counter()
    requests = [request_for(engine, report, t.tenant_id) for t in fleet for report in registry().values()]
    build_s = time.perf_counter() - started
    sql_s = custom_s = run_s = 0.0
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn, engine.connect() as custom:
        bare_select(conn, requests[0]), full_run(engine, requests[0]), custom_planned_select(custom, requests[0])
        for request in requests:
            sql_s += bare_select(conn, request)
            run_s += full_run(engine, request)
            custom_s += custom_planned_select(custom, request)  # after the run: the run sees what it saw before
    engine.dispose()
    n = len(requests)
    overhead_ms = (run_s - sql_s) / n * 1000
    deal_counts = sorted({t.deals for t in fleet})
    print(f"### Fleet: {len(fleet):,} tenants x {len(registry())} reports = {n:,} runs\n")
    print(f"Tenants of {', '.join(map(str, deal_counts))} deals (seeded or found in {seeded_s:.1f} s).\n")
    rows = [
        ["all runs (executor.execute)", run_s, run_s / n * 1000],
        ["their bare SELECTs", sql_s, sql_s / n * 1000],
        ["overhead beyond the SQL", run_s - sql_s, overhead_ms],
        ["of which planning (custom-planned SELECTs - bare)", custom_s - sql_s, (custom_s - sql_s) / n * 1000],
        ["building the requests (apart)", build_s, build_s / n * 1000],
    ]
    print_table(["what", "total s", "ms / run"], rows)
    print(f"Overhead per run: {overhead_ms:.2f} ms (goal ≤ {OVERHEAD_GOAL_MS:g} ms: {verdict(overhead_ms, 3.0)}).\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tenants", type=int, default=1000)
    parser.add_argument("--deals", type=int, default=100)
    parser.add_argument("--quick", action="store_true", help="20 tenants")
    parser.add_argument("--database", default=FLEET_DATABASE, help="the database (created and seeded if missing)")
    args = parser.parse_args()
    run(20 if args.quick else args.tenants, args.deals, args.database)


if __name__ == "__main__":
    main()
