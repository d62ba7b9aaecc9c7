"""CRM source contract, reporting core (report_type, report_run) and pipeline_overview facts.

Revision ID: 0001
Revises:
Create Date: 2026-11-26

Frozen: every statement is literal SQL in this file; it imports nothing from
dyno_reports, so no later change to shared code can change what it does.
"""

from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

# The CRM source contract (docs/definitions.md), verbatim but for IF NOT EXISTS: in production
# the CRM owns these tables and they exist before our migrations run; the demo, tests
# and benchmarks get them from here. External loaders insert into them with plain SQL.
CRM_OWNED_BY_US = "dyno-reports: created by migration 0001"
CRM_CONTRACT = """
CREATE SCHEMA IF NOT EXISTS crm;

CREATE TABLE IF NOT EXISTS crm.tenant (
  tenant_id   uuid PRIMARY KEY,
  name        text NOT NULL,
  created_at  timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE IF NOT EXISTS crm.principal (
  tenant_id     uuid NOT NULL REFERENCES crm.tenant,
  principal_id  uuid NOT NULL,
  display_name  text NOT NULL,
  PRIMARY KEY (tenant_id, principal_id)
);

CREATE TABLE IF NOT EXISTS crm.pipeline (
  tenant_id    uuid NOT NULL REFERENCES crm.tenant,
  pipeline_id  uuid NOT NULL,
  name         text NOT NULL,
  PRIMARY KEY (tenant_id, pipeline_id)
);

CREATE TABLE IF NOT EXISTS crm.stage (
  tenant_id    uuid NOT NULL,
  stage_id     uuid NOT NULL,
  pipeline_id  uuid NOT NULL,
  name         text NOT NULL,
  position     integer NOT NULL,
  probability  numeric(5,4) NOT NULL CHECK (probability BETWEEN 0 AND 1),
  kind         text NOT NULL CHECK (kind IN ('open', 'won', 'lost')),
  PRIMARY KEY (tenant_id, stage_id),
  UNIQUE (tenant_id, pipeline_id, position),
  FOREIGN KEY (tenant_id, pipeline_id) REFERENCES crm.pipeline
);

CREATE TABLE IF NOT EXISTS crm.deal (
  tenant_id   uuid NOT NULL REFERENCES crm.tenant,
  deal_id     uuid NOT NULL,
  name        text NOT NULL,
  created_at  timestamptz NOT NULL,
  PRIMARY KEY (tenant_id, deal_id)
);

CREATE TABLE IF NOT EXISTS crm.deal_history (
  tenant_id            uuid NOT NULL,
  deal_id              uuid NOT NULL,
  valid_from           timestamptz NOT NULL,
  stage_id             uuid NOT NULL,
  owner_principal_id   uuid NOT NULL,
  amount               numeric(18,2) NOT NULL CHECK (amount >= 0),
  expected_close_date  date,
  is_deleted           boolean NOT NULL DEFAULT false,
  PRIMARY KEY (tenant_id, deal_id, valid_from),
  FOREIGN KEY (tenant_id, deal_id) REFERENCES crm.deal,
  FOREIGN KEY (tenant_id, stage_id) REFERENCES crm.stage,
  FOREIGN KEY (tenant_id, owner_principal_id) REFERENCES crm.principal
);
"""

REPORTING_CORE = """
CREATE SCHEMA IF NOT EXISTS reporting;

CREATE TABLE reporting.report_type (
  report_type  text CONSTRAINT pk_report_type PRIMARY KEY,
  fact_table   text NOT NULL CONSTRAINT uq_report_type_fact_table UNIQUE
);

CREATE TABLE reporting.report_run (
  run_id             uuid NOT NULL,
  tenant_id          uuid NOT NULL,
  report_type        text NOT NULL,
  generated_at       timestamptz NOT NULL DEFAULT now(),
  period_start       timestamptz,
  period_end         timestamptz,
  period_grain       text NOT NULL,
  input_params       jsonb NOT NULL DEFAULT '{}'::jsonb,
  input_fingerprint  text NOT NULL,
  status             text NOT NULL,
  error_message      text,
  dagster_run_id     text,
  CONSTRAINT pk_report_run PRIMARY KEY (run_id),
  CONSTRAINT uq_report_run_tenant_id_run_id UNIQUE (tenant_id, run_id),
  CONSTRAINT fk_report_run_report_type_report_type FOREIGN KEY (report_type)
    REFERENCES reporting.report_type (report_type),
  CONSTRAINT ck_report_run_status CHECK (status IN ('IN_PROGRESS', 'SUCCEEDED', 'FAILED')),
  CONSTRAINT ck_report_run_failed_has_error CHECK (status <> 'FAILED' OR error_message IS NOT NULL),
  CONSTRAINT ck_report_run_period_order CHECK (period_start IS NULL OR period_end > period_start),
  CONSTRAINT ck_report_run_period_grain
    CHECK (period_grain IN ('week', 'month', 'quarter', 'custom', 'unbounded')),
  CONSTRAINT ck_report_run_input_fingerprint CHECK (input_fingerprint ~ '^[0-9a-f]{64}$')
);

-- Trend reads: the runs of one tenant and report over time, newest first.
CREATE INDEX ix_report_run_tenant_id_report_type_period_end
  ON reporting.report_run (tenant_id, report_type, period_end, generated_at);
CREATE INDEX ix_report_run_input_fingerprint ON reporting.report_run (input_fingerprint);
CREATE INDEX ix_report_run_dagster_run_id ON reporting.report_run (dagster_run_id)
  WHERE dagster_run_id IS NOT NULL;

-- A run's outcome is final: once SUCCEEDED or FAILED its status never changes,
-- so facts that were committed with a SUCCEEDED run stay with one.
CREATE FUNCTION reporting.report_run_status_is_final() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
  IF OLD.status <> 'IN_PROGRESS' AND NEW.status IS DISTINCT FROM OLD.status THEN
    RAISE EXCEPTION 'report run % is % and cannot become %', OLD.run_id, OLD.status, NEW.status
      USING ERRCODE = 'check_violation';
  END IF;
  RETURN NEW;
END $$;
CREATE TRIGGER report_run_status_is_final BEFORE UPDATE OF status ON reporting.report_run
  FOR EACH ROW EXECUTE FUNCTION reporting.report_run_status_is_final();

CREATE FUNCTION reporting.fact_requires_succeeded_run() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
  IF NOT EXISTS (
    SELECT 1 FROM reporting.report_run r
    WHERE r.run_id = NEW.run_id AND r.tenant_id = NEW.tenant_id AND r.status = 'SUCCEEDED'
  ) THEN
    RAISE EXCEPTION 'facts of report run % cannot be committed: the run is not SUCCEEDED', NEW.run_id
      USING ERRCODE = 'integrity_constraint_violation';
  END IF;
  RETURN NULL;
END $$;
"""

# The deferred constraint trigger makes PostgreSQL refuse, at commit, any fact row
# whose run is not SUCCEEDED for the same tenant: facts of a failed or unfinished
# run can never become visible, whoever writes them.
PIPELINE_OVERVIEW_FACT = """
CREATE TABLE reporting.report_pipeline_overview_fact (
  run_id             uuid NOT NULL,
  tenant_id          uuid NOT NULL,
  pipeline_id        uuid NOT NULL,
  stage_id           uuid NOT NULL,
  deal_count         bigint NOT NULL CONSTRAINT ck_report_pipeline_overview_fact_deal_count CHECK (deal_count >= 0),
  total_amount       numeric(28,2) NOT NULL
                     CONSTRAINT ck_report_pipeline_overview_fact_total_amount CHECK (total_amount >= 0),
  avg_amount         numeric(28,2) CONSTRAINT ck_report_pipeline_overview_fact_avg_amount CHECK (avg_amount >= 0),
  avg_days_in_stage  numeric(14,2),
  entered_count      bigint NOT NULL
                     CONSTRAINT ck_report_pipeline_overview_fact_entered_count CHECK (entered_count >= 0),
  CONSTRAINT uq_report_pipeline_overview_fact_run_id_dims UNIQUE NULLS NOT DISTINCT (run_id, stage_id),
  CONSTRAINT fk_report_pipeline_overview_fact_tenant_id_run_id_report_run FOREIGN KEY (tenant_id, run_id)
    REFERENCES reporting.report_run (tenant_id, run_id) ON DELETE CASCADE
);

CREATE CONSTRAINT TRIGGER facts_need_succeeded_run
  AFTER INSERT OR UPDATE ON reporting.report_pipeline_overview_fact
  DEFERRABLE INITIALLY DEFERRED
  FOR EACH ROW EXECUTE FUNCTION reporting.fact_requires_succeeded_run();

INSERT INTO reporting.report_type (report_type, fact_table)
  VALUES ('pipeline_overview', 'report_pipeline_overview_fact');
"""


def upgrade() -> None:
    crm_exists = op.get_bind().exec_driver_sql("SELECT to_regnamespace('crm') IS NOT NULL").scalar()
    op.execute(CRM_CONTRACT)
    if not crm_exists:
        op.execute(f"COMMENT ON SCHEMA crm IS '{CRM_OWNED_BY_US}'")
    op.execute(REPORTING_CORE)
    op.execute(PIPELINE_OVERVIEW_FACT)


def downgrade() -> None:
    # The reporting schema also holds Alembic's version table: drop our objects, not the schema.
    op.execute("DROP TABLE reporting.report_pipeline_overview_fact, reporting.report_run, reporting.report_type")
    op.execute("DROP FUNCTION reporting.report_run_status_is_final(), reporting.fact_requires_succeeded_run()")
    # Drop the CRM tables only when this migration created them (never the CRM's own).
    owner_note = (
        op.get_bind().exec_driver_sql("SELECT obj_description(to_regnamespace('crm'), 'pg_namespace')").scalar()
    )
    if owner_note == CRM_OWNED_BY_US:
        op.execute("DROP SCHEMA crm CASCADE")
