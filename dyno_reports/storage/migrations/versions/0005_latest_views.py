"""Latest views: per tenant, report type and inputs, the latest SUCCEEDED run, and per report its facts.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-26

Frozen: every statement is literal SQL in this file; it imports nothing from
dyno_reports, so no later change to shared code can change what it does.

- `reporting.report_run_latest`: every column of `reporting.report_run`, one row
  per (tenant_id, report_type, input_fingerprint): its SUCCEEDED run with the
  greatest (generated_at, run_id). FAILED and IN_PROGRESS runs never hide it.
- `reporting.report_<name>_latest`, one per report: the facts of those runs
  (tenant_id, run_id, the report's dimensions and metrics) with the run's
  period_start, period_end, period_grain, input_fingerprint, input_params and
  generated_at.

The views are `security_invoker` (PostgreSQL 15+): they read the tables with the
caller's rights, so the tenant_isolation policies apply through them (a view
owned by the migrating user would otherwise bypass row-level security).
`report_run_latest` is a NOT EXISTS (anti-join), not DISTINCT ON, so a caller's
filters (tenant, report, period_end, run_id) reach the table's indexes.
"""

from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

UPGRADE = """
CREATE VIEW reporting.report_run_latest WITH (security_invoker = true) AS
SELECT r.run_id, r.tenant_id, r.report_type, r.generated_at, r.period_start, r.period_end, r.period_grain,
       r.input_params, r.input_fingerprint, r.status, r.error_message, r.dagster_run_id
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

CREATE VIEW reporting.report_deal_velocity_latest WITH (security_invoker = true) AS
SELECT f.tenant_id, f.run_id, f.pipeline_id, f.stage_id, f.exited_count, f.avg_days, f.p50_days, f.p90_days,
       r.period_start, r.period_end, r.period_grain, r.input_fingerprint, r.input_params, r.generated_at
FROM reporting.report_run_latest r
JOIN reporting.report_deal_velocity_fact f ON f.tenant_id = r.tenant_id AND f.run_id = r.run_id;

CREATE VIEW reporting.report_pipeline_movement_latest WITH (security_invoker = true) AS
SELECT f.tenant_id, f.run_id, f.pipeline_id, f.start_count, f.start_amount, f.created_count,
       f.created_amount, f.reopened_count, f.reopened_amount, f.moved_in_count, f.moved_in_amount,
       f.increased_count, f.increased_amount, f.decreased_count, f.decreased_amount, f.moved_out_count,
       f.moved_out_amount, f.won_count, f.won_amount, f.lost_count, f.lost_amount, f.deleted_count,
       f.deleted_amount, f.end_count, f.end_amount,
       r.period_start, r.period_end, r.period_grain, r.input_fingerprint, r.input_params, r.generated_at
FROM reporting.report_run_latest r
JOIN reporting.report_pipeline_movement_fact f ON f.tenant_id = r.tenant_id AND f.run_id = r.run_id;

CREATE VIEW reporting.report_pipeline_overview_latest WITH (security_invoker = true) AS
SELECT f.tenant_id, f.run_id, f.pipeline_id, f.stage_id, f.deal_count, f.total_amount, f.avg_amount,
       f.avg_days_in_stage, f.entered_count,
       r.period_start, r.period_end, r.period_grain, r.input_fingerprint, r.input_params, r.generated_at
FROM reporting.report_run_latest r
JOIN reporting.report_pipeline_overview_fact f ON f.tenant_id = r.tenant_id AND f.run_id = r.run_id;

CREATE VIEW reporting.report_stage_conversion_latest WITH (security_invoker = true) AS
SELECT f.tenant_id, f.run_id, f.pipeline_id, f.stage_id, f.entered_count, f.advanced_count, f.lost_count,
       f.conversion_rate, f.avg_days_to_advance,
       r.period_start, r.period_end, r.period_grain, r.input_fingerprint, r.input_params, r.generated_at
FROM reporting.report_run_latest r
JOIN reporting.report_stage_conversion_fact f ON f.tenant_id = r.tenant_id AND f.run_id = r.run_id;

CREATE VIEW reporting.report_weighted_pipeline_latest WITH (security_invoker = true) AS
SELECT f.tenant_id, f.run_id, f.pipeline_id, f.principal_id, f.close_month, f.deal_count, f.total_amount,
       f.weighted_amount,
       r.period_start, r.period_end, r.period_grain, r.input_fingerprint, r.input_params, r.generated_at
FROM reporting.report_run_latest r
JOIN reporting.report_weighted_pipeline_fact f ON f.tenant_id = r.tenant_id AND f.run_id = r.run_id;

CREATE VIEW reporting.report_win_loss_latest WITH (security_invoker = true) AS
SELECT f.tenant_id, f.run_id, f.pipeline_id, f.principal_id, f.won_count, f.lost_count, f.won_amount,
       f.lost_amount, f.win_rate, f.win_rate_by_value, f.avg_cycle_days,
       r.period_start, r.period_end, r.period_grain, r.input_fingerprint, r.input_params, r.generated_at
FROM reporting.report_run_latest r
JOIN reporting.report_win_loss_fact f ON f.tenant_id = r.tenant_id AND f.run_id = r.run_id;

GRANT SELECT ON reporting.report_run_latest, reporting.report_deal_velocity_latest,
  reporting.report_pipeline_movement_latest, reporting.report_pipeline_overview_latest,
  reporting.report_stage_conversion_latest, reporting.report_weighted_pipeline_latest,
  reporting.report_win_loss_latest TO dyno_report_reader;
"""

DOWNGRADE = """
DROP VIEW reporting.report_deal_velocity_latest, reporting.report_pipeline_movement_latest,
  reporting.report_pipeline_overview_latest, reporting.report_stage_conversion_latest,
  reporting.report_weighted_pipeline_latest, reporting.report_win_loss_latest;
DROP VIEW reporting.report_run_latest;
"""


def upgrade() -> None:
    op.execute(UPGRADE)


def downgrade() -> None:
    op.execute(DOWNGRADE)
