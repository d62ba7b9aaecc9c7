"""Facts of a run checked once per statement, not once per row at commit.

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-28

Frozen: every statement is literal SQL in this file; it imports nothing from
dyno_reports, so no later change to shared code can change what it does.

The guarantee of 0001 stays: at commit, every fact row belongs to a run of the
same tenant that is SUCCEEDED. 0001 checked it with a deferred trigger per fact
row (one lookup of the run per row, at commit). Now:

- `facts_need_succeeded_run` on every fact table (same name) is a statement-level
  AFTER INSERT trigger over the inserted rows (a transition table): once per
  statement, each run the rows name is looked up. A SUCCEEDED run stays SUCCEEDED
  (a finished run is final, 0003), so its facts pass. A FAILED or missing
  run (or one of another tenant) is refused at once. An IN_PROGRESS run is
  touched (`UPDATE ... SET status = status`, which locks it until commit) and so queues
- `report_run_facts_need_success` on `reporting.report_run`: a deferred constraint
  trigger on any UPDATE that leaves a run other than SUCCEEDED (the touch above, a
  run failed by `record_failure` or the Dagster reconcile, or a SUCCEEDED run made
  FAILED with the finality trigger disabled); at commit, if the run is not
  SUCCEEDED then, no fact table may hold rows of it. Updates to SUCCEEDED queue
  nothing.
- `facts_need_succeeded_run_on_update`: the same statement check for UPDATE
  (refused anyway by `facts_are_immutable`; kept so the guard does not rest on it).

The statement check runs as the caller, as 0001's did (a run it cannot see is
refused). The commit check is SECURITY DEFINER with a fixed search_path: whatever
the caller's role or `dyno.tenant_id` by then, no setting can hide a run's facts
from it. The errors keep 0001's message and SQLSTATE. Downgrade restores 0001's
per-row triggers.
"""

from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

FACT_TABLES = (
    "report_deal_velocity_fact",
    "report_pipeline_movement_fact",
    "report_pipeline_overview_fact",
    "report_stage_conversion_fact",
    "report_weighted_pipeline_fact",
    "report_win_loss_fact",
)

# Raised by both checks, as 0001 raised it.
REFUSED = """RAISE EXCEPTION 'facts of report run % cannot be committed: the run is not SUCCEEDED', {run_id}
      USING ERRCODE = 'integrity_constraint_violation';"""
# One query over the statement's distinct runs; more only for a run that is not SUCCEEDED. It runs as the
# caller, as 0001's check did (SECURITY DEFINER and a SET clause cost about 0.1 ms a call): a run the caller
# cannot see is refused, and the touched run is the caller's own tenant's (the facts' WITH CHECK).
STATEMENT_CHECK = f"""
CREATE FUNCTION reporting.facts_require_succeeded_runs() RETURNS trigger
LANGUAGE plpgsql
AS $$
DECLARE
  pending uuid[];
  refused uuid;
BEGIN
  SELECT pg_catalog.array_agg(f.run_id) INTO pending
  FROM (SELECT DISTINCT n.run_id, n.tenant_id FROM new_facts n) f
  LEFT JOIN reporting.report_run r ON r.run_id = f.run_id AND r.tenant_id = f.tenant_id
  WHERE r.status IS DISTINCT FROM 'SUCCEEDED';
  IF pending IS NULL THEN
    RETURN NULL;  -- every run is SUCCEEDED, which is final
  END IF;
  -- An IN_PROGRESS run is touched: that queues report_run_facts_need_success (checked again at commit)
  -- and locks the run until then. Any other (FAILED, or failed meanwhile by another transaction): refused.
  WITH touched AS (
    UPDATE reporting.report_run r SET status = r.status
    WHERE r.run_id = ANY (pending) AND r.status = 'IN_PROGRESS'
    RETURNING r.run_id
  )
  SELECT p.run_id INTO refused FROM pg_catalog.unnest(pending) p (run_id)
  WHERE p.run_id NOT IN (SELECT t.run_id FROM touched t) LIMIT 1;
  IF refused IS NOT NULL THEN
    {REFUSED.format(run_id="refused")}
  END IF;
  RETURN NULL;
END $$;
COMMENT ON FUNCTION reporting.facts_require_succeeded_runs() IS
  'Statement trigger of every fact table: facts only of a SUCCEEDED run of their tenant, '
  'or of an IN_PROGRESS one that must be SUCCEEDED at commit (report_run_facts_need_success)';
"""

# As the owner, whom row-level security does not bind: no role or dyno.tenant_id hides a run's facts from it.
COMMIT_CHECK = f"""
CREATE FUNCTION reporting.run_with_facts_requires_success() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  fact_table text;
  has_facts boolean;
BEGIN
  IF EXISTS (SELECT FROM reporting.report_run r WHERE r.run_id = NEW.run_id AND r.status = 'SUCCEEDED') THEN
    RETURN NULL;
  END IF;
  FOR fact_table IN SELECT t.fact_table FROM reporting.report_type t ORDER BY t.fact_table LOOP
    EXECUTE format('SELECT EXISTS (SELECT FROM reporting.%I f WHERE f.run_id = $1)', fact_table)
      INTO has_facts USING NEW.run_id;
    IF has_facts THEN
      {REFUSED.format(run_id="NEW.run_id")}
    END IF;
  END LOOP;
  RETURN NULL;
END $$;
COMMENT ON FUNCTION reporting.run_with_facts_requires_success() IS
  'Deferred: a run updated to or left in a status other than SUCCEEDED holds no facts at commit';
CREATE CONSTRAINT TRIGGER report_run_facts_need_success
  AFTER UPDATE ON reporting.report_run
  DEFERRABLE INITIALLY DEFERRED
  FOR EACH ROW WHEN (NEW.status IS DISTINCT FROM 'SUCCEEDED')
  EXECUTE FUNCTION reporting.run_with_facts_requires_success();
"""

UPGRADE = (
    STATEMENT_CHECK
    + COMMIT_CHECK
    + "\n".join(
        f"""DROP TRIGGER facts_need_succeeded_run ON reporting.{table};
CREATE TRIGGER facts_need_succeeded_run AFTER INSERT ON reporting.{table}
  REFERENCING NEW TABLE AS new_facts
  FOR EACH STATEMENT EXECUTE FUNCTION reporting.facts_require_succeeded_runs();
CREATE TRIGGER facts_need_succeeded_run_on_update AFTER UPDATE ON reporting.{table}
  REFERENCING NEW TABLE AS new_facts
  FOR EACH STATEMENT EXECUTE FUNCTION reporting.facts_require_succeeded_runs();"""
        for table in FACT_TABLES
    )
    + "\nDROP FUNCTION reporting.fact_requires_succeeded_run();\n"
)

# 0001's function, verbatim, and its per-row deferred triggers.
FACT_REQUIRES_SUCCEEDED_RUN_0001 = """
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

DOWNGRADE = (
    FACT_REQUIRES_SUCCEEDED_RUN_0001
    + "\n".join(
        f"""DROP TRIGGER facts_need_succeeded_run ON reporting.{table};
DROP TRIGGER facts_need_succeeded_run_on_update ON reporting.{table};
CREATE CONSTRAINT TRIGGER facts_need_succeeded_run
  AFTER INSERT OR UPDATE ON reporting.{table}
  DEFERRABLE INITIALLY DEFERRED
  FOR EACH ROW EXECUTE FUNCTION reporting.fact_requires_succeeded_run();"""
        for table in FACT_TABLES
    )
    + """
DROP TRIGGER report_run_facts_need_success ON reporting.report_run;
DROP FUNCTION reporting.run_with_facts_requires_success(), reporting.facts_require_succeeded_runs();
"""
)


def upgrade() -> None:
    op.execute(UPGRADE)


def downgrade() -> None:
    op.execute(DOWNGRADE)
