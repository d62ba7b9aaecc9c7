"""The tenants of `crm.tenant` as people look for them: `dyno-reports tenants`, and the known tenants the CLI
names beside an unknown tenant's error (`errors.UnknownTenant`, raised wherever a tenant is refused).

TENANT_COLUMNS is the one list of the columns shown, in text and JSON alike: a column added to
`crm.tenant` (or a joined settings table) is shown by appending it there.
"""

import json
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

from sqlalchemy import Connection, Row, func, select

from dyno_reports.core.errors import UnknownTenant, shown
from dyno_reports.read import text_table
from dyno_reports.storage.tables import tenant

# key (JSON key and text header) -> the column it reads
TENANT_COLUMNS = {
    "tenant_id": tenant.c.tenant_id,
    "name": tenant.c.name,
    "created_at": tenant.c.created_at,
    "time_zone": tenant.c.time_zone,
    "week_start": tenant.c.week_start,
    "fiscal_year_start_month": tenant.c.fiscal_year_start_month,
    "fiscal_year_named_by": tenant.c.fiscal_year_named_by,
}
NO_TENANTS = "no tenants yet: `dyno-reports seed` or `dyno-reports demo` creates some"
# An unknown tenant's error names at most this many known tenants, each name quoted to about NAME_SHOWN
# characters: three long names and their ids still fit errors.ERROR_LINE_LIMIT.
KNOWN_NAMED = 3
NAME_SHOWN = 40


def list_tenants(conn: Connection) -> list[Row[Any]]:
    """Every tenant, ordered by name then id, with the TENANT_COLUMNS."""
    return list(conn.execute(select(*TENANT_COLUMNS.values()).order_by(tenant.c.name, tenant.c.tenant_id)))


def json_value(value: Any) -> Any:
    """A column's value in JSON: ids as text, instants as ISO in UTC."""
    if isinstance(value, UUID):
        return str(value)
    if isinstance(value, datetime):
        return value.astimezone(UTC).isoformat()
    return value


def tenants_json(rows: list[Row[Any]]) -> str:
    """One JSON array on one line: an object per tenant, keyed as TENANT_COLUMNS."""
    return json.dumps(
        [{key: json_value(value) for key, value in zip(TENANT_COLUMNS, row, strict=True)} for row in rows]
    )


def tenants_text(rows: list[Row[Any]]) -> list[str]:
    """The tenants as an aligned table, or the line saying there are none."""
    if not rows:
        return [NO_TENANTS]
    cells = [[text_table.cell(json_value(value)) for value in row] for row in rows]
    return text_table.aligned(list(TENANT_COLUMNS), cells, [False] * len(TENANT_COLUMNS))


def with_known_tenants(conn: Connection, error: UnknownTenant) -> str:
    """The error's message followed by the first KNOWN_NAMED tenants by name (one statement), for a person at the
    command line: never stored, so another tenant's name never lands in a record of the unknown one."""
    known = conn.execute(
        select(tenant.c.name, tenant.c.tenant_id, func.count().over())
        .order_by(tenant.c.name, tenant.c.tenant_id)
        .limit(KNOWN_NAMED)
    ).all()
    if not known:
        return f"{error}; there are no tenants yet: `dyno-reports seed` loads demo data"
    named = ", ".join(f"{shown(name, NAME_SHOWN)} ({known_id})" for name, known_id, _ in known)
    more = known[0][2] - len(known)
    if more:
        named += f" and {more} more: `dyno-reports tenants` lists them"
    return f"{error}; known: {named}"
