"""`dyno-reports backfill`: every period of a report's cadence in a range, for one tenant, one run each
(engine/backfill.py), a progress line per period on stderr and a summary on stdout."""

import contextlib
import json
import sys
import uuid
from collections.abc import Iterator

import click

from dyno_reports.cli import run_process
from dyno_reports.core.errors import one_line


@click.command(
    "backfill",
    help="Run REPORT for every period of its cadence, in the tenant's calendar, that starts on or after --from and "
    "ends on or before --to: one run each, in period order. Refused, with nothing written, for a range holding a "
    "period that is not final yet. Exit 1 when any period's run FAILED.",
)
@click.argument("report_type", metavar="REPORT")
@click.option("--tenant", "tenant_id", required=True, help="Tenant UUID.")
@click.option("--from", "start", required=True, help="An ISO date (the tenant's local midnight) or timestamp.")
@click.option("--to", "end", required=True, help="As --from: the last period ends at or before it.")
@click.option("--cadence", default=None, help="week, month or quarter: one of the report's (default: its main one).")
@click.option(
    "--options",
    "options_json",
    default=None,
    help="Report options as a JSON object; @FILE reads them from FILE, - from stdin.",
)
@click.option("--json", "as_json", is_flag=True, help="Print the summary as one JSON object (last stdout line).")
def backfill_command(report_type: str, tenant_id: str, start: str, end: str, cadence, options_json, as_json) -> None:
    with run_process.imports_without_gc():
        from dyno_reports.engine import backfill, run_request
        from dyno_reports.storage import db, migrate

    options_text = None if options_json is None else run_request.read_options_text(options_json)
    engine = db.get_engine()
    with db.connect(engine) as conn:
        migrate.require_head(conn)
        planned = backfill.plan(conn, report_type, tenant_id, start, end, cadence=cadence, options=options_text)
        runs = backfill.run_all(engine, conn, planned, _progress, _cancellable, announce=_announce)
    counts = backfill.totals(runs)
    click.echo(f"{counts['periods']} periods: {counts['succeeded']} SUCCEEDED, {counts['failed']} FAILED")
    if as_json:
        first = planned.requests[0]
        summary = {
            "report_type": first.report.report_type,
            "tenant_id": str(first.tenant_id),
            "cadence": planned.cadence,
            **counts,
            "runs": [run.summary() for run in runs],
        }
        click.echo(json.dumps(summary))
    if counts["failed"]:
        sys.exit(1)


def _announce(line: str) -> None:
    click.echo(line, err=True)


def _progress(index: int, count: int, run) -> None:
    """`[3/26] week of 2025-06-09 (UTC)  SUCCEEDED  run_id ...  headline` (the error for a FAILED run)."""
    from dyno_reports.engine.executor import headline_text

    result = run.result
    said = headline_text(result.headline) if result.succeeded else one_line(f"error: {result.error_message}")
    click.echo(f"[{index}/{count}] {run.described}  {result.status}  run_id {result.run_id}  {said}".rstrip(), err=True)


@contextlib.contextmanager
def _cancellable(run_id: uuid.UUID) -> Iterator[None]:
    """SIGINT/SIGTERM during a period's run: that run rolled back and recorded FAILED, exit 130/143 (`run`'s
    rule); the periods before it stay committed."""
    with run_process.signals_cancel(run_id) as cancellation:
        cancellation.run_started = True  # the request was validated before: the run starts now
        yield
