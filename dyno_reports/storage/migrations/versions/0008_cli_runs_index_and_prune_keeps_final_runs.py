"""Runs made outside Dagster found by an index; the retention path keeps the run the latest views show.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-07

Frozen: every statement is literal SQL in this file; it imports nothing from
dyno_reports, so no later change to shared code can change what it does.

- `ix_report_run_cli_runs`: the SUCCEEDED runs with no `dagster_run_id`, by
  (generated_at, run_id): the order in which `report_runs_from_cli_sensor`
  (dagster_defs/cli_runs.py) reads them after its cursor, so a tick reads its
  batch off the index instead of scanning and sorting every run of the fleet.
- `reporting.prune_report_runs`: the SUCCEEDED run it never deletes, per (tenant,
  input fingerprint), is the one `reporting.report_run_latest` shows since 0007: a
  final run before any so-far run (`input_params.so_far`), then the newest. Before,
  it was the newest by `generated_at`, so a so-far run made after a final run of
  the same window could leave the final one to be pruned. Same signature, grants
  and comment; the body differs in that one ORDER BY. Downgrade restores 0003's.
"""

from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

CLI_RUNS_INDEX = """
CREATE INDEX ix_report_run_cli_runs ON reporting.report_run (generated_at, run_id)
WHERE dagster_run_id IS NULL AND status = 'SUCCEEDED';
"""

# 0003's ranking of a (tenant, fingerprint)'s runs of one status, and this revision's: final runs first.
NEWEST_FIRST = """ORDER BY r.generated_at DESC, r.run_id DESC) AS recency_in_status"""
FINAL_FIRST = """ORDER BY (r.input_params ->> 'so_far') IS NOT DISTINCT FROM 'true',
                                           r.generated_at DESC, r.run_id DESC) AS recency_in_status"""

COMMENT = """
COMMENT ON FUNCTION reporting.prune_report_runs(integer, boolean, uuid, text) IS
  'The one retention path: deletes runs beyond the keep_latest newest per (tenant, report type, input fingerprint), '
  '{kept}; dry_run (default true) deletes nothing';
"""
KEPT_0003 = "never the newest SUCCEEDED one"
KEPT = "never the SUCCEEDED one reporting.report_run_latest shows (final before so-far, then newest)"

PRUNE = """
CREATE OR REPLACE FUNCTION reporting.prune_report_runs(
  keep_latest integer,
  dry_run boolean DEFAULT true,
  only_tenant uuid DEFAULT NULL,
  only_report text DEFAULT NULL
) RETURNS TABLE (
  run_id uuid, tenant_id uuid, report_type text, input_fingerprint text, status text,
  generated_at timestamptz, fact_rows bigint, deleted boolean
)
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
SET dyno.retention = 'prune'
AS $fn$
#variable_conflict use_column
DECLARE
  kind record;
BEGIN
  IF keep_latest IS NULL OR keep_latest < 0 THEN
    RAISE EXCEPTION 'keep_latest must be 0 or more, got %', coalesce(keep_latest::text, 'NULL')
      USING ERRCODE = 'invalid_parameter_value';
  END IF;
  IF dry_run IS NULL THEN
    RAISE EXCEPTION 'dry_run must be true or false' USING ERRCODE = 'invalid_parameter_value';
  END IF;
  IF only_report IS NOT NULL AND NOT EXISTS (
    SELECT FROM reporting.report_type t WHERE t.report_type = only_report
  ) THEN
    RAISE EXCEPTION 'unknown report type %', quote_literal(only_report) USING ERRCODE = 'invalid_parameter_value';
  END IF;
  -- one prune at a time (a second one waits, then sees what the first left)
  PERFORM pg_advisory_xact_lock(hashtext('reporting.prune_report_runs'));
  FOR kind IN
    SELECT t.report_type, t.fact_table FROM reporting.report_type t
    WHERE only_report IS NULL OR t.report_type = only_report
    ORDER BY t.report_type
  LOOP
    RETURN QUERY EXECUTE format($q$
      WITH ranked AS (
        SELECT r.run_id, r.tenant_id, r.report_type, r.input_fingerprint, r.status, r.generated_at,
               row_number() OVER (PARTITION BY r.tenant_id, r.input_fingerprint
                                  ORDER BY r.generated_at DESC, r.run_id DESC) AS recency,
               row_number() OVER (PARTITION BY r.tenant_id, r.input_fingerprint, r.status
                                  ORDER BY (r.input_params ->> 'so_far') IS NOT DISTINCT FROM 'true',
                                           r.generated_at DESC, r.run_id DESC) AS recency_in_status
        FROM reporting.report_run r
        WHERE r.report_type = $1 AND ($2::uuid IS NULL OR r.tenant_id = $2)
      ),
      doomed AS (
        SELECT * FROM ranked
        WHERE recency > $3 AND status <> 'IN_PROGRESS' AND NOT (status = 'SUCCEEDED' AND recency_in_status = 1)
      ),
      facts AS (
        SELECT f.run_id, count(*) AS n FROM reporting.%I f JOIN doomed d ON d.run_id = f.run_id GROUP BY f.run_id
      ),
      gone AS (
        DELETE FROM reporting.report_run r USING doomed d WHERE r.run_id = d.run_id AND NOT $4 RETURNING r.run_id
      )
      SELECT d.run_id, d.tenant_id, d.report_type, d.input_fingerprint, d.status, d.generated_at,
             coalesce(f.n, 0)::bigint, g.run_id IS NOT NULL
      FROM doomed d LEFT JOIN facts f ON f.run_id = d.run_id LEFT JOIN gone g ON g.run_id = d.run_id
      ORDER BY d.tenant_id, d.generated_at, d.run_id
    $q$, kind.fact_table) USING kind.report_type, only_tenant, keep_latest, dry_run;
  END LOOP;
END $fn$;
"""


def upgrade() -> None:
    op.execute(CLI_RUNS_INDEX)
    op.execute(PRUNE)
    op.execute(COMMENT.format(kept=KEPT))


def downgrade() -> None:
    assert FINAL_FIRST in PRUNE
    op.execute(PRUNE.replace(FINAL_FIRST, NEWEST_FIRST))
    op.execute(COMMENT.format(kept=KEPT_0003))
    op.execute("DROP INDEX reporting.ix_report_run_cli_runs;")
