"""The CLI's fixed cost: `dyno-reports run` on a 40-deal tenant vs a bare Python process that connects and SELECTs 1.

    python -m benchmarks.performance.cli_cost [--runs 11] [--report pipeline_overview] [--quick]

On the `dyno_bench_fleet` database (migrated; its 40-deal tenant seeded on first use). The commands
run as subprocesses with this interpreter, alternately, --runs times each after one warm-up of each;
medians of wall time. The bare process imports SQLAlchemy and psycopg, connects with psycopg and
runs `SELECT 1`: the least any Python client of the server pays; the same client loading its imports with
the cyclic GC paused, as `dyno-reports run` does, is timed too (informative). Then one `python -X importtime`
run of the same command lists the top-level imports on the run path (informative: importtime adds
its own overhead).
"""

import argparse
import os
import subprocess
import sys
from pathlib import Path

from benchmarks.performance.common import (
    FLEET_DATABASE,
    database_engine,
    median_ms,
    period_of,
    print_table,
    small_tenant,
    timed,
    verdict,
)
from dyno_reports.reports import get_report
from dyno_reports.storage import db, migrate

CONNECT_AND_SELECT = (
    "with psycopg.connect(os.environ['BENCH_LIBPQ_URL']) as conn:\n    conn.execute('SELECT 1').fetchone()\n"
)
BARE_CLIENT = "import os, sqlalchemy, psycopg\n" + CONNECT_AND_SELECT
# The same client loading its imports as `dyno-reports run` loads its own (cyclic GC paused, then frozen):
# informative, what the run costs beyond a client that spares itself the same collections.
BARE_CLIENT_GC_PAUSED = (
    "import gc, os\ngc.disable()\nimport sqlalchemy, psycopg\ngc.freeze()\ngc.enable()\n" + CONNECT_AND_SELECT
)
RATIO_GOAL = 1.3
TOP_IMPORTS = 10
# Packages the run path should not need (issue 10): their presence is printed, not judged.
WATCHED_PACKAGES = ("alembic", "dagster", "pydantic", "sqlalchemy", "psycopg", "click", "dateutil")


def commands(report_type: str, tenant_id: str) -> tuple[list[str], list[str], list[str]]:
    """(the CLI run, the bare client, the bare client with the GC paused) as argument lists for this
    interpreter's environment."""
    start, end = period_of(get_report(report_type))
    script = str(Path(sys.executable).parent / "dyno-reports")
    cli = [script, "run", report_type, "--tenant", tenant_id]
    cli += ["--period-start", start.isoformat(), "--period-end", end.isoformat()]
    return cli, [sys.executable, "-c", BARE_CLIENT], [sys.executable, "-c", BARE_CLIENT_GC_PAUSED]


def run_checked(argv: list[str], env: dict[str, str]) -> subprocess.CompletedProcess:
    done = subprocess.run(argv, env=env, capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"{argv[0]} exited {done.returncode}: {done.stderr.strip() or done.stdout.strip()}")
    return done


def import_times(cli: list[str], env: dict[str, str]) -> tuple[float, list[tuple[str, float]]]:
    """(total import ms, [(top-level package, ms)] largest first): the self times of the run's imports
    summed per top-level package (`sqlalchemy.orm.query` counts for `sqlalchemy`)."""
    done = run_checked([sys.executable, "-X", "importtime", *cli], env)
    per_package: dict[str, float] = {}
    for line in done.stderr.splitlines():
        fields = line.removeprefix("import time:").split("|")
        if not line.startswith("import time:") or len(fields) != 3 or not fields[0].strip().isdigit():
            continue
        package = fields[2].strip().split(".")[0]
        per_package[package] = per_package.get(package, 0.0) + int(fields[0]) / 1000
    ranked = sorted(per_package.items(), key=lambda item: -item[1])
    return sum(per_package.values()), ranked


def run(runs: int, report_type: str) -> None:
    engine = database_engine(FLEET_DATABASE)
    migrate.upgrade(engine)
    tenant = small_tenant(engine)
    env = dict(os.environ)
    env["DYNO_DATABASE_URL"] = engine.url.render_as_string(hide_password=False)
    env["BENCH_LIBPQ_URL"] = db.libpq_url(engine.url)
    engine.dispose()
    argvs = commands(report_type, str(tenant.tenant_id))
    for argv in argvs:  # warm-up
        run_checked(argv, env)
    times: list[list[float]] = [[] for _ in argvs]
    for _ in range(runs):
        for argv, measured in zip(argvs, times, strict=True):
            measured.append(timed(lambda argv=argv: run_checked(argv, env)))
    cli_ms, bare_ms, paused_ms = (median_ms(measured) for measured in times)
    print(f"### CLI fixed cost ({report_type}, tenant of {tenant.deals} deals, medians of {runs})\n")
    rows = [
        [f"`dyno-reports run {report_type}`", cli_ms],
        ["bare: import sqlalchemy, psycopg; connect; SELECT 1", bare_ms],
        ["bare, its imports loaded with the GC paused and frozen (as the CLI does)", paused_ms],
    ]
    print_table(["process", "wall ms"], rows)
    ratio = cli_ms / bare_ms
    print(f"Ratio CLI / bare: {ratio:.2f} (goal ≤ {RATIO_GOAL}: {verdict(ratio, RATIO_GOAL)}).")
    print(f"Ratio CLI / bare with the GC paused: {cli_ms / paused_ms:.2f} (informative).\n")
    total, ranked = import_times(argvs[0], env)
    print(f"`python -X importtime` of the run: {total:.0f} ms of imports; by top-level package:\n")
    print_table(["package", "import ms"], [[f"`{name}`", ms] for name, ms in ranked[:TOP_IMPORTS]])
    imported = dict(ranked)
    print("On the run path: " + ", ".join(f"{p} {'yes' if p in imported else 'no'}" for p in WATCHED_PACKAGES) + "\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=11)
    parser.add_argument("--report", default="pipeline_overview")
    parser.add_argument("--quick", action="store_true", help="3 runs of each")
    args = parser.parse_args()
    run(3 if args.quick else args.runs, args.report)


if __name__ == "__main__":
    main()
