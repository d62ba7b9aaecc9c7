"""The markdown preview of a report run's facts shown on its materialisation, with names beside ids.

Id columns (pipeline, stage, owner) read `name (short id)`, the full id when the
CRM has no name for it; the header line names the report and the tenant.
"""

from decimal import Decimal
from typing import Any
from uuid import UUID

from sqlalchemy import Connection, Engine, select

from dyno_reports import names
from dyno_reports.reports.base import ReportDefinition

# id column -> its header in the preview (its cells show a name, not only the id)
HEADERS = {"pipeline_id": "pipeline", "stage_id": "stage", "principal_id": "owner"}


def facts_preview(
    engine: Engine, report: ReportDefinition, tenant_id: UUID, run_id: UUID, fact_rows: int, limit: int
) -> str:
    """`**<title>** for <tenant>: first N of M fact rows`, then the first `limit` rows as a markdown table."""
    with engine.connect() as conn:
        run_names = names.run_names(conn, report.fact_table, tenant_id, run_id)
        return preview_markdown(conn, report, tenant_id, run_id, fact_rows, limit, run_names)


def preview_markdown(
    conn: Connection,
    report: ReportDefinition,
    tenant_id: UUID,
    run_id: UUID,
    fact_rows: int,
    limit: int,
    run_names: names.RunNames,
) -> str:
    """`facts_preview` on an open connection, with the run's names already looked up."""
    table = report.fact_table
    columns = report.fact_columns
    rows = conn.execute(
        select(*(table.c[name] for name in columns))
        .where(table.c.tenant_id == tenant_id, table.c.run_id == run_id)
        .order_by(*(table.c[d] for d in report.dimensions))
        .limit(limit)
    ).all()
    header = "| " + " | ".join(HEADERS.get(c, c) for c in columns) + " |"
    rule = "|" + "---|" * len(columns)
    body = [
        "| " + " | ".join(_named_cell(run_names, c, v) for c, v in zip(columns, row, strict=True)) + " |"
        for row in rows
    ]
    shown = f"first {len(rows)} of {fact_rows}" if fact_rows > len(rows) else f"{len(rows)}"
    tenant = _inline(run_names.tenant or str(tenant_id))
    return f"**{report.title}** for {tenant}: {shown} fact rows\n\n" + "\n".join([header, rule, *body])


def _named_cell(run_names: names.RunNames, column: str, value: Any) -> str:
    if column in names.NAMED_ID_COLUMNS:
        return _cell(run_names.label(column, value))
    return _cell(value)


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, Decimal):
        return format(value, "f")
    return _inline(str(value)).replace("|", "\\|")


def _inline(text: str) -> str:
    return " ".join(text.split())
