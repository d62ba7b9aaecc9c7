"""The statements of the stale check (staleness.py), as bound-parameter text.

Each reads the history of one tenant at a time (a lateral per tenant of crm.tenant, down the index
`deal_history_tenant_id_recorded_at_idx`), or run headers and stage rows of the whole fleet: the check is
fleet-wide by design (one cursor for every tenant), so those scans carry no tenant predicate, and none
reads a history row recorded before the window, except the direct check of a run given an older K.
"""

from dyno_reports.reports.scope_digest import SCOPE_DIGEST

LOCK_CURSOR = """
SELECT checked_to, now() AS checked_at,
       COALESCE(checked_to - CAST(:max_write AS interval),
                (SELECT min(r.known_at) FROM reporting.report_run r WHERE r.status = 'SUCCEEDED'),
                now() - CAST(:max_write AS interval)) AS since,
       now() - CAST(:max_write AS interval) AS settle_to,
       checked_to - CAST(:max_write AS interval) AS runs_since
FROM reporting.stale_check WHERE only_row FOR UPDATE
"""

ADVANCE_CURSOR = "UPDATE reporting.stale_check SET checked_to = :checked_at WHERE only_row"

# Runs made since the previous check with a K before the window (given --as-known-at): the rows of their
# tenant recorded after K and up to the window's start, counted once (their finding marks them checked).
DIRECT = """
INSERT INTO reporting.report_run_stale AS s
  (run_id, tenant_id, late_rows, earliest_valid_from, settled_rows, settled_earliest, found_at, checked_at)
SELECT r.run_id, r.tenant_id, early.n, early.earliest, early.n, early.earliest, :checked_at, :checked_at
FROM reporting.report_run r
CROSS JOIN LATERAL (
  SELECT count(*) AS n, min(h.valid_from) AS earliest
  FROM crm.deal_history h
  WHERE h.tenant_id = r.tenant_id AND h.recorded_at > r.known_at AND h.recorded_at <= :since
    AND h.valid_from < r.period_end
) early
WHERE r.status = 'SUCCEEDED' AND r.known_at < :since
  AND r.generated_at > COALESCE(CAST(:runs_since AS timestamptz), '-infinity')
  AND NOT EXISTS (SELECT FROM reporting.report_run_stale f WHERE f.run_id = r.run_id)
ON CONFLICT (run_id) DO NOTHING
"""

# The rows recorded since the window's start, per tenant, joined to the SUCCEEDED runs they are late for;
# rows recorded at or before :settle_to are settled (counted once), the others are read again next time.
# A row recorded at or before its valid_from (0011's backfill, a future-dated row) can only be late for a
# so-far run (K < valid_from < E): those rows are joined to so-far runs alone, so the first check's catch-up
# over the backfilled history does not compare every row with every run of its tenant.
WINDOW = """
WITH late AS (
  SELECT r.run_id, r.tenant_id, w.valid_from, w.recorded_at
  FROM crm.tenant t
  CROSS JOIN LATERAL (
    SELECT h.valid_from, h.recorded_at FROM crm.deal_history h
    WHERE h.tenant_id = t.tenant_id AND h.recorded_at > :since AND h.recorded_at > h.valid_from
  ) w
  JOIN reporting.report_run r
    ON r.tenant_id = t.tenant_id AND r.status = 'SUCCEEDED' AND w.valid_from < r.period_end
   AND w.recorded_at > r.known_at
  UNION ALL
  SELECT r.run_id, r.tenant_id, w.valid_from, w.recorded_at
  FROM crm.tenant t
  CROSS JOIN LATERAL (
    SELECT h.valid_from, h.recorded_at FROM crm.deal_history h
    WHERE h.tenant_id = t.tenant_id AND h.recorded_at > :since AND h.recorded_at <= h.valid_from
  ) w
  JOIN reporting.report_run r
    ON r.tenant_id = t.tenant_id AND r.status = 'SUCCEEDED' AND w.valid_from < r.period_end
   AND w.recorded_at > r.known_at AND r.period_end > r.known_at
)
INSERT INTO reporting.report_run_stale AS s
  (run_id, tenant_id, late_rows, earliest_valid_from, settled_rows, settled_earliest, unsettled_to, found_at,
   checked_at)
SELECT run_id, tenant_id, count(*), min(valid_from), count(*) FILTER (WHERE recorded_at <= :settle_to),
       min(valid_from) FILTER (WHERE recorded_at <= :settle_to),
       max(recorded_at) FILTER (WHERE recorded_at > :settle_to), :checked_at, :checked_at
FROM late
GROUP BY run_id, tenant_id
ON CONFLICT (run_id) DO UPDATE SET
  late_rows = s.settled_rows + EXCLUDED.late_rows,
  earliest_valid_from = LEAST(s.settled_earliest, EXCLUDED.earliest_valid_from),
  settled_rows = s.settled_rows + EXCLUDED.settled_rows,
  settled_earliest = LEAST(s.settled_earliest, EXCLUDED.settled_earliest),
  unsettled_to = EXCLUDED.unsettled_to,
  checked_at = EXCLUDED.checked_at
"""

# A run's pipeline selection as recorded (JSON null when every pipeline), the key its scope is digested by.
SELECTION = "COALESCE(r.input_params -> 'options' -> 'pipeline_ids', 'null'::jsonb)"
NEW_RUN = "r.status = 'SUCCEEDED' AND r.generated_at > COALESCE(CAST(:runs_since AS timestamptz), '-infinity')"
EMPTY_DIGEST = "encode(sha256(convert_to('', 'UTF8')), 'hex')"

# The canonical digest (reports/scope_digest.py) of each scope, its parameters read from `scopes` and
# `selected` (the selection's pipeline ids, NULL for every pipeline).
DIGEST_OF_SCOPE = SCOPE_DIGEST.replace("CAST(:pipeline_ids AS uuid[])", "selected.ids").replace(
    ":tenant_id", "scopes.tenant_id"
)
SELECTED_IDS = """SELECT CASE WHEN jsonb_typeof(scopes.selection) = 'array' THEN ARRAY(
    SELECT CAST(x AS uuid) FROM jsonb_array_elements_text(scopes.selection) x) END AS ids"""
# Every tenant's digest of all its pipelines (the scope of runs without pipeline_ids), in one pass over the
# fleet's pipelines and stages: the same lines as reports/scope_digest.py, grouped by tenant.
_TENANT_DIGESTS = """
SELECT lines.tenant_id,
       encode(sha256(convert_to(string_agg(lines.line, '' ORDER BY lines.line COLLATE "C"), 'UTF8')), 'hex') AS digest
FROM (
  SELECT p.tenant_id, concat_ws(',', 'pipeline', p.pipeline_id) || E'\\n' AS line FROM crm.pipeline p
  UNION ALL
  SELECT s.tenant_id, concat_ws(',', 'stage', s.stage_id, s.pipeline_id, s.position,
                                CAST(s.probability AS numeric(5, 4)), s.kind) || E'\\n'
  FROM crm.stage s
) lines
GROUP BY lines.tenant_id"""

# Scopes: the digests now of the scopes a tenant's stage change may have touched (every scope of a tenant whose
# all-pipeline digest differs from the one seen) and of the scopes first seen (of the runs made since the
# previous check, with their tenant's all-pipeline scope); saved in reporting.stale_scope. Flagged: the runs
# of a scope whose digest changed (each compared with it: a digest changed back clears the flag) and the runs
# made since the previous check, compared with their scope's digest now.
SCOPES = f"""
WITH tenant_now AS MATERIALIZED ({_TENANT_DIGESTS}
), new_runs AS MATERIALIZED (
  SELECT r.run_id, r.tenant_id, {SELECTION} AS selection, r.scope_digest FROM reporting.report_run r WHERE {NEW_RUN}
), scopes AS MATERIALIZED (
  SELECT s.tenant_id, s.selection, s.digest AS seen
  FROM reporting.stale_scope s
  WHERE s.tenant_id IN (
    SELECT whole.tenant_id FROM reporting.stale_scope whole LEFT JOIN tenant_now t ON t.tenant_id = whole.tenant_id
    WHERE whole.selection = 'null' AND whole.digest <> COALESCE(t.digest, {EMPTY_DIGEST}))
  UNION
  SELECT n.tenant_id, n.selection, NULL FROM new_runs n
  WHERE NOT EXISTS (SELECT FROM reporting.stale_scope s WHERE s.tenant_id = n.tenant_id AND s.selection = n.selection)
  UNION
  SELECT n.tenant_id, 'null', NULL FROM new_runs n
  WHERE NOT EXISTS (SELECT FROM reporting.stale_scope s WHERE s.tenant_id = n.tenant_id AND s.selection = 'null')
), digests AS MATERIALIZED (
  SELECT scopes.tenant_id, scopes.selection, scopes.seen, ({DIGEST_OF_SCOPE}) AS digest
  FROM scopes CROSS JOIN LATERAL ({SELECTED_IDS}) selected
), saved AS (
  INSERT INTO reporting.stale_scope AS s (tenant_id, selection, digest, checked_at)
  SELECT tenant_id, selection, digest, :checked_at FROM digests WHERE seen IS DISTINCT FROM digest
  ON CONFLICT (tenant_id, selection) DO UPDATE SET digest = EXCLUDED.digest, checked_at = EXCLUDED.checked_at
), flags AS (
  SELECT r.run_id, r.tenant_id, r.scope_digest <> d.digest AS flag
  FROM digests d
  JOIN reporting.report_run r ON r.tenant_id = d.tenant_id AND r.status = 'SUCCEEDED' AND {SELECTION} = d.selection
  WHERE d.seen <> d.digest
  UNION
  SELECT n.run_id, n.tenant_id, n.scope_digest <> COALESCE(d.digest, s.digest)
  FROM new_runs n
  LEFT JOIN digests d ON d.tenant_id = n.tenant_id AND d.selection = n.selection
  LEFT JOIN reporting.stale_scope s ON s.tenant_id = n.tenant_id AND s.selection = n.selection
), cleared AS (
  UPDATE reporting.report_run_stale s SET scope_changed = false, checked_at = :checked_at
  FROM flags f WHERE f.run_id = s.run_id AND s.scope_changed AND NOT f.flag
)
INSERT INTO reporting.report_run_stale AS s (run_id, tenant_id, scope_changed, found_at, checked_at)
SELECT run_id, tenant_id, true, :checked_at, :checked_at FROM flags WHERE flag
ON CONFLICT (run_id) DO UPDATE SET scope_changed = true, checked_at = EXCLUDED.checked_at WHERE NOT s.scope_changed
"""

# Versions: the reports whose version differs from the one seen (reporting.stale_version), saved; flagged:
# their runs (compared with it: an older one is flagged, the others cleared) and the runs made since the
# previous check with an older version than their report's now.
VERSIONS = f"""
WITH now_versions AS (
  SELECT * FROM unnest(CAST(:report_types AS text[]), CAST(:versions AS integer[])) v(report_type, version)
), changed AS MATERIALIZED (
  SELECT v.report_type, v.version FROM now_versions v
  LEFT JOIN reporting.stale_version s ON s.report_type = v.report_type
  WHERE s.report_version IS DISTINCT FROM v.version
), saved AS (
  INSERT INTO reporting.stale_version AS s (report_type, report_version, checked_at)
  SELECT report_type, version, :checked_at FROM changed
  ON CONFLICT (report_type) DO UPDATE SET report_version = EXCLUDED.report_version, checked_at = EXCLUDED.checked_at
), flags AS (
  SELECT r.run_id, r.tenant_id, CASE WHEN r.report_version < c.version THEN c.version END AS flag
  FROM changed c JOIN reporting.report_run r ON r.report_type = c.report_type AND r.status = 'SUCCEEDED'
  UNION
  SELECT r.run_id, r.tenant_id, v.version
  FROM reporting.report_run r JOIN now_versions v ON v.report_type = r.report_type
  WHERE {NEW_RUN} AND r.report_version < v.version
), cleared AS (
  UPDATE reporting.report_run_stale s SET current_version = NULL, checked_at = :checked_at
  FROM flags f WHERE f.run_id = s.run_id AND f.flag IS NULL AND s.current_version IS NOT NULL
)
INSERT INTO reporting.report_run_stale AS s (run_id, tenant_id, current_version, found_at, checked_at)
SELECT run_id, tenant_id, flag, :checked_at, :checked_at FROM flags WHERE flag IS NOT NULL
ON CONFLICT (run_id) DO UPDATE SET current_version = EXCLUDED.current_version, checked_at = EXCLUDED.checked_at
WHERE s.current_version IS DISTINCT FROM EXCLUDED.current_version
"""

# The current runs (reporting.report_run_latest) a finding says are stale, of the tenants and reports asked.
LISTING = """
SELECT r.run_id, r.tenant_id, r.report_type, r.period_start, r.period_end, r.period_grain, r.input_params,
       r.input_fingerprint, r.known_at, r.dagster_run_id, r.report_version,
       s.late_rows, s.earliest_valid_from, s.settled_rows, s.unsettled_to, s.scope_changed, s.current_version
FROM reporting.report_run_stale s
JOIN reporting.report_run_latest r ON r.run_id = s.run_id AND r.tenant_id = s.tenant_id
WHERE (s.late_rows > 0 OR s.scope_changed OR s.current_version IS NOT NULL)
  AND (CAST(:tenant_ids AS uuid[]) IS NULL OR s.tenant_id = ANY (CAST(:tenant_ids AS uuid[])))
  AND (CAST(:only_reports AS text[]) IS NULL OR r.report_type = ANY (CAST(:only_reports AS text[])))
ORDER BY r.tenant_id, r.report_type, r.period_end, r.run_id
"""
