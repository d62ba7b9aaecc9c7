"""Reading report runs back: a run's header, its facts, and the latest SUCCEEDED run of given inputs.

"The latest run" of a tenant, report and input fingerprint (sha256 of tenant,
report, window and canonical options: `RunRequest.fingerprint`) is the row of
`reporting.report_run_latest`: the SUCCEEDED run that is final (not a so-far run
of a period that had not ended) before any so-far one, then with the greatest
(generated_at, run_id). Nothing is stored for reading: `show`, `trend` and the
Dagster IO manager's `load_input` all read runs through here.
"""

from collections.abc import Sequence
from datetime import datetime
from typing import Any
from uuid import UUID

from sqlalchemy import Boolean, Connection, Row, Select, Text, column, select, table
from sqlalchemy.dialects.postgresql import UUID as PG_UUID

from dyno_reports.core import periods
from dyno_reports.core.errors import InputError
from dyno_reports.engine.run_request import RunRequest, parse_uuid
from dyno_reports.reports.base import Options, ReportDefinition
from dyno_reports.storage.tables import report_run

# The view of migrations 0005 and 0007 (its columns used here; a lightweight table, not part of the models' metadata).
report_run_latest = table(
    "report_run_latest",
    column("run_id", PG_UUID(as_uuid=True)),
    column("tenant_id", PG_UUID(as_uuid=True)),
    column("report_type", Text),
    column("input_fingerprint", Text),
    column("so_far", Boolean),
    schema="reporting",
)


def parse_run_id(raw: str) -> UUID:
    """A run id as given on the command line: a canonical UUID, else InputError."""
    return parse_uuid(raw, "run id")


def run_header(conn: Connection, run_id: UUID) -> Row[Any]:
    """The `report_run` row of `run_id` (any status); InputError when there is none.

    Looked up by its primary key alone: the tenant is what this tells.
    """
    header = conn.execute(select(report_run).where(report_run.c.run_id == run_id)).one_or_none()
    if header is None:
        raise InputError(f"unknown report run {run_id} (not in reporting.report_run)")
    return header


def fingerprint_of(report: ReportDefinition, tenant_id: UUID, window: periods.Window, options: Options) -> str:
    """The input fingerprint a run of these inputs records (the same function the executor uses)."""
    return RunRequest(report, tenant_id, window, options).fingerprint()


def latest_runs(conn: Connection, report: ReportDefinition, tenant_id: UUID, fingerprints: Sequence[str]) -> dict:
    """Input fingerprint -> run_id of its latest SUCCEEDED run, for those fingerprints that have one."""
    latest = report_run_latest
    rows = conn.execute(
        select(latest.c.input_fingerprint, latest.c.run_id).where(
            latest.c.tenant_id == tenant_id,
            latest.c.report_type == report.report_type,
            latest.c.input_fingerprint.in_(list(fingerprints)),
        )
    )
    return {fingerprint: run_id for fingerprint, run_id in rows}


def succeeded_runs(conn: Connection, report: ReportDefinition, tenant_id: UUID, run_ids: Sequence[UUID]) -> set:
    """Those of `run_ids` that are SUCCEEDED runs of this tenant and report (still kept)."""
    return set(
        conn.execute(
            select(report_run.c.run_id).where(
                report_run.c.tenant_id == tenant_id,
                report_run.c.report_type == report.report_type,
                report_run.c.status == "SUCCEEDED",
                report_run.c.run_id.in_(list(run_ids)),
            )
        ).scalars()
    )


def facts_query(report: ReportDefinition, tenant_id: UUID, run_ids: Sequence[UUID]) -> Select:
    """run_id and the fact columns of these runs of one tenant, ordered by run then dimensions."""
    table = report.fact_table
    return (
        select(table.c.run_id, *(table.c[name] for name in report.fact_columns))
        .where(table.c.tenant_id == tenant_id, table.c.run_id.in_(list(run_ids)))
        .order_by(table.c.run_id, *(table.c[name] for name in report.dimensions))
    )


def period_text(start: datetime | None, end: datetime) -> str:
    """`[start, end)` in ISO form, `-inf` for no start."""
    return f"[{start.isoformat() if start else '-inf'}, {end.isoformat()})"
