"""python -m benchmarks.dagster_ops [--quick] [--no-kill]: see the package docstring."""

import argparse
import os
import shutil
import time
import warnings
from dataclasses import dataclass

from benchmarks import dagster_ops
from benchmarks.dagster_ops.kill import kill_scenario
from benchmarks.dagster_ops.runs import seed_and_register
from benchmarks.dagster_ops.scenarios import backfill_scenario, scale_scenario, tick_scenario
from benchmarks.dagster_ops.table import Table
from benchmarks.dagster_ops.world import World, create_databases, drop_databases, new_world, start_dagster, stop_dagster

DEFAULT_SERVER = "postgresql://postgres@127.0.0.1:5432/postgres"


@dataclass(frozen=True)
class Sizes:
    big_deals: int = 20_000
    weeks: int = 26
    small_tenants: int = 200
    small_deals: int = 300
    tick_tenants: int = 2_000
    repeats: int = 3


QUICK = Sizes(big_deals=4_000, weeks=8, small_tenants=20, small_deals=100, repeats=2)


def run_scenarios(world: World, sizes: Sizes, kill: bool, table: Table) -> None:
    started = time.perf_counter()
    small = seed_and_register(world, sizes.small_tenants, sizes.small_deals, random_seed=3)
    print(
        f"seeded {len(small)} tenants of {sizes.small_deals} deals in {time.perf_counter() - started:.1f} s", flush=True
    )
    started = time.perf_counter()
    start_dagster(world)
    print(
        f"dagster dev up (webserver :{world.port}, daemon, code location) in {time.perf_counter() - started:.1f} s",
        flush=True,
    )
    creation = tick_scenario(world, small, table)
    print("tick scenario done", flush=True)
    started = time.perf_counter()
    (big,) = seed_and_register(world, 1, sizes.big_deals, random_seed=sizes.big_deals)
    print(f"seeded 1 tenant of {sizes.big_deals:,} deals in {time.perf_counter() - started:.1f} s", flush=True)
    backfill_scenario(world, big, sizes.big_deals, sizes.weeks, table)
    print("backfill scenario done", flush=True)
    if kill:
        kill_scenario(world, big, sizes.weeks, table)
        print("kill scenario done", flush=True)
    scale_scenario(world, sizes.tick_tenants, sizes.repeats, creation, table)


def main() -> None:
    parser = argparse.ArgumentParser(description=dagster_ops.__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sizes (a smoke run of every scenario)")
    parser.add_argument("--no-kill", action="store_true", help="skip the kill scenario (waits on run monitoring)")
    args = parser.parse_args()
    warnings.simplefilter("ignore")
    sizes = QUICK if args.quick else Sizes()
    world = new_world(os.environ.get("DYNO_DATABASE_URL") or DEFAULT_SERVER)
    table = Table()
    print(
        f"databases {world.report_db}, {world.dagster_db} on {world.server.render_as_string(hide_password=True)}; "
        f"DAGSTER_HOME {world.home}",
        flush=True,
    )
    try:
        create_databases(world)
        run_scenarios(world, sizes, not args.no_kill, table)
    finally:
        if table.rows:
            table.print()
        try:
            leftover = stop_dagster(world)
            print(
                f"dagster dev stopped; {len(leftover)} of its processes outlived it and were killed"
                f"{': ' if leftover else ''}{'; '.join(leftover)}",
                flush=True,
            )
        finally:
            drop_databases(world)
            shutil.rmtree(world.home, ignore_errors=True)
            print("both databases dropped, DAGSTER_HOME removed", flush=True)


if __name__ == "__main__":
    main()
