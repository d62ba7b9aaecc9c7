"""`dyno-reports runs stale` and `dyno-reports refresh`: the current runs whose answer could now differ, and
their refresh (staleness.py, refresh.py).

Both run the stale check, which advances its cursor and records its findings; `refresh --dry-run` rolls the
check back, so it writes nothing.
"""

import json
from collections.abc import Sequence
from typing import TYPE_CHECKING
from uuid import UUID

import click
from sqlalchemy import Connection

from dyno_reports.core.errors import DynoError, UnknownTenant
from dyno_reports.freshness.staleness import StaleRun
from dyno_reports.storage import db

if TYPE_CHECKING:
    from dyno_reports.freshness.refresh import Refreshed

TENANT_HELP = "Only this tenant (UUID)."
REPORT_HELP = "Only this report type."


@click.command(
    "stale",
    help="Run the stale check and list the current runs whose answer could now differ: each run, its question "
    "(tenant, report, period, options) and why (late history rows with their earliest valid_from, stages "
    "changed, report version old -> new), and when it waits for rows recorded in the CRM's longest write.",
)
@click.option("--tenant", "tenant_id", default=None, help=TENANT_HELP)
@click.option("--report", "report_type", default=None, help=REPORT_HELP)
@click.option("--json", "as_json", is_flag=True, help="One JSON array of stale runs on the last line.")
def runs_stale(tenant_id: str | None, report_type: str | None, as_json: bool) -> None:
    from dyno_reports.freshness import staleness
    from dyno_reports.storage import migrate

    with db.get_engine().connect() as conn:
        migrate.require_head(conn)
        tenants, reports = _filters(conn, tenant_id, report_type)
        conn.rollback()
        stale = staleness.check(conn, tenant_ids=tenants, report_types=reports)
    if as_json:
        click.echo(json.dumps([run.as_json() for run in stale]))
        return
    for run in stale:
        for line in run_lines(run):
            click.echo(line)
    click.echo(f"{len(stale)} stale run{'' if len(stale) == 1 else 's'}")


@click.command(
    "refresh",
    help="Run the stale check, then re-run the current run of each stale question (its window and options, "
    "the default as-known-at) through the executor `run` uses; prints each new run and what changed. Old runs "
    "stay; the latest views move to the new ones.",
)
@click.option("--tenant", "tenant_id", default=None, help=TENANT_HELP)
@click.option("--report", "report_type", default=None, help=REPORT_HELP)
@click.option("--dry-run", is_flag=True, help="Only list what would be re-run; write nothing.")
def refresh_command(tenant_id: str | None, report_type: str | None, dry_run: bool) -> None:
    from dyno_reports.freshness import refresh, staleness
    from dyno_reports.storage import migrate

    engine = db.get_engine()
    with db.connect(engine) as conn:
        migrate.require_head(conn)
        tenants, reports = _filters(conn, tenant_id, report_type)
        conn.rollback()
        if dry_run:
            with conn.begin() as transaction:
                stale = staleness.check(conn, tenant_ids=tenants, report_types=reports)
                transaction.rollback()
            for run in stale:
                for line in ["would re-run:", *run_lines(run)]:
                    click.echo(line)
            click.echo(f"{len(stale)} stale run{'' if len(stale) == 1 else 's'} would be re-run (dry run)")
            return
    refreshed = refresh.refresh(engine, tenant_ids=tenants, report_types=reports, progress=_echo_progress)
    failed = sum(1 for r in refreshed if r.failed)
    waiting = sum(1 for r in refreshed if r.waiting is not None)
    click.echo(f"{len(refreshed) - failed - waiting} refreshed, {waiting} waiting, {failed} failed")
    if failed:
        raise DynoError(f"{failed} of {len(refreshed)} stale run(s) not refreshed (see above)")


def _echo_progress(n: int, total: int, refreshed: "Refreshed") -> None:
    stale = refreshed.stale
    new_run = refreshed.result.run_id if refreshed.result is not None else "-"
    click.echo(
        f"[{n}/{total}] {stale.report_type}  tenant {stale.tenant_id}  {_period(stale)}  "
        f"{stale.run_id} -> {new_run}  {refreshed.summary()}"
    )


def run_lines(run: StaleRun) -> list[str]:
    """A stale run: its id and question on one line, then why, indented."""
    options = json.dumps(run.input_params.get("options", {}), sort_keys=True)
    head = f"{run.run_id}  {run.report_type}  tenant {run.tenant_id}  {_period(run)}  options {options}"
    waiting = [run.waiting_text()] if run.waiting() else []
    return [head, *(f"    {reason}" for reason in [*run.reasons(), *waiting])]


def _period(run: StaleRun) -> str:
    from dyno_reports.cli.read import recorded_calendar
    from dyno_reports.engine import run_window
    from dyno_reports.read import results

    local = run_window.local_reading(
        recorded_calendar(run.input_params), run.period_start, run.period_end, run.period_grain
    )
    return f"{local}  {results.period_text(run.period_start, run.period_end)}"


def _filters(
    conn: Connection, tenant_id: str | None, report_type: str | None
) -> tuple[Sequence[UUID] | None, list[str] | None]:
    """The filters, refused when unknown: a tenant not in crm.tenant, a report the registry lacks."""
    from dyno_reports.engine.run_request import parse_tenant_id
    from dyno_reports.reports import get_report
    from dyno_reports.storage.tables import tenant

    reports = None if report_type is None else [get_report(report_type).report_type]
    if tenant_id is None:
        return None, reports
    parsed = parse_tenant_id(tenant_id)
    if conn.execute(tenant.select().where(tenant.c.tenant_id == parsed)).first() is None:
        raise UnknownTenant(parsed)
    return [parsed], reports
