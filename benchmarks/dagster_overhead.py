"""Orchestration cost per partition: the executor alone vs Dagster materialisations of the same partitions.

    python -m benchmarks.dagster_overhead [--weeks 8] [--repeats 3]

On the `dyno_bench` database of `benchmarks.report_runs` (same server choice),
with a small tenant (1,000 deals) so that the report's SQL is cheap and the
orchestration shows. Three ways over the same `--weeks` weekly partitions of
pipeline_overview, alternately, medians of --repeats: the executor directly;
one in-process `materialize()` per partition; one `materialize()` for the whole
range (what a per-tenant backfill run does).
"""

import argparse
import statistics
import time
import warnings
from datetime import UTC, date, datetime, timedelta

from dagster import AssetKey, DagsterInstance, materialize

from benchmarks.report_runs import bench_engine
from dyno_reports.dagster_defs.assets import report_assets
from dyno_reports.dagster_defs.io_manager import ReportRunIOManager
from dyno_reports.dagster_defs.resources import ReportDatabase
from dyno_reports.devtools import seed
from dyno_reports.engine import executor, run_request
from dyno_reports.storage import migrate

REPORT = "pipeline_overview"
QUIET = {"loggers": {"console": {"config": {"log_level": "ERROR"}}}}
FIRST_WEEK = date(2025, 4, 7)  # a Monday inside the seeded history


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--weeks", type=int, default=8)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    warnings.simplefilter("ignore")
    engine = bench_engine()
    migrate.upgrade(engine)
    (tenant,) = seed.seed(engine, tenants=1, deals_per_tenant=1000, random_seed=1)
    url = engine.url.render_as_string(hide_password=False)
    weeks = [(FIRST_WEEK + timedelta(weeks=i)).isoformat() for i in range(args.weeks)]
    keys = [f"{w}|{tenant.tenant_id}" for w in weeks]
    asset = next(a for a in report_assets("2025-01-06") if a.key == AssetKey(REPORT))
    resources = {"dyno_db": ReportDatabase(database_url=url), "report_io_manager": ReportRunIOManager(database_url=url)}
    instance = DagsterInstance.ephemeral()
    instance.add_dynamic_partitions("tenant", [str(tenant.tenant_id)])

    def direct():
        for w in weeks:
            start = datetime.fromisoformat(w).replace(tzinfo=UTC)
            with engine.connect() as conn:
                request = run_request.build_request(
                    conn, REPORT, tenant.tenant_id, period_start=start, period_end=start + timedelta(weeks=1)
                )
            assert executor.execute(engine, request).succeeded

    def one_run_per_partition():
        for key in keys:
            assert materialize(
                [asset], partition_key=key, instance=instance, resources=resources, run_config=QUIET
            ).success

    def one_run_for_the_range():
        tags = {"dagster/asset_partition_range_start": keys[0], "dagster/asset_partition_range_end": keys[-1]}
        assert materialize([asset], instance=instance, resources=resources, tags=tags, run_config=QUIET).success

    ways = {
        "executor only": direct,
        "materialize per partition": one_run_per_partition,
        "materialize one range run": one_run_for_the_range,
    }
    for way in ways.values():
        way()  # warm up
    timings: dict[str, list[float]] = {name: [] for name in ways}
    for _ in range(args.repeats):
        for name, way in ways.items():
            started = time.perf_counter()
            way()
            timings[name].append((time.perf_counter() - started) / len(keys) * 1000)
    base = statistics.median(timings["executor only"])
    print(
        f"{len(keys)} weekly partitions of {REPORT}, tenant of {tenant.deals} deals; "
        f"ms per partition (median of {args.repeats})"
    )
    for name, values in timings.items():
        per = statistics.median(values)
        print(f"  {name:<28} {per:8.1f} ms   orchestration {per - base:8.1f} ms")


if __name__ == "__main__":
    main()
