"""Fact table of pipeline_movement, with the guards every fact table has (0001-0003).

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-26

Frozen: every statement is literal SQL in this file; it imports nothing from
dyno_reports, so no later change to shared code can change what it does.
`reporting.report_pipeline_movement_fact` gets what 0001-0003 gave the other
fact tables: the foreign key to its run (same tenant), named non-negative CHECKs,
the deferred trigger refusing facts of a run that is not SUCCEEDED, the
immutability and no-truncate triggers, row-level security with the
`tenant_isolation` policy, the grants of the reader and writer roles, and its
row in `reporting.report_type`.
"""

from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

UPGRADE = """
CREATE TABLE reporting.report_pipeline_movement_fact (
  run_id           uuid NOT NULL,
  tenant_id        uuid NOT NULL,
  pipeline_id      uuid NOT NULL,
  start_count      bigint NOT NULL
                   CONSTRAINT ck_report_pipeline_movement_fact_start_count CHECK (start_count >= 0),
  start_amount     numeric(28,2) NOT NULL
                   CONSTRAINT ck_report_pipeline_movement_fact_start_amount CHECK (start_amount >= 0),
  created_count    bigint NOT NULL
                   CONSTRAINT ck_report_pipeline_movement_fact_created_count CHECK (created_count >= 0),
  created_amount   numeric(28,2) NOT NULL
                   CONSTRAINT ck_report_pipeline_movement_fact_created_amount CHECK (created_amount >= 0),
  reopened_count   bigint NOT NULL
                   CONSTRAINT ck_report_pipeline_movement_fact_reopened_count CHECK (reopened_count >= 0),
  reopened_amount  numeric(28,2) NOT NULL
                   CONSTRAINT ck_report_pipeline_movement_fact_reopened_amount CHECK (reopened_amount >= 0),
  moved_in_count   bigint NOT NULL
                   CONSTRAINT ck_report_pipeline_movement_fact_moved_in_count CHECK (moved_in_count >= 0),
  moved_in_amount  numeric(28,2) NOT NULL
                   CONSTRAINT ck_report_pipeline_movement_fact_moved_in_amount CHECK (moved_in_amount >= 0),
  increased_count  bigint NOT NULL
                   CONSTRAINT ck_report_pipeline_movement_fact_increased_count CHECK (increased_count >= 0),
  increased_amount numeric(28,2) NOT NULL
                   CONSTRAINT ck_report_pipeline_movement_fact_increased_amount CHECK (increased_amount >= 0),
  decreased_count  bigint NOT NULL
                   CONSTRAINT ck_report_pipeline_movement_fact_decreased_count CHECK (decreased_count >= 0),
  decreased_amount numeric(28,2) NOT NULL
                   CONSTRAINT ck_report_pipeline_movement_fact_decreased_amount CHECK (decreased_amount >= 0),
  moved_out_count  bigint NOT NULL
                   CONSTRAINT ck_report_pipeline_movement_fact_moved_out_count CHECK (moved_out_count >= 0),
  moved_out_amount numeric(28,2) NOT NULL
                   CONSTRAINT ck_report_pipeline_movement_fact_moved_out_amount CHECK (moved_out_amount >= 0),
  won_count        bigint NOT NULL
                   CONSTRAINT ck_report_pipeline_movement_fact_won_count CHECK (won_count >= 0),
  won_amount       numeric(28,2) NOT NULL
                   CONSTRAINT ck_report_pipeline_movement_fact_won_amount CHECK (won_amount >= 0),
  lost_count       bigint NOT NULL
                   CONSTRAINT ck_report_pipeline_movement_fact_lost_count CHECK (lost_count >= 0),
  lost_amount      numeric(28,2) NOT NULL
                   CONSTRAINT ck_report_pipeline_movement_fact_lost_amount CHECK (lost_amount >= 0),
  deleted_count    bigint NOT NULL
                   CONSTRAINT ck_report_pipeline_movement_fact_deleted_count CHECK (deleted_count >= 0),
  deleted_amount   numeric(28,2) NOT NULL
                   CONSTRAINT ck_report_pipeline_movement_fact_deleted_amount CHECK (deleted_amount >= 0),
  end_count        bigint NOT NULL
                   CONSTRAINT ck_report_pipeline_movement_fact_end_count CHECK (end_count >= 0),
  end_amount       numeric(28,2) NOT NULL
                   CONSTRAINT ck_report_pipeline_movement_fact_end_amount CHECK (end_amount >= 0),
  CONSTRAINT uq_report_pipeline_movement_fact_run_id_dims UNIQUE NULLS NOT DISTINCT (run_id, pipeline_id),
  CONSTRAINT fk_report_pipeline_movement_fact_tenant_id_run_id_report_run FOREIGN KEY (tenant_id, run_id)
    REFERENCES reporting.report_run (tenant_id, run_id) ON DELETE CASCADE
);
CREATE CONSTRAINT TRIGGER facts_need_succeeded_run
  AFTER INSERT OR UPDATE ON reporting.report_pipeline_movement_fact
  DEFERRABLE INITIALLY DEFERRED
  FOR EACH ROW EXECUTE FUNCTION reporting.fact_requires_succeeded_run();
CREATE TRIGGER facts_are_immutable BEFORE UPDATE OR DELETE ON reporting.report_pipeline_movement_fact
  FOR EACH ROW EXECUTE FUNCTION reporting.report_history_is_kept();
CREATE TRIGGER facts_are_not_truncated BEFORE TRUNCATE ON reporting.report_pipeline_movement_fact
  FOR EACH STATEMENT EXECUTE FUNCTION reporting.report_history_is_kept();

ALTER TABLE reporting.report_pipeline_movement_fact ENABLE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON reporting.report_pipeline_movement_fact
  USING (tenant_id = (SELECT reporting.current_tenant_id()))
  WITH CHECK (tenant_id = (SELECT reporting.current_tenant_id()));
GRANT SELECT ON reporting.report_pipeline_movement_fact TO dyno_report_reader;
GRANT SELECT, INSERT, UPDATE ON reporting.report_pipeline_movement_fact TO dyno_report_writer;

INSERT INTO reporting.report_type (report_type, fact_table)
  VALUES ('pipeline_movement', 'report_pipeline_movement_fact');
"""

# As in 0002: while runs of the report exist, the foreign key of report_run refuses the last
# statement and the whole downgrade rolls back (history is kept; prune those runs first).
DOWNGRADE = """
DROP TABLE reporting.report_pipeline_movement_fact;
DELETE FROM reporting.report_type WHERE report_type = 'pipeline_movement';
"""


def upgrade() -> None:
    op.execute(UPGRADE)


def downgrade() -> None:
    op.execute(DOWNGRADE)
