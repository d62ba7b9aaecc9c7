"""`dyno-reports db ...`, `runs ...` and `tenants`: the database, its migrations, the run history and the tenants."""

import os
import shutil
import sys

import click

from dyno_reports.core.errors import DynoError
from dyno_reports.read import run_listing
from dyno_reports.storage import db


@click.group("db", help="The reporting database: migrations and the embedded server.")
def db_group() -> None:
    pass


@db_group.command("upgrade", help="Apply every migration (crm contract and reporting tables).")
def db_upgrade() -> None:
    from dyno_reports.storage import migrate

    revision = migrate.upgrade(db.get_engine())
    click.echo(f"database at revision {revision}")


@db_group.command(
    "check",
    help="Compare the database with the models (storage/tables.py): prints `no drift`, "
    "or one line per difference and exits 1.",
)
def db_check() -> None:
    from dyno_reports.storage import drift  # Alembic's autogenerate: only this command needs it

    differences = drift.check(db.get_engine())
    if not differences:
        click.echo("no drift")
        return
    for difference in differences:
        click.echo(str(difference))
    raise DynoError(f"{len(differences)} difference(s) between the models (storage/tables.py) and the database")


@db_group.command(
    "url", help="Print the database URL the commands use, for psql (starts the embedded server if needed)."
)
@click.option(
    "--sqlalchemy", "as_sqlalchemy", is_flag=True, help="The SQLAlchemy form (postgresql+psycopg://) instead."
)
def db_url(as_sqlalchemy: bool) -> None:
    url = db.resolve_database_url()
    click.echo(url.render_as_string(hide_password=False) if as_sqlalchemy else db.libpq_url(url))


@db_group.command(
    "psql",
    help="Run psql on the database the commands use; ARGS go to psql (e.g. -c 'select 1').",
    context_settings={"ignore_unknown_options": True, "allow_interspersed_args": False},
)
@click.argument("psql_args", metavar="[ARGS]...", nargs=-1, type=click.UNPROCESSED)
def db_psql(psql_args: tuple[str, ...]) -> None:
    psql = shutil.which("psql")
    if psql is None:
        raise DynoError(
            "psql is not installed (or not on PATH); `dyno-reports db url` prints the URL for another client"
        )
    url = db.resolve_database_url()
    env = dict(os.environ)
    if url.password:  # through the environment, so the password does not show in `ps`
        env["PGPASSWORD"] = str(url.password)
    sys.stdout.flush()
    os.execve(psql, ["psql", db.libpq_url(url, hide_password=True), *psql_args], env)


@db_group.command("stop", help="Stop the embedded PostgreSQL server, if it runs.")
def db_stop() -> None:
    click.echo("embedded PostgreSQL stopped" if db.stop_embedded() else "embedded PostgreSQL was not running")


@click.group("runs", help="Report run history: kept as written, pruned only through the retention path.")
def runs_group() -> None:
    pass


@runs_group.command(
    "prune",
    help="Delete runs beyond the N latest per (tenant, report, input fingerprint), never the latest SUCCEEDED one "
    "(reporting.prune_report_runs; facts go with their run). Prints the counts per report type.",
)
@click.option("--keep-latest", "keep_latest", required=True, type=click.IntRange(min=0), help="Runs kept per input.")
@click.option("--dry-run", is_flag=True, help="Only say what would be deleted; delete nothing.")
@click.option("--tenant", "tenant_id", default=None, help="Only this tenant (UUID).")
@click.option("--report", "report_type", default=None, help="Only this report type.")
def runs_prune(keep_latest: int, dry_run: bool, tenant_id: str | None, report_type: str | None) -> None:
    from dyno_reports.engine import retention

    summary = retention.prune(
        db.get_engine(), keep_latest, dry_run=dry_run, tenant_id=tenant_id, report_type=report_type
    )
    for line in summary.lines():
        click.echo(line)


@runs_group.command(
    "list",
    help="List report runs, newest first (generated_at, then run_id): report, tenant, period, status, source and "
    "a FAILED run's error. `dyno-reports show RUN_ID` prints one.",
)
@click.option("--tenant", "tenant_id", default=None, help="Only this tenant (UUID).")
@click.option("--report", "report_type", default=None, help="Only this report type.")
@click.option("--status", default=None, help="Only runs with this status: SUCCEEDED, FAILED or IN_PROGRESS (any case).")
@click.option(
    "--since", default=None, help="Only runs generated at or after this ISO date or timestamp (UTC if no offset)."
)
@click.option(
    "--limit",
    default=run_listing.DEFAULT_LIMIT,
    show_default=True,
    type=click.IntRange(1, run_listing.MAX_LIMIT),
    help="At most this many runs (the newest).",
)
@click.option("--json", "as_json", is_flag=True, help="One JSON array of runs on one line instead of text.")
def runs_list(tenant_id, report_type, status, since, limit: int, as_json: bool) -> None:
    import json

    from dyno_reports.storage import migrate

    filters = run_listing.parse_filters(tenant_id, report_type, status, since, limit)
    with db.get_engine().connect() as conn:
        migrate.require_head(conn)
        listing = run_listing.list_runs(conn, filters)
    if as_json:
        click.echo(json.dumps([run_listing.run_json(row) for row in listing.rows]))
        return
    for line in run_listing.listing_text(listing):
        click.echo(line)


@click.command("tenants", help="List the tenants of crm.tenant (id, name, created_at), ordered by name.")
@click.option("--json", "as_json", is_flag=True, help="One JSON array of tenants on one line instead of text.")
def tenants_command(as_json: bool) -> None:
    from dyno_reports.read import tenant_listing
    from dyno_reports.storage import migrate

    with db.get_engine().connect() as conn:
        migrate.require_head(conn)
        rows = tenant_listing.list_tenants(conn)
    if as_json:
        click.echo(tenant_listing.tenants_json(rows))
        return
    for line in tenant_listing.tenants_text(rows):
        click.echo(line)


def _add_stale_command() -> None:
    from dyno_reports.cli.stale import runs_stale  # `runs stale` lives with `refresh`

    runs_group.add_command(runs_stale)


_add_stale_command()
