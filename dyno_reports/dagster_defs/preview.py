"""The markdown preview of a report run's facts shown on its materialisation, with names beside ids.

Id columns (pipeline, stage, owner) read `name (short id)`, the full id when the
CRM has no name for it; the header line names the report and the tenant.
"""

import functools
from decimal import Decimal
from typing import Any
from uuid import UUID

from sqlalchemy import BindParameter, Connection, Engine, FromClause, Select, and_, bindparam, select

from dyno_reports import names
from dyno_reports.reports.base import ReportDefinition
from dyno_reports.storage import tables

# id column -> its header in the preview (its cells show a name, not only the id)
HEADERS = {"pipeline_id": "pipeline", "stage_id": "stage", "principal_id": "owner"}


def facts_preview(
    engine: Engine, report: ReportDefinition, tenant_id: UUID, run_id: UUID, fact_rows: int, limit: int
) -> str:
    """`**<title>** for <tenant>: first N of M fact rows`, then the first `limit` rows as a markdown table."""
    with engine.connect() as conn:
        return preview_markdown(conn, report, tenant_id, run_id, fact_rows, limit)[0]


def preview_markdown(
    conn: Connection,
    report: ReportDefinition,
    tenant_id: UUID,
    run_id: UUID,
    fact_rows: int,
    limit: int,
    tenant_names: dict[UUID, str | None] | None = None,
) -> tuple[str, str | None]:
    """`facts_preview` on an open connection, and the tenant's name: one query, the shown rows with the names
    of their ids and the tenant's (a caller's `tenant_names` cache saves even that column's lookup)."""
    cache = {} if tenant_names is None else tenant_names
    columns = report.fact_columns
    statement = _rows_with_names(report, with_tenant=tenant_id not in cache)
    rows = conn.execute(statement, {"preview_tenant_id": tenant_id, "preview_run_id": run_id, "limit": limit}).all()
    if tenant_id not in cache:
        cache[tenant_id] = rows[0].tenant_name if rows else names.tenant_name(conn, tenant_id)
    header = "| " + " | ".join(HEADERS.get(c, c) for c in columns) + " |"
    rule = "|" + "---|" * len(columns)
    body = ["| " + " | ".join(_named_cell(row, c) for c in columns) + " |" for row in rows]
    shown = f"first {len(rows)} of {fact_rows}" if fact_rows > len(rows) else f"{len(rows)}"
    tenant = _inline(cache[tenant_id] or str(tenant_id))
    return f"**{report.title}** for {tenant}: {shown} fact rows\n\n" + "\n".join([header, rule, *body]), cache[
        tenant_id
    ]


@functools.cache
def _rows_with_names(report: ReportDefinition, *, with_tenant: bool) -> Select:
    """The run's first `:limit` fact rows, each named id with `<column>__name` beside it (the CRM's name of that
    id in this tenant, NULL when it has none), and the tenant's name as `tenant_name` when asked.

    Built once per report (building it took about 5 ms, a batch run does it once per partition)."""
    tenant_id: BindParameter[UUID] = bindparam("preview_tenant_id")
    run_id: BindParameter[UUID] = bindparam("preview_run_id")
    facts = report.fact_table
    joined: FromClause = facts
    name_columns = []
    for column in names.named_columns(facts):
        crm_table, id_name, name_name = names.NAMED_ID_COLUMNS[column]
        crm = crm_table.alias(f"names_{column}")
        joined = joined.outerjoin(crm, and_(crm.c.tenant_id == facts.c.tenant_id, crm.c[id_name] == facts.c[column]))
        name_columns.append(crm.c[name_name].label(f"{column}__name"))
    if with_tenant:
        tenant = tables.tenant
        name_columns.append(
            select(tenant.c.name).where(tenant.c.tenant_id == tenant_id).scalar_subquery().label("tenant_name")
        )
    return (
        select(*(facts.c[name] for name in report.fact_columns), *name_columns)
        .select_from(joined)
        .where(facts.c.tenant_id == tenant_id, facts.c.run_id == run_id)
        .order_by(*(facts.c[d] for d in report.dimensions))
        .limit(bindparam("limit"))
    )


def _named_cell(row: Any, column: str) -> str:
    value = row._mapping[column]
    if column in names.NAMED_ID_COLUMNS and value is not None:
        name = row._mapping[f"{column}__name"]
        return _cell(str(value) if name is None else f"{name} ({names.short_id(value)})")
    return _cell(value)


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, Decimal):
        return format(value, "f")
    return _inline(str(value)).replace("|", "\\|")


def _inline(text: str) -> str:
    return " ".join(text.split())
