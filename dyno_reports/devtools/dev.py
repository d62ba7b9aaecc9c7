"""`make dev`: prepare the embedded database and a Dagster home, then run `dagster dev` until stopped.

Steps: resolve the database (DYNO_DATABASE_URL, else the embedded PostgreSQL),
upgrade it, seed the demo's tenants when there is no tenant yet (as `dyno-reports
demo` does), create a `dagster` database on the same server for Dagster's own
storage, write `.dyno/dagster_home/dagster.yaml`, register the tenants as
partitions, and run `dagster dev -w workspace.yaml` in a process group of its
own. The partitions start at the first of the month of the earliest
`crm.tenant.created_at` (seeding sets it to the history's start), so they cover
every tenant's history, unless DYNO_DAGSTER_START_DATE says otherwise. Before
all that it takes the Dagster home's lock (`dev_lock`): a second `make dev` on
the same home refuses at once. Ctrl-C, SIGTERM
or SIGHUP stop that whole group (webserver, daemon, code servers, runs) within
seconds: SIGINT, then SIGTERM, then SIGKILL (`dyno_reports.devtools.process_group`).
The embedded PostgreSQL keeps running for later commands unless `--stop-db` is
given; the last line printed says how to stop it.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import sys
from datetime import UTC
from pathlib import Path
from typing import TYPE_CHECKING

# Only light modules here: a second `make dev` refuses within a fraction of a second, before SQLAlchemy,
# Dagster or the reports are imported (by prepare()).
from dyno_reports.core import config
from dyno_reports.devtools import dev_lock, process_group

if TYPE_CHECKING:
    from sqlalchemy import Engine
    from sqlalchemy.engine import URL

PROJECT = Path(__file__).resolve().parents[2]
START_DATE_ENV = "DYNO_DAGSTER_START_DATE"  # partitions.START_DATE_ENV (that module imports Dagster)


def dagster_home() -> Path:
    """`make dev`'s DAGSTER_HOME: `dagster_home` in the data folder (DYNO_DATA_DIR, else `.dyno/`)."""
    return config.data_dir() / "dagster_home"


def partitions_start(engine: Engine) -> str | None:
    """The first of the month of the earliest `crm.tenant.created_at` (ISO date); None without tenants.

    Seeding sets created_at to the start of the tenant's history, so every seeded period is a partition,
    which the rolling default start (12 months back) would not promise."""
    from sqlalchemy import func, select

    from dyno_reports.storage.tables import tenant

    with engine.connect() as conn:
        earliest = conn.execute(select(func.min(tenant.c.created_at))).scalar_one()
    return None if earliest is None else earliest.astimezone(UTC).date().replace(day=1).isoformat()


def dagster_storage_env(url: URL) -> dict[str, str]:
    """DAGSTER_POSTGRES_URL (read by dagster.yaml): a `dagster` database (DYNO_DAGSTER_DATABASE) next to
    `url`'s, psycopg2 scheme."""
    from dyno_reports.storage import db

    storage = db.psycopg2_url(url).set(database=config.dagster_database())
    return {"DAGSTER_POSTGRES_URL": storage.render_as_string(hide_password=False)}


def prepare(echo=print) -> dict[str, str]:
    """Everything but starting Dagster; returns the environment for `dagster dev`."""
    from dyno_reports.devtools import demo
    from dyno_reports.storage import db, migrate

    url = db.resolve_database_url()
    engine = db.get_engine()
    echo(f"database: {url.render_as_string(hide_password=True)} at revision {migrate.upgrade(engine)}")
    start = partitions_start(engine)
    if start is None:
        echo("no tenants yet: seeding the demo's tenants (as `dyno-reports demo` does)")
        demo.seed_demo(engine, progress=echo)
        start = partitions_start(engine)
    if os.environ.get(START_DATE_ENV):
        start = os.environ[START_DATE_ENV]
    else:
        echo(f"partitions from {start}: the month of the earliest tenant's crm.tenant.created_at")
    env = {**os.environ, "DYNO_DATABASE_URL": url.render_as_string(hide_password=False)}
    if start:
        env[START_DATE_ENV] = start
    db.ensure_database(url, config.dagster_database())
    home = dagster_home()
    home.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(PROJECT / "dagster.yaml", home / "dagster.yaml")
    env.update(dagster_storage_env(url), DAGSTER_HOME=str(home))
    os.environ.update({k: v for k, v in env.items() if k.startswith(("DAGSTER_", "DYNO_"))})
    from dyno_reports.dagster_defs.tenants import sync_tenants_from_environment

    echo(f"DAGSTER_HOME={home}: {sync_tenants_from_environment().describe()}")
    return env


def main(argv: list[str] | None = None) -> None:
    """`python -m dyno_reports.devtools.dev [--stop-db] [dagster dev options, e.g. -p 3001]`."""
    args = list(sys.argv[1:] if argv is None else argv)
    stop_db = "--stop-db" in args
    args, url = dev_lock.webserver_args([a for a in args if a != "--stop-db"])
    try:  # before anything starts; held until this process ends
        lock = dev_lock.acquire(dagster_home(), url)
    except dev_lock.DevAlreadyRunning as exc:
        print(f"error: {exc}", file=sys.stderr, flush=True)
        sys.exit(1)
    embedded = config.database_url() is None  # read before prepare() sets DYNO_DATABASE_URL
    env = prepare()
    dagster = Path(sys.executable).with_name("dagster")
    # cwd is DAGSTER_HOME, not the checkout: its template dagster.yaml would draw a warning
    status, received = process_group.run_until_signalled(
        [str(dagster), "dev", "-w", str(PROJECT / "workspace.yaml"), *args],
        env=env,
        cwd=env["DAGSTER_HOME"],
        started=lambda child: _record(lock, child.pid),
        echo=lambda line: print(f"stopping dagster dev: {line}", file=sys.stderr, flush=True),
    )
    _print(f"dagster dev stopped ({signal.Signals(received).name})" if received else f"dagster dev exited ({status})")
    if embedded:
        _after_embedded(stop_db)
    if received:  # end as the signal would have ended us, so make and shells see an interrupt
        signal.signal(received, signal.SIG_DFL)
        os.kill(os.getpid(), received)
    sys.exit(status if status >= 0 else 128 - status)  # killed by a signal: the shell's convention


def _record(lock: dev_lock.DevLock, dagster_dev_group: int) -> None:
    """Name `dagster dev`'s group in the lock file (the next `make dev` checks it if this one is killed)."""
    with contextlib.suppress(OSError):
        lock.record(dagster_dev_group)


def _print(line: str) -> None:
    """Print, unless the reader is gone (Ctrl-C also ends the `tee` of `make dev | tee`)."""
    with contextlib.suppress(OSError):
        print(line, flush=True)


def _after_embedded(stop_db: bool) -> None:
    from dyno_reports.storage import db

    if stop_db:
        _print("embedded PostgreSQL stopped" if db.stop_embedded() else "embedded PostgreSQL was not running")
    else:
        _print(
            f"embedded PostgreSQL still running in {config.data_dir()}: stop it with `make stop-db` "
            "(or `.venv/bin/dyno-reports db stop`)"
        )


if __name__ == "__main__":
    main()
