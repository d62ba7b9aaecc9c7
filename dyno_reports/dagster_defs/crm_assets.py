"""The CRM source tables as external assets upstream of every report asset, so Dagster shows the lineage.

One `AssetSpec` per table of the source contract (`storage/tables.py`'s `crm_metadata`: crm.tenant,
principal, pipeline, stage, deal, deal_history), key `["crm", <table>]`, group `crm`, its columns as
`dagster/column_schema` (the Columns tab) built from the same SQLAlchemy tables the reports are checked
against: one source of truth. Dagster never materialises them (the CRM writes them); every report asset
lists them as `deps`.
"""

from dagster import AssetKey, AssetSpec, TableColumn, TableColumnConstraints, TableConstraints, TableSchema
from sqlalchemy import Column, Table
from sqlalchemy.dialects import postgresql

from dyno_reports.storage.tables import crm_metadata

GROUP = "crm"
DESCRIPTIONS = {
    "tenant": "The CRM's tenants and their calendars (time zone, week start, fiscal year).",
    "principal": "Users and teams that own deals; reports name owners from it.",
    "pipeline": "A tenant's sales pipelines.",
    "stage": "The stages of each pipeline: position, probability and kind (open, won, lost).",
    "deal": "A tenant's deals (created_at: the cohort date of some reports).",
    "deal_history": "Every state of every deal, valid from `valid_from` (valid time) and written by the CRM at "
    "`recorded_at` (transaction time): the rows each report reads as of its period end, as known at its K.",
}


def _column(column: Column) -> TableColumn:
    return TableColumn(
        name=column.name,
        type=column.type.compile(dialect=postgresql.dialect()).lower(),
        description=column.comment,
        constraints=TableColumnConstraints(nullable=bool(column.nullable), unique=bool(column.unique)),
    )


def column_schema(table: Table) -> TableSchema:
    """The table's columns, types and nullability, and its primary key as a constraint."""
    return TableSchema(
        columns=[_column(column) for column in table.columns],
        constraints=TableConstraints(other=[f"primary key ({primary_key(table)})"]),
    )


def primary_key(table: Table) -> str:
    return ", ".join(column.name for column in table.primary_key.columns)


def crm_asset_key(table: Table) -> AssetKey:
    return AssetKey([GROUP, table.name])


def crm_asset_specs() -> list[AssetSpec]:
    """One external asset per CRM source table."""
    return [
        AssetSpec(
            key=crm_asset_key(table),
            group_name=GROUP,
            description=DESCRIPTIONS[table.name],
            kinds={"postgres"},
            metadata={
                "dagster/column_schema": column_schema(table),
                "dagster/table_name": table.fullname,
            },
        )
        for table in crm_metadata.tables.values()
    ]


def crm_asset_keys() -> list[AssetKey]:
    """What every report asset depends on: each CRM source table."""
    return [crm_asset_key(table) for table in crm_metadata.tables.values()]
