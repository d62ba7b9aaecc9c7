"""As known at: crm.deal_history.recorded_at (transaction time); a run's header records K, its report's version
and the digest of its scope.

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-10

Frozen: every statement is literal SQL in this file; it imports nothing from
dyno_reports, so no later change to shared code can change what it does.

- `crm.deal_history.recorded_at timestamptz NOT NULL DEFAULT now()`, the source
  contract's column: when the CRM wrote the row. Rows written before it existed
  count as recorded at their `valid_from`. A CRM that has the column already
  keeps it as it is (nothing is added, rewritten or checked). Otherwise it is
  added with its default (PostgreSQL stores a constant default once: no rewrite)
  and the table is rewritten once with `recorded_at = valid_from`
  (`ALTER COLUMN ... TYPE timestamptz USING valid_from`: same type, a new heap and
  new indexes). The migration is one transaction, so the table's ACCESS
  EXCLUSIVE lock, taken by the first ALTER, lasts until the commit whatever the
  steps: what counts is their total. Measured at 1,003,293 rows (PostgreSQL 15,
  2 cores): rewrite and index 4.4 s, the table staying 126 MB (117 MB before);
  adding the column nullable, `UPDATE ... SET recorded_at = valid_from` and `SET
  NOT NULL` took 16.5 s under the same lock and left the heap at 243 MB (every row
  a dead version until vacuumed). The CRM's reads and writes of the table queue
  for that long; `DYNO_MIGRATION_LOCK_TIMEOUT` bounds the wait for the lock and
  `DYNO_MIGRATION_STATEMENT_TIMEOUT` the rewrite (about 4 s per million rows).
  This step runs last, so the lock is held for the rewrite and the index alone.
- Index `deal_history_tenant_id_recorded_at_idx` on `(tenant_id, recorded_at)`,
  also in a CRM's own schema (the contract leaves the reports' indexes to this
  project): the access path of "rows of a tenant recorded since a moment", which a
  check for runs a backdated row made stale reads, so that one check costs the
  rows written since the previous one, not a scan of the histories. The reports
  do not use it: they walk the primary key and filter `recorded_at <= K` there.
- `reporting.report_run` gains `known_at` (K: the run read the history rows
  recorded at or before it), `report_version` (the version of the report's
  definition) and `scope_digest` (sha256 of the tenant's pipelines and stages in
  the run's scope, names left out). Nullable: a FAILED run of refused inputs knows
  none of them; a CHECK requires all three of a SUCCEEDED run, `report_version >=
  1` and a digest of 64 lowercase hex digits. The finality trigger (0003) covers
  them as every column: a finished run's record never changes.
- Existing SUCCEEDED runs get `known_at = generated_at`, `report_version = 1` and
  the digest of their scope as it is now, by the rule the runs use (the canonical
  form of docs/definitions.md, "The scope digest", written out here): they are
  current on unchanged data. A run is stale when a row of its tenant has
  `valid_from < E` and `recorded_at > K`. Old rows have `recorded_at =
  valid_from`, so that needs `K < valid_from < E`: never for a final run (E <=
  its validation time <= generated_at = K); for a so-far run (E after it ran),
  exactly the rows dated between the run and E, which it could not have seen (a
  future-dated row it did see counts too: such a run answered "so far" anyway).
  Their finality trigger is disabled for that one UPDATE. FAILED runs keep NULLs.
- `reporting.report_run_latest`: a run is `so_far` when its end is after its
  K (`period_end > known_at`), or its `input_params` say so (a run before 0011
  whose period ended while it ran); the view still prefers a final run to a
  so-far one. It appends `known_at`, `report_version` and `scope_digest`; each
  `report_<name>_latest` appends `known_at`. CREATE OR REPLACE VIEW keeps every
  column in its place, the grants and dependents; it resets the options, so
  `security_invoker = true` is given again.
- Downgrade: the views as 0010 left them, the header's columns and checks go,
  the index goes; `recorded_at` goes where 0001 created the crm schema and stays
  in a CRM's own (the contract's column, the CRM's table), as 0009's columns do.
"""

from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None

CRM_OWNED_BY_US = "dyno-reports: created by migration 0001"  # 0001's comment on a crm schema it created

RUN_COLUMNS = """
ALTER TABLE reporting.report_run
  ADD COLUMN known_at timestamptz,
  ADD COLUMN report_version integer,
  ADD COLUMN scope_digest text;
"""

# A run's pipeline selection, from its recorded options: NULL (every pipeline) unless an array of ids.
SELECTED = """CASE WHEN jsonb_typeof(r.input_params -> 'options' -> 'pipeline_ids') = 'array' THEN ARRAY(
             SELECT CAST(x AS uuid) FROM jsonb_array_elements_text(r.input_params -> 'options' -> 'pipeline_ids') x)
           END"""

# The scope digest of each SUCCEEDED run (the canonical form of reports/scope_digest.py, written out).
BACKFILL = f"""
ALTER TABLE reporting.report_run DISABLE TRIGGER report_run_status_is_final;
UPDATE reporting.report_run r
SET known_at = r.generated_at,
    report_version = 1,
    scope_digest = (
      SELECT encode(sha256(convert_to(
               COALESCE(string_agg(scope_lines.line, '' ORDER BY scope_lines.line COLLATE "C"), ''), 'UTF8')), 'hex')
      FROM (SELECT {SELECTED} AS ids) selected
      CROSS JOIN LATERAL (
        SELECT concat_ws(',', 'pipeline', p.pipeline_id) || E'\\n' AS line
        FROM crm.pipeline p
        WHERE p.tenant_id = r.tenant_id AND (selected.ids IS NULL OR p.pipeline_id = ANY (selected.ids))
        UNION ALL
        SELECT concat_ws(',', 'stage', s.stage_id, s.pipeline_id, s.position, CAST(s.probability AS numeric(5, 4)),
                         s.kind) || E'\\n'
        FROM crm.stage s
        WHERE s.tenant_id = r.tenant_id AND (selected.ids IS NULL OR s.pipeline_id = ANY (selected.ids))
      ) scope_lines
    )
WHERE r.status = 'SUCCEEDED';
ALTER TABLE reporting.report_run ENABLE TRIGGER report_run_status_is_final;
"""

CHECKS = """
ALTER TABLE reporting.report_run
  ADD CONSTRAINT ck_report_run_succeeded_records_what_it_knew CHECK (
    status <> 'SUCCEEDED' OR (known_at IS NOT NULL AND report_version IS NOT NULL AND scope_digest IS NOT NULL)),
  ADD CONSTRAINT ck_report_run_report_version CHECK (report_version >= 1),
  ADD CONSTRAINT ck_report_run_scope_digest CHECK (scope_digest ~ '^[0-9a-f]{64}$');
"""

# report_run's columns, as 0005 lists them.
REPORT_RUN_COLUMNS = """r.run_id, r.tenant_id, r.report_type, r.generated_at, r.period_start, r.period_end,
       r.period_grain, r.input_params, r.input_fingerprint, r.status, r.error_message, r.dagster_run_id"""

# A run `r` is so far: it ends after its K, or said so when it ran (a run before 0011); never NULL.
SO_FAR = "((r.input_params ->> 'so_far') IS NOT DISTINCT FROM 'true' OR COALESCE(r.period_end > r.known_at, false))"

# 0007's view with this so-far test: a run beats `r` when (is final, generated_at, run_id) is greater.
RUN_LATEST = f"""
CREATE OR REPLACE VIEW reporting.report_run_latest WITH (security_invoker = true) AS
SELECT {REPORT_RUN_COLUMNS},
       {SO_FAR} AS so_far,
       r.known_at, r.report_version, r.scope_digest
FROM reporting.report_run r
WHERE r.status = 'SUCCEEDED'
  AND NOT EXISTS (
    SELECT FROM reporting.report_run later
    WHERE later.tenant_id = r.tenant_id
      AND later.report_type = r.report_type
      AND later.input_fingerprint = r.input_fingerprint
      AND later.status = 'SUCCEEDED'
      AND (NOT {SO_FAR.replace("r.", "later.")}, later.generated_at, later.run_id)
        > (NOT {SO_FAR}, r.generated_at, r.run_id)
  );
COMMENT ON VIEW reporting.report_run_latest IS
  'Per (tenant_id, report_type, input_fingerprint) the SUCCEEDED run that is final (not so_far: its period ends '
  'at or before its known_at) before any so-far one, then with the greatest (generated_at, run_id)';
"""

# 0007's, for the downgrade.
RUN_LATEST_0007 = f"""
CREATE VIEW reporting.report_run_latest WITH (security_invoker = true) AS
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


# The columns each report_<name>_latest adds from its run, after the fact columns (as in 0005).
VIEW_RUN_COLUMNS = "r.period_start, r.period_end, r.period_grain, r.input_fingerprint, r.input_params, r.generated_at"

# Per report: the fact columns its view lists (as 0005 lists them), and what 0010 appended after so_far.
FACT_COLUMNS = {
    "deal_velocity": ("f.pipeline_id, f.stage_id, f.exited_count, f.avg_days, f.p50_days, f.p90_days", ""),
    "pipeline_movement": (
        """f.pipeline_id, f.start_count, f.start_amount, f.created_count,
       f.created_amount, f.reopened_count, f.reopened_amount, f.moved_in_count, f.moved_in_amount,
       f.increased_count, f.increased_amount, f.decreased_count, f.decreased_amount, f.moved_out_count,
       f.moved_out_amount, f.won_count, f.won_amount, f.lost_count, f.lost_amount, f.deleted_count,
       f.deleted_amount, f.end_count, f.end_amount""",
        "",
    ),
    "pipeline_overview": (
        """f.pipeline_id, f.stage_id, f.deal_count, f.total_amount, f.avg_amount,
       f.avg_days_in_stage, f.entered_count""",
        "",
    ),
    "stage_conversion": (
        """f.pipeline_id, f.stage_id, f.entered_count, f.advanced_count, f.lost_count,
       f.conversion_rate, f.avg_days_to_advance""",
        "",
    ),
    "weighted_pipeline": (
        """f.pipeline_id, f.principal_id, f.close_month, f.deal_count, f.total_amount,
       f.weighted_amount""",
        ", f.close_quarter",
    ),
    "win_loss": (
        """f.pipeline_id, f.principal_id, f.won_count, f.lost_count, f.won_amount,
       f.lost_amount, f.win_rate, f.win_rate_by_value, f.avg_cycle_days""",
        "",
    ),
}


def report_views(create: str, appended: str) -> str:
    """Every report_<name>_latest: its facts joined to report_run_latest, the run's columns after them."""
    return "\n".join(
        f"""{create} reporting.report_{name}_latest WITH (security_invoker = true) AS
SELECT f.tenant_id, f.run_id, {columns},
       {VIEW_RUN_COLUMNS}, r.so_far{after_0010}{appended}
FROM reporting.report_run_latest r
JOIN reporting.report_{name}_fact f ON f.tenant_id = r.tenant_id AND f.run_id = r.run_id;"""
        for name, (columns, after_0010) in FACT_COLUMNS.items()
    )


GRANT = """GRANT SELECT ON reporting.report_run_latest, reporting.report_deal_velocity_latest,
  reporting.report_pipeline_movement_latest, reporting.report_pipeline_overview_latest,
  reporting.report_stage_conversion_latest, reporting.report_weighted_pipeline_latest,
  reporting.report_win_loss_latest TO dyno_report_reader;
"""

VIEWS = RUN_LATEST + report_views("CREATE OR REPLACE VIEW", ", r.known_at") + "\n"

HAS_RECORDED_AT = (
    "SELECT EXISTS (SELECT FROM pg_catalog.pg_attribute WHERE attrelid = 'crm.deal_history'::regclass"
    " AND attname = 'recorded_at' AND NOT attisdropped)"
)

RECORDED_AT = """
ALTER TABLE crm.deal_history ADD COLUMN recorded_at timestamptz NOT NULL DEFAULT now();
ALTER TABLE crm.deal_history ALTER COLUMN recorded_at TYPE timestamptz USING valid_from;
"""

RECORDED_AT_INDEX = """
CREATE INDEX IF NOT EXISTS deal_history_tenant_id_recorded_at_idx ON crm.deal_history (tenant_id, recorded_at);
"""

DOWNGRADE_REPORTING = (
    "DROP VIEW "
    + ", ".join(f"reporting.report_{name}_latest" for name in FACT_COLUMNS)
    + ";\nDROP VIEW reporting.report_run_latest;\n"
    + RUN_LATEST_0007
    + report_views("CREATE VIEW", "")
    + "\n"
    + GRANT
    + """ALTER TABLE reporting.report_run
  DROP CONSTRAINT ck_report_run_succeeded_records_what_it_knew,
  DROP CONSTRAINT ck_report_run_report_version,
  DROP CONSTRAINT ck_report_run_scope_digest,
  DROP COLUMN known_at,
  DROP COLUMN report_version,
  DROP COLUMN scope_digest;
DROP INDEX IF EXISTS crm.deal_history_tenant_id_recorded_at_idx;
"""
)


def upgrade() -> None:
    op.execute(RUN_COLUMNS + BACKFILL + CHECKS + VIEWS)
    # Last: the history's lock is then held for its own work alone (until the commit).
    if not op.get_bind().exec_driver_sql(HAS_RECORDED_AT).scalar():
        op.execute(RECORDED_AT)
    op.execute(RECORDED_AT_INDEX)


def downgrade() -> None:
    op.execute(DOWNGRADE_REPORTING)
    owner_note = (
        op.get_bind().exec_driver_sql("SELECT obj_description(to_regnamespace('crm'), 'pg_namespace')").scalar()
    )
    if owner_note == CRM_OWNED_BY_US:
        op.execute("ALTER TABLE crm.deal_history DROP COLUMN recorded_at")
