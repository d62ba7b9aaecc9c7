"""Fact tables of stage_conversion, weighted_pipeline, win_loss and deal_velocity.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-26
"""

from dyno_reports.storage.migrations.ddl import create_fact_table, drop_fact_table

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def _non_negative(table: str, column: str, sql_type: str, nullable: bool = False) -> str:
    null = "" if nullable else " NOT NULL"
    return f"{column} {sql_type}{null} CONSTRAINT ck_{table}_{column} CHECK ({column} >= 0)"


def _columns(table: str, dims: list[str], counts: list[str], money: list[str], plain: list[str]) -> str:
    parts = list(dims)
    parts += [_non_negative(table, c, "bigint") for c in counts]
    parts += [_non_negative(table, c, "numeric(28,2)") for c in money]
    parts += plain
    return ",\n  ".join(parts)


FACT_TABLES = {
    "stage_conversion": (
        ["pipeline_id uuid NOT NULL", "stage_id uuid NOT NULL"],
        ["entered_count", "advanced_count", "lost_count"],
        [],
        ["conversion_rate numeric(6,4)", "avg_days_to_advance numeric(14,2)"],
        "stage_id",
    ),
    "weighted_pipeline": (
        ["pipeline_id uuid NOT NULL", "principal_id uuid NOT NULL", "close_month date"],
        ["deal_count"],
        ["total_amount", "weighted_amount"],
        [],
        "pipeline_id, principal_id, close_month",
    ),
    "win_loss": (
        ["pipeline_id uuid NOT NULL", "principal_id uuid NOT NULL"],
        ["won_count", "lost_count"],
        ["won_amount", "lost_amount"],
        ["win_rate numeric(6,4)", "win_rate_by_value numeric(6,4)", "avg_cycle_days numeric(14,2)"],
        "pipeline_id, principal_id",
    ),
    "deal_velocity": (
        ["pipeline_id uuid NOT NULL", "stage_id uuid NOT NULL"],
        ["exited_count"],
        [],
        ["avg_days numeric(14,2)", "p50_days numeric(14,2)", "p90_days numeric(14,2)"],
        "stage_id",
    ),
}


def upgrade() -> None:
    for report_type, (dims, counts, money, plain, keys) in FACT_TABLES.items():
        table = f"report_{report_type}_fact"
        create_fact_table(report_type, _columns(table, dims, counts, money, plain), keys)


def downgrade() -> None:
    for report_type in reversed(FACT_TABLES):
        drop_fact_table(report_type)
