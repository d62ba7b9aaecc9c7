"""The stale check's cursor and findings: stale runs found reading only the rows recorded since the last check.

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-11

Frozen: every statement is literal SQL in this file; it imports nothing from
dyno_reports, so no later change to shared code can change what it does.

- `reporting.stale_check`: one row (`only_row` is true), `checked_to`: the
  transaction time of the last check (NULL: never checked). A check locks the row
  (two checks run one after the other), reads the history rows recorded after
  `checked_to` minus the CRM's longest write transaction (a row may commit that
  long after its `recorded_at`), and moves it to its own transaction time.
- `reporting.report_run_stale`: what the checks found per run (runs are final,
  their findings live beside them; they go with their run when it is pruned):
  `late_rows` and `earliest_valid_from`, the history rows of the run's tenant with
  `valid_from < period_end` and `recorded_at > known_at` found so far; of them,
  `settled_rows` / `settled_earliest` are those recorded at or before the last
  check's `checked_to` minus that longest write (all committed then, so counted
  once; the rest is read again by the next check, whose window overlaps); and what
  the last check found of the run's scope (`scope_changed`) and its report's
  version (`current_version`, NULL unless the run's is older); `unsettled_to`, the
  latest `recorded_at` of the late rows not settled yet (NULL when all are): a
  refresh with the default K sees them from that moment plus the longest write.
  Row-level security as on every reporting table with a tenant; the reader reads,
  the writer writes.
- `reporting.stale_scope`: per tenant and pipeline selection of its SUCCEEDED runs
  (`selection`: the runs' `pipeline_ids` option as recorded, JSON null for every
  pipeline, always present for a tenant with runs: it tells that any of its stages
  changed), the scope digest seen at the last check. A check compares only the
  runs of a scope whose digest changed since, and the runs made since the last
  check, with the digests now.
- `reporting.stale_version`: per report type, the report version seen at the last
  check; only when it changed are that report's runs compared with it.
- `ix_report_run_succeeded_generated_at`: the SUCCEEDED runs by `generated_at`,
  so that a check finds the runs made since the previous one without a scan.
- Downgrade: the four tables and the index go.
"""

from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None

UPGRADE = """
CREATE TABLE reporting.stale_check (
  only_row   boolean NOT NULL DEFAULT true CONSTRAINT pk_stale_check PRIMARY KEY
             CONSTRAINT ck_stale_check_only_row CHECK (only_row),
  checked_to timestamptz
);
INSERT INTO reporting.stale_check (only_row, checked_to) VALUES (true, NULL);

CREATE TABLE reporting.report_run_stale (
  run_id              uuid NOT NULL CONSTRAINT pk_report_run_stale PRIMARY KEY,
  tenant_id           uuid NOT NULL,
  late_rows           bigint NOT NULL DEFAULT 0 CONSTRAINT ck_report_run_stale_late_rows CHECK (late_rows >= 0),
  earliest_valid_from timestamptz,
  settled_rows        bigint NOT NULL DEFAULT 0
                      CONSTRAINT ck_report_run_stale_settled_rows CHECK (settled_rows >= 0),
  settled_earliest    timestamptz,
  unsettled_to        timestamptz,
  scope_changed       boolean NOT NULL DEFAULT false,
  current_version     integer,
  found_at            timestamptz NOT NULL DEFAULT now(),
  checked_at          timestamptz NOT NULL DEFAULT now(),
  CONSTRAINT fk_report_run_stale_tenant_id_run_id_report_run FOREIGN KEY (tenant_id, run_id)
    REFERENCES reporting.report_run (tenant_id, run_id) ON DELETE CASCADE
);
ALTER TABLE reporting.report_run_stale ENABLE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON reporting.report_run_stale
  USING (tenant_id = (SELECT reporting.current_tenant_id()))
  WITH CHECK (tenant_id = (SELECT reporting.current_tenant_id()));

CREATE TABLE reporting.stale_scope (
  tenant_id  uuid NOT NULL,
  selection  jsonb NOT NULL,
  digest     text NOT NULL CONSTRAINT ck_stale_scope_digest CHECK (digest ~ '^[0-9a-f]{64}$'),
  checked_at timestamptz NOT NULL DEFAULT now(),
  CONSTRAINT pk_stale_scope PRIMARY KEY (tenant_id, selection)
);
ALTER TABLE reporting.stale_scope ENABLE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON reporting.stale_scope
  USING (tenant_id = (SELECT reporting.current_tenant_id()))
  WITH CHECK (tenant_id = (SELECT reporting.current_tenant_id()));

CREATE TABLE reporting.stale_version (
  report_type    text NOT NULL CONSTRAINT pk_stale_version PRIMARY KEY,
  report_version integer NOT NULL,
  checked_at     timestamptz NOT NULL DEFAULT now()
);

GRANT SELECT ON reporting.stale_check, reporting.report_run_stale, reporting.stale_scope, reporting.stale_version
  TO dyno_report_reader;
GRANT SELECT, UPDATE ON reporting.stale_check TO dyno_report_writer;
GRANT SELECT, INSERT, UPDATE ON reporting.report_run_stale, reporting.stale_scope, reporting.stale_version
  TO dyno_report_writer;

CREATE INDEX ix_report_run_succeeded_generated_at ON reporting.report_run (generated_at)
WHERE status = 'SUCCEEDED';
"""

DOWNGRADE = """
DROP INDEX reporting.ix_report_run_succeeded_generated_at;
DROP TABLE reporting.stale_version;
DROP TABLE reporting.stale_scope;
DROP TABLE reporting.report_run_stale;
DROP TABLE reporting.stale_check;
"""


def upgrade() -> None:
    op.execute(UPGRADE)


def downgrade() -> None:
    op.execute(DOWNGRADE)
