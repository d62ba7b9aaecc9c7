"""Display names for the ids in a report run's facts: tenant, pipelines, stages, owners.

One set-based query per kind of id, each scoped to the tenant (the test data and
real CRMs may reuse a UUID across tenants), SQLAlchemy Core with bound
parameters. Not tied to Dagster: the materialisation preview and the CLI use it.
"""

from dataclasses import dataclass, field
from uuid import UUID

from sqlalchemy import Column, Connection, Table, select

from dyno_reports.storage import tables

# fact column -> the CRM table naming its ids: (table, id column, name column).
# principal_id is the deal's owner (crm.deal_history.owner_principal_id).
NAMED_ID_COLUMNS: dict[str, tuple[Table, str, str]] = {
    "pipeline_id": (tables.pipeline, "pipeline_id", "name"),
    "stage_id": (tables.stage, "stage_id", "name"),
    "principal_id": (tables.principal, "principal_id", "display_name"),
}
SHORT_ID_LENGTH = 8


@dataclass(frozen=True)
class RunNames:
    """The tenant's name and, per id column of the facts, id -> display name."""

    tenant: str | None
    by_column: dict[str, dict[UUID, str]] = field(default_factory=dict)

    def name_of(self, column: str, value: UUID | None) -> str | None:
        if value is None:
            return None
        return self.by_column.get(column, {}).get(value)

    def label(self, column: str, value: UUID | None) -> str | None:
        """`name (short id)` for a named id, the full id when it has no name, None for NULL."""
        if value is None:
            return None
        name = self.name_of(column, value)
        return str(value) if name is None else f"{name} ({short_id(value)})"


def short_id(value: UUID) -> str:
    """The first hex digits of a UUID, as Dagster shows run ids."""
    return str(value)[:SHORT_ID_LENGTH]


def named_columns(fact_table: Table) -> list[str]:
    """The fact table's columns whose ids have display names in the CRM."""
    return [c.name for c in fact_table.columns if c.name in NAMED_ID_COLUMNS]


def tenant_name(conn: Connection, tenant_id: UUID) -> str | None:
    """crm.tenant.name, None for an unknown tenant."""
    return conn.execute(select(tables.tenant.c.name).where(tables.tenant.c.tenant_id == tenant_id)).scalar_one_or_none()


def run_names(conn: Connection, fact_table: Table, tenant_id: UUID, run_id: UUID) -> RunNames:
    """Names of every named id that appears in the run's facts: one query per id column."""
    by_column = {
        column: _names_in_facts(conn, fact_table.c[column], tenant_id, run_id) for column in named_columns(fact_table)
    }
    return RunNames(tenant=tenant_name(conn, tenant_id), by_column=by_column)


def _names_in_facts(conn: Connection, fact_column: Column, tenant_id: UUID, run_id: UUID) -> dict[UUID, str]:
    crm_table, id_name, name_name = NAMED_ID_COLUMNS[fact_column.name]
    facts = fact_column.table
    ids_in_run = (
        select(fact_column)
        .where(facts.c.tenant_id == tenant_id, facts.c.run_id == run_id, fact_column.isnot(None))
        .distinct()
    )
    query = select(crm_table.c[id_name], crm_table.c[name_name]).where(
        crm_table.c.tenant_id == tenant_id, crm_table.c[id_name].in_(ids_in_run)
    )
    return {row[0]: row[1] for row in conn.execute(query)}
