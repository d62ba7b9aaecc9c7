"""What `recorded_at <= K` costs each report: its statement with and without the predicate, side by side.

    python -m benchmarks.performance.known_at_cost [--deals 100000 1000000] [--repeats 7] [--reports a,b]
        [--database dyno_bench]

On the `dyno_bench` tenants of scan_floor (seeded there). For each report: whether the planner keeps the same
plan shape with and without the predicate, one warm-up of each, then --repeats rounds of the scan floor with and
without the predicate and the full executor run with it (the report as defined) and without it (the same
definition with KNOWN_PREDICATE removed from its statement: the statement before issue 23). Each round runs the
four in a rotated order, so a drift in the machine's load reaches all four alike. Medians; "per round" = the
median of each round's with / without (the goal: ≤ 1.05), steadier than the ratio of medians on a loaded
machine; "cost / floor" = the median of each round's (run with K - run without) / floor without: the same cost
as a share of the scan floor.
"""

import argparse
import dataclasses
import json
import statistics
from collections.abc import Callable
from typing import Any

from sqlalchemy import Engine, text

from benchmarks.performance.common import (
    BENCH_DATABASE,
    database_engine,
    ensure_fact_tables,
    median_ms,
    period_of,
    print_table,
    request_for,
    timed,
    verdict,
)
from benchmarks.performance.scan_floor import FLOOR_SETTINGS, FLOOR_SQL, SEED_OF_SIZE, run_floor, set_local
from dyno_reports.devtools import seed
from dyno_reports.engine import executor
from dyno_reports.reports import registry

# The line sql_common.KNOWN_ROWS adds to every report's history read, and the floor's equivalent.
KNOWN_PREDICATE = "\n      AND h.recorded_at <= CAST(:known_at AS timestamptz)"
FLOOR_PREDICATE = " AND recorded_at <= :K"
COST_GOAL = 1.05  # the predicate costs a report at most 5 %


def plan_shape(engine: Engine, sql: str, params: dict, settings: dict[str, str]) -> list[str]:
    """The plan's node types and index names, depth first: what would change if the predicate changed the plan."""
    with engine.connect() as conn, conn.begin():
        set_local(conn, settings)
        plan = conn.execute(text("EXPLAIN (FORMAT JSON) " + sql), params).scalar_one()
    plan = json.loads(plan) if isinstance(plan, str) else plan

    def walk(node: dict[str, Any]) -> list[str]:
        own = [f"{node['Node Type']}:{node.get('Index Name', '')}"]
        return own + [shape for child in node.get("Plans", []) for shape in walk(child)]

    return walk(plan[0]["Plan"])


def rounds(steps: dict[str, Callable[[], object]], repeats: int) -> dict[str, list[float]]:
    """One warm-up of each step, then `repeats` rounds of all of them, the order rotated each round."""
    for step in steps.values():
        step()
    names = list(steps)
    times: dict[str, list[float]] = {name: [] for name in names}
    for i in range(repeats):
        for name in names[i % len(names) :] + names[: i % len(names)]:
            times[name].append(timed(steps[name]))
    return times


def per_round(times: dict[str, list[float]], a: str, b: str) -> float:
    """The median of each round's a / b."""
    return statistics.median(x / y for x, y in zip(times[a], times[b], strict=True))


def cost_of_floor(times: dict[str, list[float]]) -> float:
    """The median of each round's (run with K - run without) / floor without: the predicate's cost as a share of
    the scan floor."""
    rounds_ = zip(times["run K"], times["run"], times["floor"], strict=True)
    return statistics.median((with_k - without) / floor for with_k, without, floor in rounds_)


def compare(engine: Engine, report_type: str, tenant_id, repeats: int) -> list[object]:
    report = registry()[report_type]
    assert report.sql.count(KNOWN_PREDICATE) == 1, f"{report_type}: the predicate is not where this expects it"
    request = request_for(engine, report, tenant_id)
    without = dataclasses.replace(
        request, report=dataclasses.replace(report, sql=report.sql.replace(KNOWN_PREDICATE, ""))
    )
    floor_with = {"t": tenant_id, "E": period_of(report)[1], "K": request.known_at}
    settings = report.transaction_settings()
    same_plan = plan_shape(engine, report.sql, request.sql_params(), settings) == plan_shape(
        engine, without.report.sql, request.sql_params(), settings
    )
    floor_without_sql = text(FLOOR_SQL.replace(FLOOR_PREDICATE, ""))

    def floor_without() -> None:
        with engine.connect() as conn, conn.begin():
            set_local(conn, FLOOR_SETTINGS)
            conn.execute(floor_without_sql, floor_with).all()

    times = rounds(
        {
            "floor": floor_without,
            "floor K": lambda: run_floor(engine, floor_with),
            "run": lambda: executor.execute(engine, without),
            "run K": lambda: executor.execute(engine, request),
        },
        repeats,
    )
    ms = {name: median_ms(values) for name, values in times.items()}
    return [
        report_type,
        ms["run"],
        ms["run K"],
        ms["run K"] / ms["run"],
        per_round(times, "run K", "run"),
        verdict(per_round(times, "run K", "run"), COST_GOAL),
        cost_of_floor(times),
        ms["floor"],
        ms["floor K"],
        per_round(times, "floor K", "floor"),
        ms["run K"] / ms["floor K"],
        "same" if same_plan else "**changed**",
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--deals", type=int, nargs="+", default=[100_000, 1_000_000])
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--reports", default=",".join(sorted(registry())))
    parser.add_argument("--database", default=BENCH_DATABASE)
    args = parser.parse_args()
    engine = database_engine(args.database)
    ensure_fact_tables(engine)
    headers = [
        "report",
        "run ms",
        "run ms, K",
        "K / without",
        "per round",
        "≤ 1.05",
        "cost / floor",
        "floor ms",
        "floor ms, K",
        "floor per round",
        "run / floor, K",
        "plan",
    ]
    for deals in args.deals:
        (tenant,) = seed.seed(engine, tenants=1, deals_per_tenant=deals, random_seed=SEED_OF_SIZE.get(deals, deals))
        rows = [compare(engine, name, tenant.tenant_id, args.repeats) for name in args.reports.split(",")]
        print(f"#### {tenant.deals:,} deals, {tenant.history_rows:,} history rows (medians of {args.repeats})\n")
        print_table(headers, rows)
    engine.dispose()


if __name__ == "__main__":
    main()
