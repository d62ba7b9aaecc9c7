"""Fact tables of stage_conversion, weighted_pipeline, win_loss and deal_velocity.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-26

Frozen: every statement is literal SQL in this file; it imports nothing from
dyno_reports, so no later change to shared code can change what it does.
Each fact table gets the deferred constraint trigger of 0001 (facts only of
a SUCCEEDED run of the same tenant) and its row in reporting.report_type.
"""

from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

UPGRADE = """
CREATE TABLE reporting.report_stage_conversion_fact (
  run_id               uuid NOT NULL,
  tenant_id            uuid NOT NULL,
  pipeline_id          uuid NOT NULL,
  stage_id             uuid NOT NULL,
  entered_count        bigint NOT NULL
                       CONSTRAINT ck_report_stage_conversion_fact_entered_count CHECK (entered_count >= 0),
  advanced_count       bigint NOT NULL
                       CONSTRAINT ck_report_stage_conversion_fact_advanced_count CHECK (advanced_count >= 0),
  lost_count           bigint NOT NULL
                       CONSTRAINT ck_report_stage_conversion_fact_lost_count CHECK (lost_count >= 0),
  conversion_rate      numeric(6,4),
  avg_days_to_advance  numeric(14,2),
  CONSTRAINT uq_report_stage_conversion_fact_run_id_dims UNIQUE NULLS NOT DISTINCT (run_id, stage_id),
  CONSTRAINT fk_report_stage_conversion_fact_tenant_id_run_id_report_run FOREIGN KEY (tenant_id, run_id)
    REFERENCES reporting.report_run (tenant_id, run_id) ON DELETE CASCADE
);
CREATE CONSTRAINT TRIGGER facts_need_succeeded_run
  AFTER INSERT OR UPDATE ON reporting.report_stage_conversion_fact
  DEFERRABLE INITIALLY DEFERRED
  FOR EACH ROW EXECUTE FUNCTION reporting.fact_requires_succeeded_run();
INSERT INTO reporting.report_type (report_type, fact_table)
  VALUES ('stage_conversion', 'report_stage_conversion_fact');

CREATE TABLE reporting.report_weighted_pipeline_fact (
  run_id           uuid NOT NULL,
  tenant_id        uuid NOT NULL,
  pipeline_id      uuid NOT NULL,
  principal_id     uuid NOT NULL,
  close_month      date,
  deal_count       bigint NOT NULL
                   CONSTRAINT ck_report_weighted_pipeline_fact_deal_count CHECK (deal_count >= 0),
  total_amount     numeric(28,2) NOT NULL
                   CONSTRAINT ck_report_weighted_pipeline_fact_total_amount CHECK (total_amount >= 0),
  weighted_amount  numeric(28,2) NOT NULL
                   CONSTRAINT ck_report_weighted_pipeline_fact_weighted_amount CHECK (weighted_amount >= 0),
  CONSTRAINT uq_report_weighted_pipeline_fact_run_id_dims
    UNIQUE NULLS NOT DISTINCT (run_id, pipeline_id, principal_id, close_month),
  CONSTRAINT fk_report_weighted_pipeline_fact_tenant_id_run_id_report_run FOREIGN KEY (tenant_id, run_id)
    REFERENCES reporting.report_run (tenant_id, run_id) ON DELETE CASCADE
);
CREATE CONSTRAINT TRIGGER facts_need_succeeded_run
  AFTER INSERT OR UPDATE ON reporting.report_weighted_pipeline_fact
  DEFERRABLE INITIALLY DEFERRED
  FOR EACH ROW EXECUTE FUNCTION reporting.fact_requires_succeeded_run();
INSERT INTO reporting.report_type (report_type, fact_table)
  VALUES ('weighted_pipeline', 'report_weighted_pipeline_fact');

CREATE TABLE reporting.report_win_loss_fact (
  run_id             uuid NOT NULL,
  tenant_id          uuid NOT NULL,
  pipeline_id        uuid NOT NULL,
  principal_id       uuid NOT NULL,
  won_count          bigint NOT NULL CONSTRAINT ck_report_win_loss_fact_won_count CHECK (won_count >= 0),
  lost_count         bigint NOT NULL CONSTRAINT ck_report_win_loss_fact_lost_count CHECK (lost_count >= 0),
  won_amount         numeric(28,2) NOT NULL CONSTRAINT ck_report_win_loss_fact_won_amount CHECK (won_amount >= 0),
  lost_amount        numeric(28,2) NOT NULL CONSTRAINT ck_report_win_loss_fact_lost_amount CHECK (lost_amount >= 0),
  win_rate           numeric(6,4),
  win_rate_by_value  numeric(6,4),
  avg_cycle_days     numeric(14,2),
  CONSTRAINT uq_report_win_loss_fact_run_id_dims UNIQUE NULLS NOT DISTINCT (run_id, pipeline_id, principal_id),
  CONSTRAINT fk_report_win_loss_fact_tenant_id_run_id_report_run FOREIGN KEY (tenant_id, run_id)
    REFERENCES reporting.report_run (tenant_id, run_id) ON DELETE CASCADE
);
CREATE CONSTRAINT TRIGGER facts_need_succeeded_run
  AFTER INSERT OR UPDATE ON reporting.report_win_loss_fact
  DEFERRABLE INITIALLY DEFERRED
  FOR EACH ROW EXECUTE FUNCTION reporting.fact_requires_succeeded_run();
INSERT INTO reporting.report_type (report_type, fact_table)
  VALUES ('win_loss', 'report_win_loss_fact');

CREATE TABLE reporting.report_deal_velocity_fact (
  run_id        uuid NOT NULL,
  tenant_id     uuid NOT NULL,
  pipeline_id   uuid NOT NULL,
  stage_id      uuid NOT NULL,
  exited_count  bigint NOT NULL CONSTRAINT ck_report_deal_velocity_fact_exited_count CHECK (exited_count >= 0),
  avg_days      numeric(14,2),
  p50_days      numeric(14,2),
  p90_days      numeric(14,2),
  CONSTRAINT uq_report_deal_velocity_fact_run_id_dims UNIQUE NULLS NOT DISTINCT (run_id, stage_id),
  CONSTRAINT fk_report_deal_velocity_fact_tenant_id_run_id_report_run FOREIGN KEY (tenant_id, run_id)
    REFERENCES reporting.report_run (tenant_id, run_id) ON DELETE CASCADE
);
CREATE CONSTRAINT TRIGGER facts_need_succeeded_run
  AFTER INSERT OR UPDATE ON reporting.report_deal_velocity_fact
  DEFERRABLE INITIALLY DEFERRED
  FOR EACH ROW EXECUTE FUNCTION reporting.fact_requires_succeeded_run();
INSERT INTO reporting.report_type (report_type, fact_table)
  VALUES ('deal_velocity', 'report_deal_velocity_fact');
"""

DOWNGRADE = """
DROP TABLE reporting.report_deal_velocity_fact;
DELETE FROM reporting.report_type WHERE report_type = 'deal_velocity';
DROP TABLE reporting.report_win_loss_fact;
DELETE FROM reporting.report_type WHERE report_type = 'win_loss';
DROP TABLE reporting.report_weighted_pipeline_fact;
DELETE FROM reporting.report_type WHERE report_type = 'weighted_pipeline';
DROP TABLE reporting.report_stage_conversion_fact;
DELETE FROM reporting.report_type WHERE report_type = 'stage_conversion';
"""


def upgrade() -> None:
    op.execute(UPGRADE)


def downgrade() -> None:
    op.execute(DOWNGRADE)
