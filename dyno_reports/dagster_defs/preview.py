"""The preview of a report run's facts shown on its materialisation: a Dagster table, names beside ids.

The first N fact rows (ordered by dimensions) as `TableRecord`s under a
`TableSchema`: id columns (pipeline, stage, owner) read `name (short id)`, the full
id when the CRM has no name for it; counts are ints; money, rates and days are
exact decimals written as text (a float would round `2738202.30` and drop its
trailing zero), dates ISO text. `shown` says `first 10 of 37 fact rows` when cut.
"""

import functools
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from typing import Any
from uuid import UUID

from dagster import TableColumn, TableRecord, TableSchema
from sqlalchemy import (
    BindParameter,
    Connection,
    Date,
    Engine,
    FromClause,
    Integer,
    Numeric,
    Select,
    and_,
    bindparam,
    select,
)

from dyno_reports.read import names
from dyno_reports.reports.base import ReportDefinition
from dyno_reports.storage import tables

# id column -> its header in the preview (its cells show a name, not only the id)
HEADERS = {"pipeline_id": "pipeline", "stage_id": "stage", "principal_id": "owner"}
NAMED_ID_DESCRIPTION = "name (first 8 hex digits of the id); the full id when the CRM has no name for it"


@dataclass(frozen=True)
class FactsPreview:
    """The shown rows as a Dagster table, what part of the run they are, and the tenant's name."""

    schema: TableSchema
    records: list[TableRecord]
    shown: str
    tenant_name: str | None


def facts_preview(
    engine: Engine, report: ReportDefinition, tenant_id: UUID, run_id: UUID, fact_rows: int, limit: int
) -> FactsPreview:
    """The first `limit` fact rows of the run, as a table with names beside ids."""
    with engine.connect() as conn:
        return preview_table(conn, report, tenant_id, run_id, fact_rows, limit)


def preview_table(
    conn: Connection,
    report: ReportDefinition,
    tenant_id: UUID,
    run_id: UUID,
    fact_rows: int,
    limit: int,
    tenant_names: dict[UUID, str | None] | None = None,
) -> FactsPreview:
    """`facts_preview` on an open connection: one query, the shown rows with the names of their ids and the
    tenant's (a caller's `tenant_names` cache saves even that column's lookup)."""
    cache = {} if tenant_names is None else tenant_names
    statement = _rows_with_names(report, with_tenant=tenant_id not in cache)
    rows = conn.execute(statement, {"preview_tenant_id": tenant_id, "preview_run_id": run_id, "limit": limit}).all()
    if tenant_id not in cache:
        cache[tenant_id] = rows[0].tenant_name if rows else names.tenant_name(conn, tenant_id)
    records = [TableRecord({HEADERS.get(c, c): _named_cell(row, c) for c in report.fact_columns}) for row in rows]
    shown = f"first {len(rows)} of {fact_rows}" if fact_rows > len(rows) else f"{len(rows)}"
    return FactsPreview(preview_schema(report), records, f"{shown} fact rows", cache[tenant_id])


@functools.cache
def preview_schema(report: ReportDefinition) -> TableSchema:
    """The preview's columns: the fact columns in order, id columns under their names' header."""
    columns = []
    for name in report.fact_columns:
        sql_type = report.fact_table.c[name].type
        if name in HEADERS:
            columns.append(TableColumn(HEADERS[name], "string", NAMED_ID_DESCRIPTION))
        elif isinstance(sql_type, Integer):
            columns.append(TableColumn(name, "int"))
        elif isinstance(sql_type, Numeric):
            columns.append(TableColumn(name, "decimal", "exact decimal, as text"))
        elif isinstance(sql_type, Date):
            columns.append(TableColumn(name, "date", "ISO date, as text"))
        else:
            columns.append(TableColumn(name, "string"))
    return TableSchema(columns)


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


def _named_cell(row: Any, column: str) -> str | int | float | bool | None:
    value = row._mapping[column]
    if column in names.NAMED_ID_COLUMNS and value is not None:
        name = row._mapping[f"{column}__name"]
        return str(value) if name is None else f"{name} ({names.short_id(value)})"
    return _cell(value)


def _cell(value: Any) -> str | int | float | bool | None:
    """A TableRecord value: None, bool and int as they are; Decimal exact as text; anything else as text."""
    if value is None or isinstance(value, bool | int | float):
        return value
    if isinstance(value, Decimal):
        return format(value, "f")
    if isinstance(value, date):
        return value.isoformat()
    return str(value)
