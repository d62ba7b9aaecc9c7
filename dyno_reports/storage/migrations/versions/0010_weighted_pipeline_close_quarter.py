"""weighted_pipeline gains close_quarter: the first day of the tenant's fiscal quarter of the expected close date.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-09

Frozen: every statement is literal SQL in this file; it imports nothing from
dyno_reports, so no later change to shared code can change what it does.

- `reporting.report_weighted_pipeline_fact.close_quarter` (date, nullable): a
  new column without a default rewrites no row and takes no table scan. Facts
  never change (the immutability triggers), so runs made before this revision
  keep `close_quarter` NULL: it is not known which fiscal year their tenant had.
  It is not part of the row's key: a row is still one (pipeline_id,
  principal_id, close_month), and close_quarter follows from close_month and
  the tenant's fiscal start month.
- `reporting.report_weighted_pipeline_latest` shows it. CREATE OR REPLACE VIEW
  may only append columns after the existing ones (it cannot insert one beside
  close_month, nor reorder), so close_quarter comes last, after the run's
  columns and `so_far`. Replacing the view keeps its grants and whatever a CRM
  or an analyst built on it; dropping and creating it again would fail on (or,
  with CASCADE, silently drop) those dependents. CREATE OR REPLACE resets the
  view's options, so `security_invoker = true` is given again (as in 0007).
- Downgrade: the view is dropped and created as 0007 left it (a column cannot
  be removed by CREATE OR REPLACE), with 0005's grant, then the column goes.
"""

from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None

ADD_COLUMN = """
ALTER TABLE reporting.report_weighted_pipeline_fact ADD COLUMN close_quarter date;
"""

# 0007's view, with or without close_quarter appended after its last column.
VIEW = """
{create} reporting.report_weighted_pipeline_latest WITH (security_invoker = true) AS
SELECT f.tenant_id, f.run_id, f.pipeline_id, f.principal_id, f.close_month, f.deal_count, f.total_amount,
       f.weighted_amount,
       r.period_start, r.period_end, r.period_grain, r.input_fingerprint, r.input_params, r.generated_at,
       r.so_far{close_quarter}
FROM reporting.report_run_latest r
JOIN reporting.report_weighted_pipeline_fact f ON f.tenant_id = r.tenant_id AND f.run_id = r.run_id;
"""

GRANT = "GRANT SELECT ON reporting.report_weighted_pipeline_latest TO dyno_report_reader;\n"

UPGRADE = ADD_COLUMN + VIEW.format(create="CREATE OR REPLACE VIEW", close_quarter=", f.close_quarter")

DOWNGRADE = (
    "DROP VIEW reporting.report_weighted_pipeline_latest;\n"
    + VIEW.format(create="CREATE VIEW", close_quarter="")
    + GRANT
    + "ALTER TABLE reporting.report_weighted_pipeline_fact DROP COLUMN close_quarter;\n"
)


def upgrade() -> None:
    op.execute(UPGRADE)


def downgrade() -> None:
    op.execute(DOWNGRADE)
