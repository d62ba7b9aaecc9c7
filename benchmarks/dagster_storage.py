"""One batch run in-process, Dagster's storage on PostgreSQL: plain dagster-postgres vs the project's pooled storage.

    python -m benchmarks.dagster_storage [--tenants 100] [--repeats 3]

On a throwaway world of benchmarks.dagster_ops (a seeded report database and a Dagster storage database on the
server of DYNO_DATABASE_URL, or postgres@127.0.0.1:5432; both dropped at the end): --tenants tenants of 300 deals
(seed 3). The run is a weekly tick's batch: pipeline_overview and stage_conversion for every tenant and the week
of 2025-06-23, one `materialize()` with the partition range tags. The same run on two instances over the same
storage database, alternately: `storage: postgres` (dagster-postgres: a connection per stored event) and the
project's dagster.yaml (`PooledPostgresStorage`). Medians; ms per partition include the run's creation (one
planned event per partition) and the reports' SQL.
"""

import argparse
import os
import shutil
import statistics
import tempfile
import time
import warnings
from pathlib import Path

from benchmarks.dagster_ops.runs import seed_and_register
from benchmarks.dagster_ops.world import START_DATE, World, create_databases, drop_databases, new_world

WEEK = "2025-06-23"
REPORTS = ("pipeline_overview", "stage_conversion")
QUIET = {"loggers": {"console": {"config": {"log_level": "ERROR"}}}}
PLAIN_STORAGE = "storage:\n  postgres:\n    postgres_url: {env: DAGSTER_POSTGRES_URL}\ntelemetry:\n  enabled: false\n"


def batch_run(world: World, instance, tenants: list[str]) -> float:
    """Seconds of one materialize() of REPORTS over the tenants' range for WEEK on `instance`."""
    from dagster import AssetKey, materialize

    from dyno_reports.dagster_defs.assets import report_assets
    from dyno_reports.dagster_defs.io_manager import ReportRunIOManager
    from dyno_reports.dagster_defs.resources import ReportDatabase

    url = world.report_url.render_as_string(hide_password=False)
    assets = [a for a in report_assets(START_DATE) if a.key in {AssetKey(r) for r in REPORTS}]
    resources = {"dyno_db": ReportDatabase(database_url=url), "report_io_manager": ReportRunIOManager(database_url=url)}
    tags = {
        "dagster/asset_partition_range_start": f"{WEEK}|{tenants[0]}",
        "dagster/asset_partition_range_end": f"{WEEK}|{tenants[-1]}",
    }
    started = time.perf_counter()
    result = materialize(assets, instance=instance, resources=resources, tags=tags, run_config=QUIET)
    assert result.success
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tenants", type=int, default=100)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    warnings.simplefilter("ignore")
    world = new_world(os.environ.get("DYNO_DATABASE_URL") or "postgresql://postgres@127.0.0.1:5432/postgres")
    plain_home = Path(tempfile.mkdtemp(prefix="dagster_plain_home_"))
    try:
        create_databases(world)  # the project's dagster.yaml in world.home; world.instance on it
        seed_and_register(world, args.tenants, 300, random_seed=3)
        tenants = world.instance.get_dynamic_partitions("tenant")  # registration order, as the ranges follow
        plain_home.joinpath("dagster.yaml").write_text(PLAIN_STORAGE)
        from dagster import DagsterInstance

        instances = {"plain dagster-postgres": DagsterInstance.from_config(str(plain_home)), "pooled": world.instance}
        for instance in instances.values():
            batch_run(world, instance, tenants)  # warm up
        seconds: dict[str, list[float]] = {name: [] for name in instances}
        for _ in range(args.repeats):
            for name, instance in instances.items():
                seconds[name].append(batch_run(world, instance, tenants))
        partitions = len(tenants) * len(REPORTS)
        print(
            f"One batch run of {partitions} partitions ({len(tenants)} tenants x {len(REPORTS)} reports), "
            f"in-process; medians of {args.repeats}, alternating\n"
        )
        print("| Dagster storage | run s | ms per partition |\n|---|---:|---:|")
        for name, values in seconds.items():
            median = statistics.median(values)
            print(f"| {name} | {median:.2f} | {median / partitions * 1000:.1f} |")
        instances["plain dagster-postgres"].dispose()
    finally:
        drop_databases(world)
        shutil.rmtree(world.home, ignore_errors=True)
        shutil.rmtree(plain_home, ignore_errors=True)


if __name__ == "__main__":
    main()
