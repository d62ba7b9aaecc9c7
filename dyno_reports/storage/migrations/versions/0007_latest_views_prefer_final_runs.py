"""Latest views prefer a final run to a so-far run, and say which one they show (`so_far`).

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-07

Frozen: every statement is literal SQL in this file; it imports nothing from
dyno_reports, so no later change to shared code can change what it does.

A so-far run is a run of a period that had not ended when it ran (its
`input_params` hold `"so_far": true`; a final run's have no `so_far` key). Its
numbers can still change, yet it answers the same question as a final run of
the same window (one input fingerprint). So:

- `reporting.report_run_latest`: per (tenant_id, report_type, input_fingerprint),
  the SUCCEEDED run that is final before any so-far one, then the one with the
  greatest (generated_at, run_id); a so-far run shows only while no final run of
  its inputs exists. A column `so_far` (boolean, never NULL) is appended.
- `reporting.report_<name>_latest`: `so_far` appended (the run's).

CREATE OR REPLACE VIEW keeps every existing column, in its place, and the grants;
it resets the options, so `security_invoker = true` is given again. The anti-join
still matches on (tenant_id, report_type, input_fingerprint) with equalities, so a
caller's filters and the lookup of the other runs reach the table's indexes.
Downgrade restores 0005's definitions (a column cannot be dropped by CREATE OR
REPLACE: the views are dropped and created again, with 0005's grants).
"""

from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

# The columns each report_<name>_latest adds from its run, after the fact columns (as in 0005).
RUN_COLUMNS = "r.period_start, r.period_end, r.period_grain, r.input_fingerprint, r.input_params, r.generated_at"

# Per report: the fact columns its view lists (as 0005 lists them).
FACT_COLUMNS = {
    "deal_velocity": "f.pipeline_id, f.stage_id, f.exited_count, f.avg_days, f.p50_days, f.p90_days",
    "pipeline_movement": """f.pipeline_id, f.start_count, f.start_amount, f.created_count,
       f.created_amount, f.reopened_count, f.reopened_amount, f.moved_in_count, f.moved_in_amount,
       f.increased_count, f.increased_amount, f.decreased_count, f.decreased_amount, f.moved_out_count,
       f.moved_out_amount, f.won_count, f.won_amount, f.lost_count, f.lost_amount, f.deleted_count,
       f.deleted_amount, f.end_count, f.end_amount""",
    "pipeline_overview": """f.pipeline_id, f.stage_id, f.deal_count, f.total_amount, f.avg_amount,
       f.avg_days_in_stage, f.entered_count""",
    "stage_conversion": """f.pipeline_id, f.stage_id, f.entered_count, f.advanced_count, f.lost_count,
       f.conversion_rate, f.avg_days_to_advance""",
    "weighted_pipeline": """f.pipeline_id, f.principal_id, f.close_month, f.deal_count, f.total_amount,
       f.weighted_amount""",
    "win_loss": """f.pipeline_id, f.principal_id, f.won_count, f.lost_count, f.won_amount,
       f.lost_amount, f.win_rate, f.win_rate_by_value, f.avg_cycle_days""",
}

# report_run's columns, as 0005 lists them.
REPORT_RUN_COLUMNS = """r.run_id, r.tenant_id, r.report_type, r.generated_at, r.period_start, r.period_end,
       r.period_grain, r.input_params, r.input_fingerprint, r.status, r.error_message, r.dagster_run_id"""

GRANT = """GRANT SELECT ON reporting.report_run_latest, reporting.report_deal_velocity_latest,
  reporting.report_pipeline_movement_latest, reporting.report_pipeline_overview_latest,
  reporting.report_stage_conversion_latest, reporting.report_weighted_pipeline_latest,
  reporting.report_win_loss_latest TO dyno_report_reader;
"""

# `final` sorts before so-far: a run beats `r` when (is final, generated_at, run_id) is greater. The
# so-far test never yields NULL (a missing key is final), so the row comparison decides on every pair.
RUN_LATEST = f"""
CREATE OR REPLACE VIEW reporting.report_run_latest WITH (security_invoker = true) AS
SELECT {REPORT_RUN_COLUMNS},
       (r.input_params ->> 'so_far') IS NOT DISTINCT FROM 'true' AS so_far
FROM reporting.report_run r
WHERE r.status = 'SUCCEEDED'
  AND NOT EXISTS (
    SELECT FROM reporting.report_run later
    WHERE later.tenant_id = r.tenant_id
      AND later.report_type = r.report_type
      AND later.input_fingerprint = r.input_fingerprint
      AND later.status = 'SUCCEEDED'
      AND ((later.input_params ->> 'so_far') IS DISTINCT FROM 'true', later.generated_at, later.run_id)
        > ((r.input_params ->> 'so_far') IS DISTINCT FROM 'true', r.generated_at, r.run_id)
  );
COMMENT ON VIEW reporting.report_run_latest IS
  'Per (tenant_id, report_type, input_fingerprint) the SUCCEEDED run that is final (not so_far) before any '
  'so-far one, then with the greatest (generated_at, run_id)';
"""

# 0005's (the same SQL; only line breaks differ).
RUN_LATEST_0005 = f"""
CREATE VIEW reporting.report_run_latest WITH (security_invoker = true) AS
SELECT {REPORT_RUN_COLUMNS}
FROM reporting.report_run r
WHERE r.status = 'SUCCEEDED'
  AND NOT EXISTS (
    SELECT FROM reporting.report_run later
    WHERE later.tenant_id = r.tenant_id
      AND later.report_type = r.report_type
      AND later.input_fingerprint = r.input_fingerprint
      AND later.status = 'SUCCEEDED'
      AND (later.generated_at, later.run_id) > (r.generated_at, r.run_id)
  );
COMMENT ON VIEW reporting.report_run_latest IS
  'Per (tenant_id, report_type, input_fingerprint) the SUCCEEDED run with the greatest (generated_at, run_id)';
"""


def report_views(create: str, extra_columns: str) -> str:
    """Every report_<name>_latest: its facts joined to report_run_latest, the run's columns after them."""
    return "\n".join(
        f"""{create} reporting.report_{name}_latest WITH (security_invoker = true) AS
SELECT f.tenant_id, f.run_id, {columns},
       {RUN_COLUMNS}{extra_columns}
FROM reporting.report_run_latest r
JOIN reporting.report_{name}_fact f ON f.tenant_id = r.tenant_id AND f.run_id = r.run_id;"""
        for name, columns in FACT_COLUMNS.items()
    )


UPGRADE = RUN_LATEST + report_views("CREATE OR REPLACE VIEW", ", r.so_far") + "\n" + GRANT

DOWNGRADE = (
    "DROP VIEW "
    + ", ".join(f"reporting.report_{name}_latest" for name in FACT_COLUMNS)
    + ";\nDROP VIEW reporting.report_run_latest;\n"
    + RUN_LATEST_0005
    + report_views("CREATE VIEW", "")
    + "\n"
    + GRANT
)


def upgrade() -> None:
    op.execute(UPGRADE)


def downgrade() -> None:
    op.execute(DOWNGRADE)
