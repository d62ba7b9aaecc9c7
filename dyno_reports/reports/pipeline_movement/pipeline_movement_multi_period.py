"""pipeline_movement over many windows from one pass (reports/multi_period.py): each window's facts exactly as the
single-period statement gives them.

Per window [S, E) a deal's movement depends only on its state at S and its state at E. A deal with no row in W has
the same state at both: it only adds to `start` and `end` of the pipeline it is open in, so those deals are summed
per (mark range, stage) and spread over the ends in the range (the snapshot part). A deal with rows in W has its
state at E among them (its last row in W) and its state at S just before its first row in W: the pass keeps both
and a second window over them, in the same order (no sort), puts the state at S beside the state at E (the flow
part). Both parts are grouped before anything is joined: pairs of ends and snapshot groups, not deals, go on.
docs/reports/pipeline_movement_design_details.md#multi-period-runs
"""

from dyno_reports.reports.multi_period import MULTI_PERIOD_HISTORY, WINDOWS, window_of
from dyno_reports.reports.pipeline_movement.movement_sums import MOVEMENT_SUMS
from dyno_reports.reports.sql_common import cents
from dyno_reports.storage.tables import MOVEMENTS

# The window the row after this one lies in (NULL: none, or no next row before the last end).
NEXT_ROW_WINDOW = window_of("r.next_from")

# The first end mark a live row is a snapshot row for: its own window's end (its first mark) is not one.
SNAPSHOT_FIRST_MARK = "r.first_mark + CASE WHEN r.window_index IS NULL THEN 0 ELSE 1 END"


MULTI_PERIOD_SQL = (
    "WITH"
    + ",".join((WINDOWS, MULTI_PERIOD_HISTORY))
    + f""",
end_and_start_rows AS (
    -- the states at the windows' ends (a mark range; one in a window is the deal's state at that window's end)
    -- and the states at the starts of the windows a deal has rows in (the row before its first row there);
    -- marked_rows states the key's order, so the lag below needs no sort of these rows. Amounts in integer
    -- cents from here on (sql_common.cents: one numeric step per kept row), then bigint sums and comparisons.
    SELECT r.deal_id, r.valid_from, r.stage_id, {cents("r.amount")} AS amount_cents, r.is_deleted, r.window_index,
           r.last_mark,
           CASE WHEN NOT r.is_deleted AND {SNAPSHOT_FIRST_MARK} <= r.last_mark THEN {SNAPSHOT_FIRST_MARK} END
               AS snapshot_first_mark
    FROM marked_rows r
    WHERE r.first_mark <= r.last_mark OR NULLIF({NEXT_ROW_WINDOW}, r.window_index) IS NOT NULL
),
paired AS (
    -- on the state at E of a window the deal has rows in, its state at S: the row before (NULL: none before S),
    -- since no kept row lies between them
    SELECT window_index, stage_id, amount_cents, is_deleted, snapshot_first_mark,
           CASE WHEN snapshot_first_mark IS NOT NULL THEN last_mark END AS snapshot_last_mark,
           CASE WHEN window_index IS NOT NULL THEN lag(stage_id) OVER deal_order END AS start_stage_id,
           CASE WHEN window_index IS NOT NULL THEN lag(amount_cents) OVER deal_order END AS start_cents,
           CASE WHEN window_index IS NOT NULL THEN lag(is_deleted) OVER deal_order END AS start_deleted
    FROM end_and_start_rows
    WINDOW deal_order AS (PARTITION BY deal_id ORDER BY valid_from)
),
row_parts AS (
    -- a kept row in a window is a pair of that window; a live one with marks also a snapshot row: one part each,
    -- so that each part is grouped by its own key (the pairs' keys times the marks would be many more groups)
    SELECT p.*,
           unnest(CASE WHEN p.window_index IS NULL THEN ARRAY[FALSE]
                       WHEN p.snapshot_first_mark IS NULL THEN ARRAY[TRUE]
                       ELSE ARRAY[TRUE, FALSE] END) AS is_pair
    FROM paired p
    WHERE p.window_index IS NOT NULL OR p.snapshot_first_mark IS NOT NULL
),
row_groups AS (
    -- each window's (state at S, state at E) pairs, and the snapshot rows by (stage, marks): counted, summed
    SELECT k.window_index, k.start_stage_id, k.start_deleted, k.stage_id, k.is_deleted, k.amount_change,
           k.snapshot_first_mark, k.snapshot_last_mark,
           CAST(count(*) AS integer) AS deals,
           sum(k.pair_start_cents) * 0.01 AS start_amount, sum(k.amount_cents) * 0.01 AS amount
    FROM (
        SELECT CASE WHEN rp.is_pair THEN rp.window_index END AS window_index,
               CASE WHEN rp.is_pair THEN rp.start_stage_id END AS start_stage_id,
               CASE WHEN rp.is_pair THEN rp.start_deleted END AS start_deleted,
               rp.stage_id, rp.is_deleted,
               CASE WHEN rp.is_pair THEN CAST(sign(rp.amount_cents - rp.start_cents) AS integer) END AS amount_change,
               CASE WHEN NOT rp.is_pair THEN rp.snapshot_first_mark END AS snapshot_first_mark,
               CASE WHEN NOT rp.is_pair THEN rp.snapshot_last_mark END AS snapshot_last_mark,
               CASE WHEN rp.is_pair THEN rp.start_cents END AS pair_start_cents,
               rp.amount_cents
        FROM row_parts rp
    ) k
    GROUP BY k.window_index, k.start_stage_id, k.start_deleted, k.stage_id, k.is_deleted, k.amount_change,
             k.snapshot_first_mark, k.snapshot_last_mark
),
deal_pairs AS (
    SELECT window_index, start_stage_id, start_deleted, stage_id AS end_stage_id, is_deleted AS end_deleted,
           amount_change, deals, start_amount, amount AS end_amount
    FROM row_groups
    WHERE window_index IS NOT NULL
    UNION ALL
    -- a live state at the end of a window the deal has no row in: also its state at that window's start
    SELECT w.window_index, g.stage_id AS start_stage_id, FALSE AS start_deleted, g.stage_id AS end_stage_id,
           FALSE AS end_deleted, 0 AS amount_change, g.deals, g.amount AS start_amount, g.amount AS end_amount
    FROM row_groups g
    JOIN windows w ON w.end_mark BETWEEN g.snapshot_first_mark AND g.snapshot_last_mark
),
compared AS (
    -- kind and pipeline of each end: NULL kind = not live (absent or deleted); the pipeline only when open
    SELECT p.window_index,
           CASE WHEN NOT p.start_deleted THEN s.kind END AS start_kind,
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
    -- as in the single-period statement: side S for the pipeline open in at S, side E for the one at E
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
    SELECT window_index, pipeline_id,
{MOVEMENT_SUMS}
    FROM movements
    GROUP BY window_index, pipeline_id
)
SELECT w.window_index,
       p.pipeline_id,
"""
)
MULTI_PERIOD_SQL += ",\n".join(
    f"       COALESCE(g.{movement}_count, 0) AS {movement}_count,\n"
    f"       COALESCE(g.{movement}_amount, 0) AS {movement}_amount"
    for movement in MOVEMENTS
)
MULTI_PERIOD_SQL += """
FROM windows w
CROSS JOIN crm.pipeline p
LEFT JOIN grouped g ON g.window_index = w.window_index AND g.pipeline_id = p.pipeline_id
WHERE p.tenant_id = :tenant_id
  AND (CAST(:pipeline_ids AS uuid[]) IS NULL OR p.pipeline_id = ANY (CAST(:pipeline_ids AS uuid[])))
ORDER BY w.window_index, p.pipeline_id
"""
