"""`make dev`: prepare the embedded database and a Dagster home, then exec `dagster dev`.

Steps: resolve the database (DYNO_DATABASE_URL, else the embedded PostgreSQL),
upgrade it, seed demo data when there is no tenant yet, create a `dagster`
database on the same server for Dagster's own storage, write
`.dyno/dagster_home/dagster.yaml`, register the tenants as partitions, and
replace this process with `dagster dev -w workspace.yaml`.
"""

import os
import shutil
import sys
from pathlib import Path

from sqlalchemy import func, select
from sqlalchemy.engine import URL

from dyno_reports import config, db, seed
from dyno_reports.storage import migrate
from dyno_reports.storage.tables import tenant

PROJECT = Path(__file__).resolve().parents[2]
DAGSTER_DATABASE = "dagster"


def dagster_storage_env(url: URL) -> dict[str, str]:
    """DAGSTER_POSTGRES_URL (read by dagster.yaml): a `dagster` database next to `url`'s, psycopg2 scheme."""
    storage = db.psycopg2_url(url).set(database=DAGSTER_DATABASE)
    return {"DAGSTER_POSTGRES_URL": storage.render_as_string(hide_password=False)}


def prepare(echo=print) -> dict[str, str]:
    """Everything but starting Dagster; returns the environment for `dagster dev`."""
    url = db.resolve_database_url()
    engine = db.get_engine()
    echo(f"database: {url.render_as_string(hide_password=True)} at revision {migrate.upgrade(engine)}")
    with engine.connect() as conn:
        tenants = conn.execute(select(func.count()).select_from(tenant)).scalar_one()
    url_text = url.render_as_string(hide_password=False)
    env = {**os.environ, "DYNO_DATABASE_URL": url_text}
    if not tenants:
        echo("no tenants yet: seeding demo data (as `dyno-reports seed` does)")
        seed.seed(engine, progress=echo)
    db.ensure_database(url, DAGSTER_DATABASE)
    home = config.data_dir() / "dagster_home"
    home.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(PROJECT / "dagster.yaml", home / "dagster.yaml")
    env.update(dagster_storage_env(url), DAGSTER_HOME=str(home))
    os.environ.update({k: v for k, v in env.items() if k.startswith(("DAGSTER_", "DYNO_"))})
    from dyno_reports.dagster_defs.tenants import sync_tenants_from_environment

    echo(f"DAGSTER_HOME={home}: {len(sync_tenants_from_environment())} tenant partition(s) added")
    return env


def main() -> None:
    env = prepare()
    args = ["dagster", "dev", "-w", str(PROJECT / "workspace.yaml"), *sys.argv[1:]]
    dagster = Path(sys.executable).with_name("dagster")
    os.chdir(env["DAGSTER_HOME"])  # not the checkout: its template dagster.yaml would draw a warning
    os.execve(str(dagster), args, env)


if __name__ == "__main__":
    main()
