"""The `dyno-reports` command: `run` and `list` here; the other groups in their modules (`db`, `runs` and
`tenants`: admin.py; `show` and `trend`: read.py; `diff`: diff.py; `refresh` and `runs stale`: stale.py;
`backfill`: backfill.py;
`seed` and `demo`: devtools/commands.py; `sync-tenants`: dagster_defs/commands.py).

Commands import what they need when they run (`python -X importtime`): `run` loads SQLAlchemy, psycopg and
the one report it runs, never Alembic or Dagster; the other groups' modules load only when named.
"""

import importlib
import json
import logging
import os
import sys
import uuid
from typing import NoReturn

import click

from dyno_reports.cli import run_process
from dyno_reports.core.errors import Cancelled, DynoError, InputError, UnknownTenant, one_line

CADENCE_WORDS = {"week": "weekly", "month": "monthly", "quarter": "quarterly"}
# Commands of other modules, imported only when named (or listed by --help): name -> (module, attribute).
LAZY_COMMANDS = {
    "db": ("dyno_reports.cli.admin", "db_group"),
    "runs": ("dyno_reports.cli.admin", "runs_group"),
    "show": ("dyno_reports.cli.read", "show_command"),
    "trend": ("dyno_reports.cli.read", "trend_command"),
    "diff": ("dyno_reports.cli.diff", "diff_command"),
    "backfill": ("dyno_reports.cli.backfill", "backfill_command"),
    "refresh": ("dyno_reports.cli.stale", "refresh_command"),
    "tenants": ("dyno_reports.cli.admin", "tenants_command"),
    # Development tools and Dagster's instance: their modules, not production's CLI, import them.
    "seed": ("dyno_reports.devtools.commands", "seed_command"),
    "demo": ("dyno_reports.devtools.commands", "demo_command"),
    "sync-tenants": ("dyno_reports.dagster_defs.commands", "sync_tenants_command"),
}


class _LazyGroup(click.Group):
    """A group that adds LAZY_COMMANDS to its own, importing each only when it is asked for."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*super().list_commands(ctx), *LAZY_COMMANDS})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name in LAZY_COMMANDS:
            module, attribute = LAZY_COMMANDS[cmd_name]
            return getattr(importlib.import_module(module), attribute)
        return super().get_command(ctx, cmd_name)


@click.group(cls=_LazyGroup, help="Tenant-scoped Deal & Pipeline reports on PostgreSQL.")
def cli() -> None:
    pass


@cli.command("list", help="List the report types with their options and cadences (the main one first).")
@click.option("--json", "as_json", is_flag=True, help="One JSON object instead of text.")
def list_reports(as_json: bool) -> None:
    from dyno_reports.reports import registry

    listing = {
        name: {
            "title": report.title,
            "cadence": report.cadence,
            "cadences": list(report.cadences),
            "fact_table": f"reporting.{report.fact_table.name}",
            "dimensions": list(report.dimensions),
            "metrics": list(report.metrics),
            "options": report.option_fields(),
            "description": report.description,
        }
        for name, report in sorted(registry().items())
    }
    if as_json:
        click.echo(json.dumps(listing))
        return
    for name, report in sorted(registry().items()):
        cadences = ", ".join(CADENCE_WORDS[cadence] for cadence in report.cadences)
        click.echo(f"{name}  ({cadences})  -> reporting.{report.fact_table.name}")
        click.echo(f"    {report.description}")
        for option, described in report.option_fields().items():
            click.echo(f"    --options {option}: {described}")


@cli.command(
    "run",
    help="Run REPORT for one tenant and window, read in the tenant's calendar (its time zone, week start and "
    "fiscal year); prints the run's outcome.",
)
@click.argument("report_type", metavar="REPORT")
@click.option("--tenant", "tenant_id", required=True, help="Tenant UUID.")
@click.option(
    "--period-start",
    default=None,
    help="Inclusive start: an ISO date (the tenant's local midnight) or timestamp (local to the tenant if no offset).",
)
@click.option(
    "--period-end", default=None, help="Exclusive end, as --period-start (default: today 00:00 in the tenant's zone)."
)
@click.option("--grain", default=None, help="With --period: a whole week, month or (fiscal) quarter of the tenant.")
@click.option(
    "--period",
    "period_label",
    default=None,
    help="With --grain: the period's label, a date of the week (2025-06-02), a month (2025-06), a fiscal quarter "
    "(FY2026-Q1).",
)
@click.option(
    "--options",
    "options_json",
    default=None,
    help="Report options as a JSON object, e.g. '{\"include_closed\": true}'; @FILE reads them from FILE, "
    "- from stdin.",
)
@click.option(
    "--so-far",
    is_flag=True,
    help="Allow a period that has not ended as known at K (its end after K): the run is recorded as a so-far "
    "run, whose numbers can still change.",
)
@click.option(
    "--as-known-at",
    "as_known_at",
    default=None,
    metavar="K",
    help="Read the CRM as known at K (history rows recorded at or before K), as --period-start is read; "
    "default: now minus the CRM's longest write (DYNO_CRM_MAX_WRITE_SECONDS). A run's header records its K: "
    "given it, a run repeats that answer exactly.",
)
@click.option("--json", "as_json", is_flag=True, help="Print the outcome as one JSON object (last stdout line).")
def run_report(
    report_type: str,
    tenant_id: str,
    period_start,
    period_end,
    grain,
    period_label,
    options_json,
    so_far: bool,
    as_known_at,
    as_json: bool,
) -> None:
    with run_process.imports_without_gc():
        from dyno_reports.engine import executor, run_request
        from dyno_reports.storage import db, migrate

    options_text = None if options_json is None else run_request.read_options_text(options_json)
    run_id = uuid.uuid4()
    with run_process.signals_cancel(run_id) as cancellation:
        engine = db.get_engine()
        # one connection for the whole command; transient connection failures are retried before anything is written
        with db.connect(engine) as conn:
            migrate.require_head(conn)
            request = run_request.build_request(
                conn,
                report_type,
                tenant_id,
                period_start=period_start,
                period_end=period_end,
                grain=grain,
                period=period_label,
                options=options_text,
                so_far=so_far,
                as_known_at=as_known_at,
            )
            conn.rollback()  # validation only read: the run's own transaction starts next, on this connection
            cancellation.run_started = True
            result = executor.execute(engine, request, run_id=run_id, connection=conn)
            cancellation.armed = False  # the run is over (committed or recorded FAILED): print its outcome
    summary = result.summary()
    if as_json:
        click.echo(json.dumps(summary))
    else:
        window = f"[{summary['period_start'] or '-inf'}, {summary['period_end']})"
        status = f"{summary['status']} (so far)" if summary["so_far"] else summary["status"]
        click.echo(
            f"{status}  {report_type}  tenant {summary['tenant_id']}  {window}  ({summary['period_grain']})"
            f"  as known at {summary['known_at']}"
        )
        headline = executor.headline_text(result.headline)
        click.echo(f"run_id {summary['run_id']}  fact rows {summary['fact_rows']}  {headline}".rstrip())
    if not result.succeeded:
        click.echo(f"error: report run failed: {result.error_message}", err=True)
        sys.exit(1)


def main(args: list[str] | None = None) -> None:
    """Entry point: bad input and known failures become one line on stderr, never a traceback.

    `args` defaults to sys.argv[1:]; the exit status is 0, 2 for bad input (nothing written),
    1 for a failure (a failed run is recorded FAILED), 130 when aborted; a run stopped by SIGINT or
    SIGTERM exits 130 or 143 (recorded FAILED "cancelled (SIGINT)").
    """
    _quiet_library_logging()
    try:
        cli.main(args, prog_name="dyno-reports", standalone_mode=False)
    except click.exceptions.Exit as exc:
        sys.exit(exc.exit_code)
    except click.Abort:
        _fail("aborted", 130)
    except _NO_ARGS_IS_HELP as exc:  # `dyno-reports` or `dyno-reports db` alone: the help, not an error line
        click.echo(exc.format_message(), err=True)
        sys.exit(2)
    except click.ClickException as exc:
        _fail(exc.format_message(), 2)
    except UnknownTenant as exc:
        _fail(_with_known_tenants(exc), 2)
    except InputError as exc:
        _fail(str(exc), 2)
    except Cancelled as exc:
        _fail(str(exc), exc.status)
    except DynoError as exc:
        _fail(str(exc), 1)
    except Exception as exc:  # the promise is no traceback; DYNO_DEBUG=1 shows it
        from sqlalchemy.exc import OperationalError

        from dyno_reports.engine.run_records import describe_error

        if isinstance(exc, OperationalError):
            _fail(f"cannot use the database: {describe_error(exc)}", 1)
        if os.environ.get("DYNO_DEBUG"):
            raise
        _fail(f"unexpected {describe_error(exc)} (DYNO_DEBUG=1 shows the traceback)", 1)


# click 8.2+ raises it for a group given no command (older releases print the help and exit 0).
_NO_ARGS_IS_HELP: type[click.UsageError] = getattr(
    click.exceptions, "NoArgsIsHelpError", type("NoArgsIsHelpError", (click.UsageError,), {})
)


_QUIET = logging.NullHandler()


def _quiet_library_logging() -> None:
    """The command's promise is one `error:` line: a handler on the root logger keeps Python's last-resort
    handler from printing library warnings (the executor's "report run ... failed") on stderr. Callers
    that configure logging themselves (Dagster, services) still get those records; DYNO_DEBUG=1 prints them."""
    root = logging.getLogger()
    if os.environ.get("DYNO_DEBUG"):
        if not root.handlers:
            logging.basicConfig(level=logging.INFO)
    elif _QUIET not in root.handlers:
        root.addHandler(_QUIET)


def _with_known_tenants(error: UnknownTenant) -> str:
    """The error with the tenants the database knows, so the person can pick the right id; the error alone when
    the database cannot say."""
    try:
        from dyno_reports.read.tenant_listing import with_known_tenants
        from dyno_reports.storage import db

        with db.get_engine().connect() as conn:
            return with_known_tenants(conn, error)
    except Exception:  # the one `error:` line is still the promise
        return str(error)


def _fail(message: str, status: int) -> NoReturn:
    """The one `error:` line (flattened, cut to errors.ERROR_LINE_LIMIT characters) and the exit status."""
    sys.stdout.flush()
    click.echo(one_line(f"error: {message}"), err=True)
    sys.exit(status)


if __name__ == "__main__":
    main()
