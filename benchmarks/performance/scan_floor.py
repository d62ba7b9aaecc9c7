"""Each report's full run next to the scan floor at 100k and 1M deals: time, ratio, temp bytes, peak RSS.

    python -m benchmarks.performance.scan_floor [--deals 100000 1000000] [--repeats 3] [--no-warm-up] [--quick]

On the `dyno_bench` database of benchmarks.report_runs (tenant of N deals: random seed N; the
1,000-deal tenant: seed 1). For each report of registry(), in one process: the report's plan once
under `EXPLAIN (ANALYZE, BUFFERS, TIMING OFF)` for the temp blocks it writes (which also warms the
cache), one warm-up of each (unless --no-warm-up), then --repeats rounds alternating the scan floor
(same tenant, same E) and the full executor run (header, facts, headline, status, commit). Medians;
ratio = run / floor (the goal's figure); "per round" = the median of each round's run / floor.
"""

import argparse
import json
import statistics
from dataclasses import dataclass
from uuid import UUID

from sqlalchemy import Connection, Engine, text

from benchmarks.performance.common import (
    BENCH_DATABASE,
    database_engine,
    ensure_fact_tables,
    median_ms,
    peak_rss_mb,
    period_of,
    print_table,
    request_for,
    timed,
    verdict,
)
from dyno_reports.devtools import seed
from dyno_reports.engine import executor
from dyno_reports.reports import registry
from dyno_reports.reports.base import ReportDefinition

# The least any exact report must do (issue 10): one pass over the tenant's history before E as known at K
# (issue 23: rows recorded at or before K, as every report reads) in primary-key order, (deal_id, valid_from),
# with lag/lead over it; no sort, no temp file.
FLOOR_SQL = (
    "SELECT count(*) FILTER (WHERE is_entry), count(*) FILTER (WHERE is_last) FROM"
    " (SELECT stage_id IS DISTINCT FROM lag(stage_id) OVER w AS is_entry,"
    " lead(valid_from) OVER w IS NULL AS is_last FROM crm.deal_history"
    " WHERE tenant_id = :t AND valid_from < :E AND recorded_at <= :K"
    " WINDOW w AS (PARTITION BY deal_id ORDER BY valid_from)) x"
)
# Run in that order: on a table holding bigger tenants too, the planner otherwise takes a parallel seq scan plus
# an external sort for a 100k-deal tenant (measured: 28 MB of temp, slower), which is not the floor. JIT off:
# compiling is a cost the floor does not need (a report pays it only if it declares `jit`).
FLOOR_SETTINGS = {"enable_seqscan": "off", "enable_bitmapscan": "off", "jit": "off"}
SET_LOCAL = text("SELECT set_config(n, v, true) FROM unnest(CAST(:names AS text[]), CAST(:values AS text[])) s(n, v)")
HISTORY_INDEXES = "SELECT indexname FROM pg_indexes WHERE schemaname = 'crm' AND tablename = 'deal_history' ORDER BY 1"
EXPLAIN = "EXPLAIN (ANALYZE, BUFFERS, TIMING OFF, FORMAT JSON) "
RATIO_GOAL = 1.5
TEMP_GOAL_MB = 100  # at 1M deals
RSS_GOAL_MB = 100
SEED_OF_SIZE = {1000: 1}  # benchmarks.report_runs' small tenant; other sizes use their size as seed


@dataclass(frozen=True)
class Figures:
    report: ReportDefinition
    run_ms: float
    floor_ms: float
    temp_bytes: int
    floor_temp_bytes: int
    fact_rows: int
    round_ratio: float  # median of the rounds' run / floor: steadier than `ratio` when the machine's load drifts

    @property
    def ratio(self) -> float:
        return self.run_ms / self.floor_ms


def set_local(conn: Connection, settings: dict[str, str]) -> None:
    """The settings for the rest of the transaction on `conn`, in one round trip."""
    if settings:
        conn.execute(SET_LOCAL, {"names": list(settings), "values": list(settings.values())})


def run_floor(engine: Engine, params: dict) -> None:
    """The scan floor once, in its own transaction under FLOOR_SETTINGS (`params`: `t`, `E`, `K`)."""
    with engine.connect() as conn, conn.begin():
        set_local(conn, FLOOR_SETTINGS)
        conn.execute(text(FLOOR_SQL), params).all()


def temp_written_bytes(engine: Engine, sql: str, params: dict, settings: dict[str, str]) -> int:
    """Bytes of temp files one execution of `sql` writes under `settings`: EXPLAIN (ANALYZE, BUFFERS)'s temp
    written blocks (the top node's total) times the block size."""
    with engine.connect() as conn, conn.begin():
        set_local(conn, settings)
        block_size = int(conn.exec_driver_sql("SHOW block_size").scalar_one())
        plan = conn.execute(text(EXPLAIN + sql), params).scalar_one()
        if isinstance(plan, str):
            plan = json.loads(plan)
        return int(plan[0]["Plan"].get("Temp Written Blocks", 0)) * block_size


def measure(engine: Engine, report: ReportDefinition, tenant_id: UUID, repeats: int, warm_up: bool) -> Figures:
    request = request_for(engine, report, tenant_id)
    floor_params = {"t": tenant_id, "E": period_of(report)[1], "K": request.known_at}
    # The transaction settings the executor sets for this report (JIT off, planner settings).
    temp = temp_written_bytes(engine, report.sql, request.sql_params(), report.transaction_settings())
    floor_temp = temp_written_bytes(engine, FLOOR_SQL, floor_params, FLOOR_SETTINGS)
    fact_rows = 0

    def floor() -> None:
        run_floor(engine, floor_params)

    def full_run() -> None:
        nonlocal fact_rows
        result = executor.execute(engine, request)
        assert result.succeeded, result.error_message
        fact_rows = result.fact_rows

    if warm_up:
        floor()
        full_run()
    floor_times, run_times = [], []
    for _ in range(repeats):
        floor_times.append(timed(floor))
        run_times.append(timed(full_run))
    round_ratio = statistics.median(run / floor for run, floor in zip(run_times, floor_times, strict=True))
    return Figures(report, median_ms(run_times), median_ms(floor_times), temp, floor_temp, fact_rows, round_ratio)


def print_size(tenant: seed.SeededTenant, figures: list[Figures], repeats: int) -> None:
    print(f"#### {tenant.deals:,} deals, {tenant.history_rows:,} history rows (medians of {repeats})\n")
    temp_goal = tenant.deals >= 1_000_000
    rows = [
        [
            f.report.report_type,
            f.run_ms,
            f.floor_ms,
            f.ratio,
            verdict(f.ratio, RATIO_GOAL),
            f.round_ratio,
            f.temp_bytes / 1e6,
            verdict(f.temp_bytes / 1e6, TEMP_GOAL_MB) if temp_goal else "",
            f.fact_rows,
        ]
        for f in figures
    ]
    headers = [
        "report",
        "run ms",
        "floor ms",
        "run / floor",
        "≤ 1.5",
        "per round",
        "temp MB",
        "≤ 100 MB at 1M",
        "fact rows",
    ]
    print_table(headers, rows)
    floor_temp = max(f.floor_temp_bytes for f in figures) / 1e6
    rss = peak_rss_mb()
    print(f"Scan floor's own temp writes: {floor_temp:.1f} MB.")
    print(f"Peak RSS of this process so far: {rss:.0f} MB (goal ≤ {RSS_GOAL_MB} MB: {verdict(rss, RSS_GOAL_MB)}).\n")


def history_indexes(engine: Engine) -> list[str]:
    """The indexes on crm.deal_history: the opt-in covering index changes every figure here."""
    with engine.connect() as conn:
        return list(conn.scalars(text(HISTORY_INDEXES)))


def run(sizes: list[int], repeats: int, warm_up: bool = True) -> None:
    engine = database_engine(BENCH_DATABASE)
    ensure_fact_tables(engine)
    print("### Reports against the scan floor\n")
    print("Temp bytes: EXPLAIN (ANALYZE, BUFFERS) of the report's statement, temp written blocks x block size.\n")
    for deals in sizes:
        (tenant,) = seed.seed(engine, tenants=1, deals_per_tenant=deals, random_seed=SEED_OF_SIZE.get(deals, deals))
        indexes = history_indexes(engine)
        figures = [measure(engine, report, tenant.tenant_id, repeats, warm_up) for report in registry().values()]
        print_size(tenant, figures, repeats)
        print(f"Indexes on crm.deal_history: {', '.join(indexes)}.\n")
        if history_indexes(engine) != indexes:
            print(f"**They changed during the measurement**, to {', '.join(history_indexes(engine))}.\n")
    engine.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--deals", type=int, nargs="+", default=[100_000, 1_000_000])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument(
        "--no-warm-up",
        dest="warm_up",
        action="store_false",
        help="time from the first round (EXPLAIN warms the cache)",
    )
    parser.add_argument("--quick", action="store_true", help="the 1,000-deal tenant, 1 repeat")
    args = parser.parse_args()
    if args.quick:
        args.deals, args.repeats = [1000], 1
    run(args.deals, args.repeats, args.warm_up)


if __name__ == "__main__":
    main()
