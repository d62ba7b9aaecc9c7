"""`make dev`: prepare the embedded database and a Dagster home, then run `dagster dev` until stopped.

Steps: resolve the database (DYNO_DATABASE_URL, else the embedded PostgreSQL),
upgrade it, seed demo data when there is no tenant yet, create a `dagster`
database on the same server for Dagster's own storage, write
`.dyno/dagster_home/dagster.yaml`, register the tenants as partitions, and run
`dagster dev -w workspace.yaml` in a process group of its own. The partitions
start at the demo history's first month unless DYNO_DAGSTER_START_DATE says
otherwise. Ctrl-C, SIGTERM
or SIGHUP stop that whole group (webserver, daemon, code servers, runs) within
seconds: SIGINT, then SIGTERM, then SIGKILL (`dyno_reports.process_group`).
The embedded PostgreSQL keeps running for later commands unless `--stop-db` is
given; the last line printed says how to stop it.
"""

import contextlib
import os
import shutil
import signal
import sys
from pathlib import Path

from sqlalchemy import func, select
from sqlalchemy.engine import URL

from dyno_reports import config, db, process_group, seed
from dyno_reports.storage import migrate
from dyno_reports.storage.tables import tenant

PROJECT = Path(__file__).resolve().parents[2]
# The seeded demo history's periods must be partitions, though the rolling default
# start would leave them out.
DEMO_START_DATE = seed.DEFAULT_START.date().isoformat()


def dagster_storage_env(url: URL) -> dict[str, str]:
    """DAGSTER_POSTGRES_URL (read by dagster.yaml): a `dagster` database (DYNO_DAGSTER_DATABASE) next to
    `url`'s, psycopg2 scheme."""
    storage = db.psycopg2_url(url).set(database=config.dagster_database())
    return {"DAGSTER_POSTGRES_URL": storage.render_as_string(hide_password=False)}


def prepare(echo=print) -> dict[str, str]:
    """Everything but starting Dagster; returns the environment for `dagster dev`."""
    url = db.resolve_database_url()
    engine = db.get_engine()
    echo(f"database: {url.render_as_string(hide_password=True)} at revision {migrate.upgrade(engine)}")
    with engine.connect() as conn:
        tenants = conn.execute(select(func.count()).select_from(tenant)).scalar_one()
    url_text = url.render_as_string(hide_password=False)
    env = {"DYNO_DAGSTER_START_DATE": DEMO_START_DATE, **os.environ, "DYNO_DATABASE_URL": url_text}
    if not tenants:
        echo("no tenants yet: seeding demo data (as `dyno-reports seed` does)")
        seed.seed(engine, progress=echo)
    db.ensure_database(url, config.dagster_database())
    home = config.data_dir() / "dagster_home"
    home.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(PROJECT / "dagster.yaml", home / "dagster.yaml")
    env.update(dagster_storage_env(url), DAGSTER_HOME=str(home))
    os.environ.update({k: v for k, v in env.items() if k.startswith(("DAGSTER_", "DYNO_"))})
    from dyno_reports.dagster_defs.tenants import sync_tenants_from_environment

    echo(f"DAGSTER_HOME={home}: {len(sync_tenants_from_environment())} tenant partition(s) added")
    return env


def main(argv: list[str] | None = None) -> None:
    """`python -m dyno_reports.dagster_defs.dev [--stop-db] [dagster dev options, e.g. -p 3001]`."""
    args = list(sys.argv[1:] if argv is None else argv)
    stop_db = "--stop-db" in args
    args = [a for a in args if a != "--stop-db"]
    embedded = config.database_url() is None  # read before prepare() sets DYNO_DATABASE_URL
    env = prepare()
    dagster = Path(sys.executable).with_name("dagster")
    # cwd is DAGSTER_HOME, not the checkout: its template dagster.yaml would draw a warning
    status, received = process_group.run_until_signalled(
        [str(dagster), "dev", "-w", str(PROJECT / "workspace.yaml"), *args],
        env=env,
        cwd=env["DAGSTER_HOME"],
        echo=lambda line: print(f"stopping dagster dev: {line}", file=sys.stderr, flush=True),
    )
    _print(f"dagster dev stopped ({signal.Signals(received).name})" if received else f"dagster dev exited ({status})")
    if embedded:
        _after_embedded(stop_db)
    if received:  # end as the signal would have ended us, so make and shells see an interrupt
        signal.signal(received, signal.SIG_DFL)
        os.kill(os.getpid(), received)
    sys.exit(status if status >= 0 else 128 - status)  # killed by a signal: the shell's convention


def _print(line: str) -> None:
    """Print, unless the reader is gone (Ctrl-C also ends the `tee` of `make dev | tee`)."""
    with contextlib.suppress(OSError):
        print(line, flush=True)


def _after_embedded(stop_db: bool) -> None:
    if stop_db:
        _print("embedded PostgreSQL stopped" if db.stop_embedded() else "embedded PostgreSQL was not running")
    else:
        _print(
            f"embedded PostgreSQL still running in {config.data_dir()}: stop it with `make stop-db` "
            "(or `.venv/bin/dyno-reports db stop`)"
        )


if __name__ == "__main__":
    main()
