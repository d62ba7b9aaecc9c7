"""Each report with and without its candidate planner settings, side by side against the scan floor.

    python -m benchmarks.performance.planner_settings [--deals 100000] [--repeats 5] [--reports a,b] [--variants a,b]

On the `dyno_bench` tenants of scan_floor (seeded there). For each report: the temp bytes of its statement under
each variant, then --repeats rounds alternating the scan floor and one full executor run per variant (the report's
definition with `planner_settings` replaced by the variant's). Medians of wall time, ratio to the floor. How the
reports' `planner_settings` were chosen (sql_common.ORDERED_PASS; each report's design details, "Planner settings").
"""

import argparse
import dataclasses

from benchmarks.performance.common import (
    BENCH_DATABASE,
    database_engine,
    median_ms,
    period_of,
    print_table,
    request_for,
    timed,
)
from benchmarks.performance.scan_floor import SEED_OF_SIZE, run_floor, temp_written_bytes
from dyno_reports.devtools import seed
from dyno_reports.engine import executor
from dyno_reports.reports import registry

VARIANTS: dict[str, tuple[tuple[str, str], ...]] = {
    "none": (),
    "no sort": (("enable_sort", "off"),),
    "no seq/bitmap scan": (("enable_seqscan", "off"), ("enable_bitmapscan", "off")),
}


def compare(engine, report_type: str, tenant_id, variants: list[str], repeats: int) -> list[list[object]]:
    base = registry()[report_type]
    request = request_for(engine, base, tenant_id)
    floor_params = {"t": tenant_id, "E": period_of(base)[1], "K": request.known_at}
    requests = {
        v: dataclasses.replace(request, report=dataclasses.replace(base, planner_settings=VARIANTS[v]))
        for v in variants
    }

    temps = {
        v: temp_written_bytes(engine, base.sql, request.sql_params(), r.report.transaction_settings())
        for v, r in requests.items()
    }
    floors: list[float] = []
    runs: dict[str, list[float]] = {v: [] for v in variants}
    for _ in range(repeats):
        floors.append(timed(lambda: run_floor(engine, floor_params)))
        for v, r in requests.items():
            runs[v].append(timed(lambda r=r: executor.execute(engine, r)))
    floor_ms = median_ms(floors)
    return [
        [report_type, v, median_ms(runs[v]), floor_ms, median_ms(runs[v]) / floor_ms, temps[v] / 1e6] for v in variants
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--deals", type=int, default=100_000)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--reports", default=",".join(sorted(registry())))
    parser.add_argument("--variants", default=",".join(VARIANTS))
    args = parser.parse_args()
    engine = database_engine(BENCH_DATABASE)
    (tenant,) = seed.seed(
        engine, tenants=1, deals_per_tenant=args.deals, random_seed=SEED_OF_SIZE.get(args.deals, args.deals)
    )
    rows = []
    for report_type in args.reports.split(","):
        rows += compare(engine, report_type, tenant.tenant_id, args.variants.split(","), args.repeats)
    print(f"#### {tenant.deals:,} deals, medians of {args.repeats}, alternating\n")
    print_table(["report", "planner settings", "run ms", "floor ms", "run / floor", "temp MB"], rows)
    engine.dispose()


if __name__ == "__main__":
    main()
