"""Backfills against the scan floor at the last window's end: 26 weeks and 12 months of every report, one tenant.

    python -m benchmarks.performance.backfill [--deals 100000 1000000] [--repeats 3] [--reports NAME ...]
                                              [--per-period]

On the `dyno_bench` database (benchmarks.report_runs' tenants). For each report and each backfill (26 weekly
windows ending 2025-06-30, 12 monthly windows ending 2025-07-01, and P = 1: the last week), alternately,
--repeats rounds of: the scan floor at the last end; the backfill as `dyno-reports backfill` does it
(`multi_period.computed_passes`: one pass per report that has a multi-period statement, then each window written
as its own run through the executor). Medians; ratio = backfill / floor (goal ≤ 3, P = 1 ≤ 1.5); the pass's temp
writes (EXPLAIN ANALYZE, goal at 1M deals ≤ 200 MB); with --per-period also one executor run per window, the
way before multi-period passes (slow: P full passes). With --dagster, also the 26-week backfill of
pipeline_overview as one Dagster range run (`materialize()` in process, an ephemeral instance: what a
per-tenant backfill run does) against the floor (goal ≤ 3 x floor + 1 s).
"""

import argparse
import statistics
import uuid
from datetime import UTC, datetime, timedelta
from uuid import UUID

from dateutil.relativedelta import relativedelta
from sqlalchemy import Engine

from benchmarks.performance.common import (
    BENCH_DATABASE,
    database_engine,
    ensure_fact_tables,
    median_ms,
    peak_rss_mb,
    print_table,
    timed,
    verdict,
)
from benchmarks.performance.scan_floor import SEED_OF_SIZE, run_floor, temp_written_bytes
from dyno_reports.devtools import seed
from dyno_reports.engine import executor, multi_period, run_request
from dyno_reports.reports import registry
from dyno_reports.reports.multi_period import window_params

LAST_WEEK_END = datetime(2025, 6, 30, tzinfo=UTC)
LAST_MONTH_END = datetime(2025, 7, 1, tzinfo=UTC)
BACKFILLS = {
    "26 weeks": [(LAST_WEEK_END - timedelta(weeks=n + 1), LAST_WEEK_END - timedelta(weeks=n)) for n in range(26)],
    "12 months": [
        (LAST_MONTH_END - relativedelta(months=n + 1), LAST_MONTH_END - relativedelta(months=n)) for n in range(12)
    ],
    "P = 1": [(LAST_WEEK_END - timedelta(weeks=1), LAST_WEEK_END)],
    "52 weeks": [(LAST_WEEK_END - timedelta(weeks=n + 1), LAST_WEEK_END - timedelta(weeks=n)) for n in range(52)],
}
GOAL = {"26 weeks": 3.0, "12 months": 3.0, "P = 1": 1.5, "52 weeks": 3.0}
TEMP_GOAL_MB = 200


def requests_of(engine: Engine, report_type: str, tenant_id: UUID, windows: list) -> list[run_request.RunRequest]:
    now = datetime.now(UTC)  # one K for all, as a backfill plans them
    with engine.connect() as conn:
        return [
            run_request.build_request(conn, report_type, tenant_id, period_start=start, period_end=end, now=now)
            for start, end in sorted(windows, key=lambda w: w[1])
        ]


def one_backfill(engine: Engine, requests: list[run_request.RunRequest]) -> None:
    """As `dyno-reports backfill` runs its planned requests (backfill.run_all without the CLI)."""
    run_ids = [uuid.uuid4() for _ in requests]
    with engine.connect() as conn:
        computed = multi_period.computed_passes(engine, conn, requests, run_ids)
        for index, (request, run_id) in enumerate(zip(requests, run_ids, strict=True)):
            result = executor.execute(engine, request, run_id=run_id, connection=conn, computed=computed.get(index))
            assert result.succeeded, result.error_message


def per_period(engine: Engine, requests: list[run_request.RunRequest]) -> None:
    for request in requests:
        assert executor.execute(engine, request).succeeded


def pass_temp_mb(engine: Engine, requests: list[run_request.RunRequest]) -> float:
    report = requests[0].report
    if report.multi_period_sql is None or len(requests) < 2:
        return temp_written_bytes(engine, report.sql, requests[-1].sql_params(), report.transaction_settings()) / 1e6
    params = {k: v for k, v in requests[0].sql_params().items() if k not in ("period_start", "period_end")}
    params |= window_params([(r.window.start, r.window.end) for r in requests])
    return temp_written_bytes(engine, report.multi_period_sql, params, report.multi_period_transaction_settings()) / 1e6


def measure(engine: Engine, report_type: str, tenant_id: UUID, name: str, repeats: int, old_way: bool) -> list:
    requests = requests_of(engine, report_type, tenant_id, BACKFILLS[name])
    floor_params = {"t": tenant_id, "E": requests[-1].window.end, "K": requests[-1].known_at}
    temp = pass_temp_mb(engine, requests)
    ways = {"floor": lambda: run_floor(engine, floor_params), "backfill": lambda: one_backfill(engine, requests)}
    if old_way:
        ways["per period"] = lambda: per_period(engine, requests)
    times: dict[str, list[float]] = {way: [] for way in ways}
    for way in ways.values():
        way()  # warm up
    for _ in range(repeats):
        for way, fn in ways.items():
            times[way].append(timed(fn))
    floor, total = median_ms(times["floor"]), median_ms(times["backfill"])
    passes = len(multi_period.shared_passes(requests)) if len(requests) > 1 else 0
    ratio = total / floor
    row = [report_type, name, len(requests), passes, total, floor, ratio, verdict(ratio, GOAL[name]), temp]
    row.append(median_ms(times["per period"]) / floor if old_way else "")
    row.append(statistics.median(b / f for b, f in zip(times["backfill"], times["floor"], strict=True)))
    return row


def print_temp(engine: Engine, tenant: seed.SeededTenant, reports: list[str], backfills: list[str]) -> None:
    """Each pass's temp writes alone (goal at 1M deals: ≤ 200 MB)."""
    print(f"#### Temp writes of each pass, {tenant.deals:,} deals\n")
    rows = []
    for report in reports:
        for name in backfills:
            mb = pass_temp_mb(engine, requests_of(engine, report, tenant.tenant_id, BACKFILLS[name]))
            rows.append([report, name, len(BACKFILLS[name]), mb, verdict(mb, TEMP_GOAL_MB)])
    print_table(["report", "backfill", "P", "pass temp MB", f"≤ {TEMP_GOAL_MB} MB"], rows)


def dagster_range_run(engine: Engine, tenant_id: UUID, repeats: int) -> None:
    """The 26 weeks of pipeline_overview as one Dagster range run, against the floor at the last week's end."""
    import warnings

    from dagster import AssetKey, DagsterInstance, materialize

    from dyno_reports.dagster_defs.assets import report_assets
    from dyno_reports.dagster_defs.io_manager import ReportRunIOManager
    from dyno_reports.dagster_defs.resources import ReportDatabase

    warnings.simplefilter("ignore")
    weeks = [start.date().isoformat() for start, _ in sorted(BACKFILLS["26 weeks"])]
    url = engine.url.render_as_string(hide_password=False)
    asset = next(a for a in report_assets(weeks[0]) if a.key == AssetKey("pipeline_overview"))
    resources = {"dyno_db": ReportDatabase(database_url=url), "report_io_manager": ReportRunIOManager(database_url=url)}
    instance = DagsterInstance.ephemeral()
    instance.add_dynamic_partitions("tenant", [str(tenant_id)])
    tags = {
        "dagster/asset_partition_range_start": f"{weeks[0]}|{tenant_id}",
        "dagster/asset_partition_range_end": f"{weeks[-1]}|{tenant_id}",
    }
    quiet = {"loggers": {"console": {"config": {"log_level": "ERROR"}}}}
    floor_params = {"t": tenant_id, "E": LAST_WEEK_END, "K": datetime.now(UTC) - timedelta(minutes=10)}

    def range_run() -> None:
        assert materialize([asset], instance=instance, resources=resources, tags=tags, run_config=quiet).success

    range_run()  # warm up
    floors, runs = [], []
    for _ in range(repeats):
        floors.append(timed(lambda: run_floor(engine, floor_params)))
        runs.append(timed(range_run))
    floor, total = median_ms(floors), median_ms(runs)
    goal = 3 * floor + 1000
    print(f"Dagster range run of 26 weeks (pipeline_overview): {total:,.0f} ms; floor {floor:,.0f} ms; "
          f"goal ≤ 3 x floor + 1 s = {goal:,.0f} ms: {verdict(total, goal)}.\n")  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--deals", type=int, nargs="+", default=[100_000, 1_000_000])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--reports", nargs="+", default=sorted(registry()))
    parser.add_argument("--backfills", nargs="+", default=list(BACKFILLS), choices=list(BACKFILLS))
    parser.add_argument("--per-period", action="store_true", help="also one run per window (the old way)")
    parser.add_argument("--dagster", action="store_true", help="also the 26 weeks as one Dagster range run")
    parser.add_argument("--temp-only", action="store_true", help="only each pass's temp writes (one EXPLAIN ANALYZE)")
    args = parser.parse_args()
    engine = database_engine(BENCH_DATABASE)
    ensure_fact_tables(engine)
    headers = ["report", "backfill", "P", "passes", "backfill ms", "floor ms", "backfill / floor", "goal",
               "pass temp MB", "per period / floor", "per round"]  # fmt: skip
    for deals in args.deals:
        (tenant,) = seed.seed(engine, tenants=1, deals_per_tenant=deals, random_seed=SEED_OF_SIZE.get(deals, deals))
        if args.temp_only:
            print_temp(engine, tenant, args.reports, args.backfills)
            continue
        print(f"#### {tenant.deals:,} deals, {tenant.history_rows:,} history rows (medians of {args.repeats})\n")
        rows = [
            measure(engine, report, tenant.tenant_id, name, args.repeats, args.per_period)
            for report in args.reports
            for name in args.backfills
        ]
        print_table(headers, rows)
        goal = "" if deals < 1_000_000 else f" (goal at 1M deals ≤ {TEMP_GOAL_MB} MB)"
        print(f"Largest pass temp writes: {max(r[8] for r in rows):.1f} MB{goal}.")
        print(f"Peak RSS of this process so far: {peak_rss_mb():.0f} MB.\n")
        if args.dagster and deals == 100_000:
            dagster_range_run(engine, tenant.tenant_id, args.repeats)
    engine.dispose()


if __name__ == "__main__":
    main()
