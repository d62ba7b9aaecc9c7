"""python -m benchmarks.dagster_ops.stale_refresh: from a backdated insert to a refreshed SUCCEEDED run.

Under `dagster dev` (webserver, daemon, the code location, this repository's dagster.yaml) on throwaway
databases: 200 seeded tenants, registered, each with a SUCCEEDED pipeline_overview run of its last two
closed weeks (made by the executor, as the CLI does). The stale sensor ticks every
`--interval` seconds (DYNO_STALE_SENSOR_SECONDS). Then, `--repeats` times, a backdated row for one tenant
(valid_from inside the older week, written now) and the time until Dagster created the refresh run (the
next tick), until that run ended SUCCESS and its partitions' report_run headers were SUCCEEDED. The CRM's
longest write is set to 0 here (DYNO_CRM_MAX_WRITE_SECONDS): with its default of 10 minutes the sensor waits
until the row is that old (a refresh before would not see it), which adds up to 10 minutes to the figures.
"""

import argparse
import itertools
import os
import random
import shutil
import statistics
import time
import uuid
import warnings
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from sqlalchemy import insert, select

from benchmarks.dagster_ops.runs import seed_and_register
from benchmarks.dagster_ops.world import (
    World,
    create_databases,
    drop_databases,
    new_world,
    start_dagster,
    stop_dagster,
    wait_for,
)
from dyno_reports.engine import executor, run_request
from dyno_reports.storage.tables import deal_history, report_run

REPORT = "pipeline_overview"
DEFAULT_SERVER = "postgresql://postgres@127.0.0.1:5432/postgres"


def last_weeks(now: datetime, count: int) -> list[datetime]:
    monday = datetime.combine(now.date() - timedelta(days=now.weekday()), datetime.min.time(), UTC)
    return [monday - k * timedelta(weeks=1) for k in range(count, 0, -1)]


def first_runs(world: World, tenants: list[str], weeks: list[datetime]) -> None:
    engine = world.engine
    assert engine is not None
    with engine.connect() as conn:
        for tenant_id in tenants:
            for week in weeks:
                request = run_request.build_request(
                    conn, REPORT, tenant_id, period_start=week, period_end=week + timedelta(weeks=1)
                )
                conn.rollback()
                executor.execute(engine, request, connection=conn)


def backdate(world: World, tenant_id: str, valid_from: datetime) -> None:
    """A correction of one of the tenant's deals dated `valid_from`, written now."""
    assert world.engine is not None
    tenant = uuid.UUID(tenant_id)
    with world.engine.begin() as conn:
        row = conn.execute(select(deal_history).where(deal_history.c.tenant_id == tenant).limit(1)).one()
        values = dict(row._mapping) | {"valid_from": valid_from, "amount": Decimal("123456.00")}
        values.pop("recorded_at")  # the server's now(): written now
        conn.execute(insert(deal_history).values(**values))


def refresh_run(world: World, tenant_id: str) -> object:
    from dagster import RunsFilter

    runs = world.instance.get_runs(RunsFilter(tags={"dyno/reason": "stale"}))
    return next((run for run in runs if tenant_id in run.tags.get("dagster/asset_partition_range_start", "")), None)


def refreshed(world: World, tenant_id: str, dagster_run_id: str) -> bool:
    assert world.engine is not None
    with world.engine.connect() as conn:
        statuses = conn.execute(
            select(report_run.c.status).where(
                report_run.c.tenant_id == uuid.UUID(tenant_id), report_run.c.dagster_run_id == dagster_run_id
            )
        ).scalars().all()  # fmt: skip
    return bool(statuses) and all(status == "SUCCEEDED" for status in statuses)


def measure(world: World, tenant_id: str, week: datetime) -> tuple[float, float]:
    started = time.monotonic()
    backdate(world, tenant_id, week + timedelta(days=1, microseconds=random.randrange(10**6)))
    run = wait_for(lambda: refresh_run(world, tenant_id), 600, "the refresh run")
    requested = time.monotonic()
    done = wait_for(
        lambda: (
            (r := world.instance.get_run_by_id(run.run_id)).status.value in ("SUCCESS", "FAILURE", "CANCELED") and r
        ),
        600,
        "the refresh run to end",
    )
    assert done.status.value == "SUCCESS", done.status
    wait_for(lambda: refreshed(world, tenant_id, run.run_id), 60, "the refreshed headers")
    return requested - started, time.monotonic() - requested


def tick_seconds(world: World) -> list[tuple[float, float]]:
    """(start, evaluation seconds) of each tick of the stale sensor, oldest first."""
    from dagster._core.scheduler.instigation import InstigatorType

    from dyno_reports.dagster_defs.freshness import SENSOR_NAME

    states = world.instance.all_instigator_state(instigator_type=InstigatorType.SENSOR)
    state = next(s for s in states if s.instigator_name == SENSOR_NAME)
    ticks = world.instance.get_ticks(state.instigator_origin_id, state.selector_id, limit=100)
    return sorted((t.timestamp, (t.end_timestamp or t.timestamp) - t.timestamp) for t in ticks)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tenants", type=int, default=200)
    parser.add_argument("--deals", type=int, default=30)
    parser.add_argument("--interval", type=int, default=30, help="the stale sensor's interval, seconds (>= 30)")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    warnings.simplefilter("ignore")
    os.environ |= {"DYNO_STALE_SENSOR_SECONDS": str(args.interval), "DYNO_CRM_MAX_WRITE_SECONDS": "0"}
    world = new_world(os.environ.get("DYNO_DATABASE_URL") or DEFAULT_SERVER)
    try:
        create_databases(world)
        tenants = seed_and_register(world, args.tenants, args.deals, random_seed=5)
        weeks = last_weeks(datetime.now(UTC), 2)
        first_runs(world, tenants, weeks)
        start_dagster(world)
        time.sleep(args.interval + 5)  # the sensor's first tick: the check's catch-up, nothing stale
        figures = [measure(world, tenant_id, weeks[0]) for tenant_id in random.sample(tenants, args.repeats)]
        for n, (to_request, to_success) in enumerate(figures, start=1):
            print(f"refresh {n}: insert -> run created {to_request:.1f} s, created -> SUCCESS {to_success:.1f} s")
        ticks = tick_seconds(world)
        print(
            f"stale sensor ticks: {len(ticks)}, evaluation median {statistics.median(d for _, d in ticks):.2f} s, "
            f"max {max(d for _, d in ticks):.2f} s; start to start median "
            f"{statistics.median(b[0] - a[0] for a, b in itertools.pairwise(ticks)):.1f} s"
        )
        totals = [a + b for a, b in figures]
        print(
            f"insert -> refreshed SUCCEEDED: median {statistics.median(totals):.1f} s, max {max(totals):.1f} s "
            f"(sensor interval {args.interval} s; {args.tenants} tenants, {2 * args.tenants} runs)"
        )
    finally:
        stop_dagster(world)
        drop_databases(world)
        shutil.rmtree(world.home, ignore_errors=True)


if __name__ == "__main__":
    main()
