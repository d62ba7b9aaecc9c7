"""pipeline_movement: per pipeline, how the open pipeline at S became the open pipeline at E (a waterfall)."""

from dyno_reports.reports.base import ReportDefinition
from dyno_reports.reports.pipeline_movement.checks import MOVEMENT_ROWS_BALANCE
from dyno_reports.reports.pipeline_movement.movement_sums import MOVEMENT_SUMS
from dyno_reports.reports.pipeline_movement.pipeline_movement_multi_period import MULTI_PERIOD_SQL
from dyno_reports.reports.sql_common import KNOWN_ROWS, ORDERED_PASS, PASS_JIT
from dyno_reports.storage.tables import MOVEMENTS, pipeline_movement_fact

# Self-contained (not built on sql_common's shared CTEs): the report needs each deal's state at S
# and at E, nothing else. One ordered pass over the tenant's history before E as known at K
# (sql_common's KNOWN_ROWS), in primary-key order (tenant_id, deal_id, valid_from), finds both: the
# state at E is a deal's last row, the state at S the last row before S (its next row is at or
# after S, or there is none). Only those
# rows (at most two a deal) go on; a second window over them, in the same order, puts the state
# at S beside the state at E. The deals are then counted per pair of stages (at S, at E) and whether
# the amount rose or fell: a few hundred groups, whatever the tenant's size. Each pair counts for the
# pipeline it was open in at S and the one it is open in at E (one unpivot, two rows at most), and the
# selected pipelines are grouped: the stages are joined and the rows unpivoted per pair, not per deal.
SQL = f"""
WITH deal_rows AS (
    SELECT h.deal_id, h.valid_from, h.stage_id, h.amount, h.is_deleted,
           h.valid_from < CAST(:period_start AS timestamptz) AS is_before_start,
           lead(h.valid_from) OVER (PARTITION BY h.deal_id ORDER BY h.valid_from) AS next_valid_from{KNOWN_ROWS}
),
states AS (
    -- the state at S (last row before S) and the state at E (last row before E); one row may be both
    SELECT deal_id, valid_from, stage_id, amount, is_deleted,
           is_before_start AND (next_valid_from IS NULL
                                OR next_valid_from >= CAST(:period_start AS timestamptz)) AS is_state_at_start,
           next_valid_from IS NULL AS is_state_at_end
    FROM deal_rows
    WHERE next_valid_from IS NULL
       OR (is_before_start AND next_valid_from >= CAST(:period_start AS timestamptz))
),
paired AS (
    -- one row a deal (its state at E, when it exists at E), with its state at S beside it:
    -- the same row, or the row before it in `states` (then that one is the state at S)
    SELECT deal_id, stage_id AS end_stage_id, amount AS end_amount, is_deleted AS end_deleted,
           CASE WHEN is_state_at_start THEN stage_id
                WHEN lag(is_state_at_start) OVER w THEN lag(stage_id) OVER w END AS start_stage_id,
           CASE WHEN is_state_at_start THEN amount
                WHEN lag(is_state_at_start) OVER w THEN lag(amount) OVER w END AS start_amount,
           CASE WHEN is_state_at_start THEN is_deleted
                WHEN lag(is_state_at_start) OVER w THEN lag(is_deleted) OVER w END AS start_deleted,
           is_state_at_end
    FROM states
    WINDOW w AS (PARTITION BY deal_id ORDER BY valid_from)
),
deal_pairs AS (
    -- the deals of each (stage at S, stage at E, amount up or down) group: counted, amounts summed
    SELECT start_stage_id, start_deleted, end_stage_id, end_deleted,
           sign(end_amount - start_amount) AS amount_change,
           -- integer, so that the sums of `grouped` stay bigint (sum(bigint) would be numeric)
           CAST(count(*) AS integer) AS deals, sum(start_amount) AS start_amount, sum(end_amount) AS end_amount
    FROM paired
    WHERE is_state_at_end
    GROUP BY start_stage_id, start_deleted, end_stage_id, end_deleted, sign(end_amount - start_amount)
),
compared AS (
    -- kind and pipeline of each end: NULL kind = not live (absent or deleted); the pipeline only when open
    SELECT CASE WHEN NOT p.start_deleted THEN s.kind END AS start_kind,
           CASE WHEN NOT p.start_deleted AND s.kind = 'open' THEN s.pipeline_id END AS start_pipeline_id,
           p.start_amount,
           CASE WHEN NOT p.end_deleted THEN e.kind END AS end_kind,
           CASE WHEN NOT p.end_deleted AND e.kind = 'open' THEN e.pipeline_id END AS end_pipeline_id,
           p.end_amount, p.amount_change, p.deals
    FROM deal_pairs p
    JOIN crm.stage e ON e.tenant_id = :tenant_id AND e.stage_id = p.end_stage_id
    LEFT JOIN crm.stage s ON s.tenant_id = :tenant_id AND s.stage_id = p.start_stage_id
),
movements AS (
    -- each pair once for the pipeline its deals were open in at S (side S) and once for the one they are
    -- open in at E (side E); deals open in the same pipeline at both count on side S only
    SELECT m.pipeline_id, m.side, c.*
    FROM compared c
    CROSS JOIN LATERAL (
        VALUES ('S', c.start_pipeline_id),
               ('E', CASE WHEN c.end_pipeline_id IS DISTINCT FROM c.start_pipeline_id THEN c.end_pipeline_id END)
    ) AS m(side, pipeline_id)
    WHERE m.pipeline_id IS NOT NULL
      AND (CAST(:pipeline_ids AS uuid[]) IS NULL OR m.pipeline_id = ANY (CAST(:pipeline_ids AS uuid[])))
),
grouped AS (
    -- counts are sums of the pairs' deals
    SELECT pipeline_id,
{MOVEMENT_SUMS}
    FROM movements
    GROUP BY pipeline_id
)
SELECT p.pipeline_id,
"""
# Every selected pipeline gets its row, zeros included (sum over no rows is NULL: 0.00).
SQL += ",\n".join(
    f"       COALESCE(g.{movement}_count, 0) AS {movement}_count,\n"
    f"       COALESCE(g.{movement}_amount, 0) AS {movement}_amount"
    for movement in MOVEMENTS
)
SQL += """
FROM crm.pipeline p
LEFT JOIN grouped g ON g.pipeline_id = p.pipeline_id
WHERE p.tenant_id = :tenant_id
  AND (CAST(:pipeline_ids AS uuid[]) IS NULL OR p.pipeline_id = ANY (CAST(:pipeline_ids AS uuid[])))
ORDER BY p.pipeline_id
"""

REPORT = ReportDefinition(
    report_type="pipeline_movement",
    title="Pipeline movement",
    description=(
        "Per pipeline, how the open deals at the start of the window became the open deals at its end: "
        "created, reopened, moved in, increased, decreased, moved out, won, lost and deleted, in counts "
        "and amounts, from the start to the end (every row balances)."
    ),
    fact_table=pipeline_movement_fact,
    dimensions=("pipeline_id",),
    metrics=tuple(f"{movement}_{measure}" for movement in MOVEMENTS for measure in ("count", "amount")),
    headline_metrics=("start_count", "start_amount", "end_count", "end_amount"),
    cadences=("month", "quarter"),
    sql=SQL,
    multi_period_sql=MULTI_PERIOD_SQL,
    # bump when a change can change the results (test_report_versions)
    report_version=1,
    requires_start=True,
    # JIT off: its compile saved nothing (docs/reports/pipeline_movement_design_details.md#planner-settings)
    jit=False,
    # but its multi-period pass with JIT: one compile for a whole backfill's rows (sql_common.PASS_JIT)
    multi_period_settings=PASS_JIT,
    planner_settings=ORDERED_PASS,
    fact_checks=(MOVEMENT_ROWS_BALANCE,),
)
