"""Row-level security per tenant, the reader and writer roles, immutable run history and its one retention path.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-27

Frozen: every statement is literal SQL in this file; it imports nothing from
dyno_reports, so no later change to shared code can change what it does.

- `reporting.current_tenant_id()`: the tenant of the transaction, from the
  setting `dyno.tenant_id` (unset or empty: NULL, so no rows; not a UUID: an
  error naming the setting).
- Every reporting table with a `tenant_id` (report_run and the five fact tables)
  gets ROW LEVEL SECURITY (ENABLE, not FORCE: the owner keeps seeing every tenant,
  see docs/reliability.md) and one policy `tenant_isolation` for every command.
  `reporting.report_type` is a global catalogue: no tenant, no policy.
- Roles `dyno_report_reader` and `dyno_report_writer` (NOLOGIN, cluster-wide,
  created only when missing) and their grants.
- A finished run is final as a whole (the 0001 trigger, extended to every column);
  runs and facts are never deleted or truncated, facts never updated, except
  deletes by `reporting.prune_report_runs`, the one retention path.
"""

from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

ROLE_NOTE = "dyno-reports: created by migration 0003"

# Roles are cluster-wide: another database on the same server (or an administrator,
# when the migrating user may not create roles) may have made them already. Two
# upgrades at once may race on CREATE ROLE, hence the exception handlers.
ROLES = f"""
DO $roles$
DECLARE
  wanted text;
BEGIN
  FOREACH wanted IN ARRAY ARRAY['dyno_report_reader', 'dyno_report_writer'] LOOP
    IF NOT EXISTS (SELECT FROM pg_catalog.pg_roles WHERE rolname = wanted) THEN
      BEGIN
        EXECUTE format('CREATE ROLE %I NOLOGIN', wanted);
        EXECUTE format('COMMENT ON ROLE %I IS %L', wanted, '{ROLE_NOTE}');
      EXCEPTION WHEN duplicate_object OR unique_violation THEN
        NULL;  -- created meanwhile by a concurrent upgrade of another database
      END;
    END IF;
  END LOOP;
END $roles$;
"""

TENANT_TABLES = (
    "report_run",
    "report_pipeline_overview_fact",
    "report_stage_conversion_fact",
    "report_weighted_pipeline_fact",
    "report_win_loss_fact",
    "report_deal_velocity_fact",
)
FACT_TABLES = TENANT_TABLES[1:]
CRM_CONTRACT_TABLES = "crm.tenant, crm.principal, crm.pipeline, crm.stage, crm.deal, crm.deal_history"

CURRENT_TENANT = """
CREATE FUNCTION reporting.current_tenant_id() RETURNS uuid
LANGUAGE plpgsql STABLE PARALLEL SAFE AS $$
DECLARE
  raw text := nullif(pg_catalog.current_setting('dyno.tenant_id', true), '');
BEGIN
  IF raw IS NULL THEN
    RETURN NULL;  -- no tenant chosen: the policies match no row
  END IF;
  IF raw !~* '^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$' THEN
    RAISE EXCEPTION 'dyno.tenant_id is not a tenant UUID: %', pg_catalog.quote_literal(pg_catalog.left(raw, 100))
      USING ERRCODE = 'invalid_parameter_value',
            HINT = 'set it inside the transaction: SELECT set_config(''dyno.tenant_id'', ''<tenant uuid>'', true)';
  END IF;
  RETURN raw::uuid;
END $$;
COMMENT ON FUNCTION reporting.current_tenant_id() IS
  'The tenant of this transaction (setting dyno.tenant_id): NULL when unset or empty, an error when not a UUID';
"""

# (SELECT ...) makes the function an InitPlan: evaluated once per statement, not once per row.
POLICIES = "\n".join(
    f"""ALTER TABLE reporting.{table} ENABLE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON reporting.{table}
  USING (tenant_id = (SELECT reporting.current_tenant_id()))
  WITH CHECK (tenant_id = (SELECT reporting.current_tenant_id()));"""
    for table in TENANT_TABLES
)

REPORTING_TABLES = ", ".join(f"reporting.{table}" for table in TENANT_TABLES)
GRANTS = f"""
GRANT USAGE ON SCHEMA reporting TO dyno_report_reader, dyno_report_writer;
GRANT SELECT ON reporting.report_type TO dyno_report_reader, dyno_report_writer;
GRANT SELECT ON {REPORTING_TABLES} TO dyno_report_reader;
GRANT SELECT, INSERT, UPDATE ON {REPORTING_TABLES} TO dyno_report_writer;
GRANT USAGE ON SCHEMA crm TO dyno_report_writer;
GRANT SELECT ON {CRM_CONTRACT_TABLES} TO dyno_report_writer;
"""

# 0001's trigger, extended: a run's inputs and window never change; its outcome
# (status, error_message, generated_at) is set once, while it is IN_PROGRESS.
RUN_IS_FINAL = """
CREATE OR REPLACE FUNCTION reporting.report_run_status_is_final() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
  changed text;
BEGIN
  IF OLD.status <> 'IN_PROGRESS' AND NEW.status IS DISTINCT FROM OLD.status THEN
    RAISE EXCEPTION 'report run % is % and cannot become %', OLD.run_id, OLD.status, NEW.status
      USING ERRCODE = 'check_violation';
  END IF;
  SELECT pg_catalog.string_agg(n.key, ', ' ORDER BY n.key) INTO changed
  FROM pg_catalog.jsonb_each(pg_catalog.to_jsonb(NEW)) n
  JOIN pg_catalog.jsonb_each(pg_catalog.to_jsonb(OLD)) o ON o.key = n.key
  WHERE n.value IS DISTINCT FROM o.value
    AND (OLD.status <> 'IN_PROGRESS' OR n.key NOT IN ('status', 'error_message', 'generated_at'));
  IF changed IS NOT NULL THEN
    RAISE EXCEPTION 'report run % is % and its record is final: % cannot change', OLD.run_id, OLD.status, changed
      USING ERRCODE = 'check_violation',
            DETAIL = 'only the outcome of an IN_PROGRESS run (status, error_message, generated_at) may be set';
  END IF;
  RETURN NEW;
END $$;
DROP TRIGGER report_run_status_is_final ON reporting.report_run;
CREATE TRIGGER report_run_status_is_final BEFORE UPDATE ON reporting.report_run
  FOR EACH ROW EXECUTE FUNCTION reporting.report_run_status_is_final();
"""

# 0001's body and trigger, for the downgrade.
RUN_STATUS_IS_FINAL_0001 = """
CREATE OR REPLACE FUNCTION reporting.report_run_status_is_final() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
  IF OLD.status <> 'IN_PROGRESS' AND NEW.status IS DISTINCT FROM OLD.status THEN
    RAISE EXCEPTION 'report run % is % and cannot become %', OLD.run_id, OLD.status, NEW.status
      USING ERRCODE = 'check_violation';
  END IF;
  RETURN NEW;
END $$;
DROP TRIGGER report_run_status_is_final ON reporting.report_run;
CREATE TRIGGER report_run_status_is_final BEFORE UPDATE OF status ON reporting.report_run
  FOR EACH ROW EXECUTE FUNCTION reporting.report_run_status_is_final();
"""

# The retention flag: set only for the duration of reporting.prune_report_runs (its SET
# clause). It guards against accidents, not against the owner or a superuser, who
# could set it themselves (or disable the triggers); other roles have no DELETE at all.
HISTORY_IS_KEPT = """
CREATE FUNCTION reporting.report_history_is_kept() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
  IF TG_OP = 'DELETE' AND pg_catalog.current_setting('dyno.retention', true) = 'prune' THEN
    RETURN OLD;
  END IF;
  IF TG_OP = 'UPDATE' THEN
    RAISE EXCEPTION 'facts of report run % are immutable: UPDATE of %.% refused', OLD.run_id,
      TG_TABLE_SCHEMA, TG_TABLE_NAME
      USING ERRCODE = 'check_violation';
  END IF;
  RAISE EXCEPTION '% of %.% refused: report history is kept', TG_OP, TG_TABLE_SCHEMA, TG_TABLE_NAME
    USING ERRCODE = 'restrict_violation',
          HINT = 'old runs go only through reporting.prune_report_runs(keep_latest, dry_run) (dyno-reports runs prune)';
END $$;
CREATE TRIGGER report_run_is_kept BEFORE DELETE ON reporting.report_run
  FOR EACH ROW EXECUTE FUNCTION reporting.report_history_is_kept();
CREATE TRIGGER report_run_is_not_truncated BEFORE TRUNCATE ON reporting.report_run
  FOR EACH STATEMENT EXECUTE FUNCTION reporting.report_history_is_kept();
""" + "\n".join(
    f"""CREATE TRIGGER facts_are_immutable BEFORE UPDATE OR DELETE ON reporting.{table}
  FOR EACH ROW EXECUTE FUNCTION reporting.report_history_is_kept();
CREATE TRIGGER facts_are_not_truncated BEFORE TRUNCATE ON reporting.{table}
  FOR EACH STATEMENT EXECUTE FUNCTION reporting.report_history_is_kept();"""
    for table in FACT_TABLES
)

# Deletes, per (tenant, report type, input fingerprint), the runs beyond the
# keep_latest newest (by generated_at), but never the newest SUCCEEDED run of a
# fingerprint nor an IN_PROGRESS one; facts go by ON DELETE CASCADE. Returns one row
# per run deleted (dry_run false) or that would be deleted (dry_run true, the
# default), with its fact row count. SECURITY DEFINER: it runs as the owner, who is
# not bound by the policies (no FORCE), so it sees every tenant.
PRUNE = """
CREATE FUNCTION reporting.prune_report_runs(
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
                                  ORDER BY r.generated_at DESC, r.run_id DESC) AS recency_in_status
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
REVOKE ALL ON FUNCTION reporting.prune_report_runs(integer, boolean, uuid, text) FROM PUBLIC;
COMMENT ON FUNCTION reporting.prune_report_runs(integer, boolean, uuid, text) IS
  'The one retention path: deletes runs beyond the keep_latest newest per (tenant, report type, input fingerprint), '
  'never the newest SUCCEEDED one; dry_run (default true) deletes nothing';
"""

DOWNGRADE_HISTORY = (
    """
DROP FUNCTION reporting.prune_report_runs(integer, boolean, uuid, text);
DROP TRIGGER report_run_is_kept ON reporting.report_run;
DROP TRIGGER report_run_is_not_truncated ON reporting.report_run;
"""
    + "\n".join(
        f"DROP TRIGGER facts_are_immutable ON reporting.{table};\n"
        f"DROP TRIGGER facts_are_not_truncated ON reporting.{table};"
        for table in FACT_TABLES
    )
    + "\nDROP FUNCTION reporting.report_history_is_kept();\n"
)

DOWNGRADE_ISOLATION = (
    "\n".join(
        f"DROP POLICY tenant_isolation ON reporting.{table};\nALTER TABLE reporting.{table} DISABLE ROW LEVEL SECURITY;"
        for table in TENANT_TABLES
    )
    + f"""
DROP FUNCTION reporting.current_tenant_id();
REVOKE ALL ON {REPORTING_TABLES}, reporting.report_type FROM dyno_report_reader, dyno_report_writer;
REVOKE ALL ON {CRM_CONTRACT_TABLES} FROM dyno_report_writer;
REVOKE ALL ON SCHEMA reporting FROM dyno_report_reader, dyno_report_writer;
REVOKE ALL ON SCHEMA crm FROM dyno_report_writer;
"""
)

# A role goes only if this migration made it (its comment), nobody was made a member
# of it, and no other database of the server still grants it anything (DROP ROLE
# refuses then); otherwise it stays, with a NOTICE.
DROP_ROLES = f"""
DO $roles$
DECLARE
  wanted text;
BEGIN
  FOREACH wanted IN ARRAY ARRAY['dyno_report_writer', 'dyno_report_reader'] LOOP
    IF pg_catalog.shobj_description(
         (SELECT oid FROM pg_catalog.pg_roles WHERE rolname = wanted), 'pg_authid') IS DISTINCT FROM '{ROLE_NOTE}'
       OR EXISTS (SELECT FROM pg_catalog.pg_auth_members m JOIN pg_catalog.pg_roles r ON r.oid = m.roleid
                  WHERE r.rolname = wanted) THEN
      RAISE NOTICE 'role % kept: not created by migration 0003, or granted to other roles', wanted;
      CONTINUE;
    END IF;
    BEGIN
      EXECUTE format('DROP ROLE %I', wanted);
    EXCEPTION WHEN dependent_objects_still_exist OR insufficient_privilege OR undefined_object THEN
      RAISE NOTICE 'role % kept: %', wanted, SQLERRM;
    END;
  END LOOP;
END $roles$;
"""


def upgrade() -> None:
    op.execute(ROLES)
    op.execute(CURRENT_TENANT)
    op.execute(POLICIES)
    op.execute(GRANTS)
    op.execute(RUN_IS_FINAL)
    op.execute(HISTORY_IS_KEPT)
    op.execute(PRUNE)


def downgrade() -> None:
    op.execute(DOWNGRADE_HISTORY)
    op.execute(RUN_STATUS_IS_FINAL_0001)
    op.execute(DOWNGRADE_ISOLATION)
    op.execute(DROP_ROLES)
