"""pipeline_overview: per stage, the snapshot at E (deals, amounts, days in stage) and entries in W."""

from dyno_reports.reports.base import ReportDefinition
from dyno_reports.reports.multi_period import MULTI_PERIOD_HISTORY, STATE_AT_WINDOW_END, WINDOWS
from dyno_reports.reports.option_specs import OptionSpec
from dyno_reports.reports.pipeline_overview.checks import STAGE_ROWS_COMPLETE
from dyno_reports.reports.sql_common import (
    ORDERED_PASS,
    SCOPE_STAGES,
    UNOPTIMISED_JIT,
    WINDOW_START,
    report_sql,
    rounded_days,
)
from dyno_reports.storage.tables import pipeline_overview_fact

INCLUDE_CLOSED = OptionSpec("include_closed", bool, False, "also report stages of kind won and lost")


# One ordered pass with only lag and lead (no look-ahead to the deal's last row: a `last_value` or whole-deal
# aggregate in the pass costs about as much as the floor's lag), then one group per deal, in the pass's order
# (no sort), over its state at E, its entries in W and its entries whose stint goes on past their row. The
# group gives liveness and the stage and amount at E (from the state at E, its last row), the start of the
# stint at E (its last entry: the state at E itself, or an entry whose stint goes on) and the stages it
# entered in W. Live deals are then grouped by (stage at E, stages entered in W): a few hundred groups
# (docs/reports/pipeline_overview_design_details.md#sql-approach), so the stages entered are counted once per deal
# and stage on those groups, not per deal.
SQL = report_sql(
    ("deal_id", "valid_from", "stage_id", "amount", "is_deleted", "is_entry", "is_state_at_end", "next_stage_id"),
    f""",
deal_summaries AS (
    SELECT bool_or(NOT r.is_deleted) FILTER (WHERE r.is_state_at_end) AS is_live,
           -- a one-element array: PostgreSQL 15 has no max(uuid), and the group has one state at E
           max(ARRAY[r.stage_id]) FILTER (WHERE r.is_state_at_end) AS stage_at_end,
           max(r.amount) FILTER (WHERE r.is_state_at_end) AS amount_at_end,
           max(r.valid_from) FILTER (WHERE r.is_entry) AS stint_start,
           array_agg(r.stage_id) FILTER (WHERE r.is_entry AND r.valid_from >= {WINDOW_START}) AS stages_entered
    FROM deal_rows r
    WHERE r.is_state_at_end
       OR (r.is_entry AND (r.valid_from >= {WINDOW_START} OR r.next_stage_id = r.stage_id))
    GROUP BY r.deal_id
),
deal_groups AS (
    SELECT stage_at_end, stages_entered, count(*) AS deals, sum(amount_at_end) AS total_amount,
           sum(extract(epoch FROM CAST(:period_end AS timestamptz) - stint_start)) AS stint_seconds
    FROM deal_summaries
    WHERE is_live
    GROUP BY stage_at_end, stages_entered
),
snapshot AS (
    SELECT stage_at_end[1] AS stage_id, CAST(sum(deals) AS bigint) AS deal_count,
           sum(total_amount) AS total_amount, sum(stint_seconds) AS stint_seconds
    FROM deal_groups
    GROUP BY stage_at_end[1]
),
entered AS (
    SELECT entered_stage.stage_id, CAST(sum(g.deals) AS bigint) AS entered_count
    FROM deal_groups g
    CROSS JOIN LATERAL (SELECT DISTINCT s AS stage_id FROM unnest(g.stages_entered) s) entered_stage
    GROUP BY entered_stage.stage_id
)
SELECT st.pipeline_id,
       st.stage_id,
       COALESCE(sn.deal_count, 0) AS deal_count,
       COALESCE(sn.total_amount, 0) AS total_amount,
       round(sn.total_amount / NULLIF(sn.deal_count, 0), 2) AS avg_amount,
       {rounded_days("sn.stint_seconds", "sn.deal_count")} AS avg_days_in_stage,
       COALESCE(en.entered_count, 0) AS entered_count
FROM scope_stages st
LEFT JOIN snapshot sn ON sn.stage_id = st.stage_id
LEFT JOIN entered en ON en.stage_id = st.stage_id
WHERE CAST(:include_closed AS boolean) OR st.kind = 'open'
ORDER BY st.pipeline_id, st.position
""",
)

# Every window of a backfill from one pass (reports/multi_period.py): one group per deal, in the pass's order,
# collects the deal's snapshot rows (a live row with its mark range: the ends it is the state at, and its stage,
# packed in one key) and its entries in windows, with the windows whose end it is live at; set-returning functions
# then lay them out side by side (no subquery per deal), and one hash aggregate with two grouping sets sums the
# snapshot per (mark range, stage), a few hundred groups, and counts the entries per (window, stage) of deals live
# at that window's end, each once. The snapshot is then spread over the windows whose end is in the range; days in
# stage sum as count * E - sum(stint starts). Only the stages the report shows are carried, by their place in one
# array (an InitPlan), computed once per row: deals sitting in closed stages drop out early.
# docs/reports/pipeline_overview_design_details.md#multi-period-runs
REPORTED_STAGES = """ARRAY(
        SELECT st.stage_id FROM scope_stages st
        WHERE CAST(:include_closed AS boolean) OR st.kind = 'open'
        ORDER BY st.stage_id
    )"""
SNAPSHOT_ROW = "NOT r.is_deleted AND r.first_mark <= r.last_mark AND r.stage_place IS NOT NULL"
# An entry as one integer, window_index * ENTRY_BASE + the stage's place; a snapshot row's key as one bigint,
# (first_mark * MARK_BASE + last_mark) * MARK_BASE + the stage's place: one hash key each.
ENTRY_BASE = 65536
MARK_BASE = 1048576
MULTI_PERIOD_SQL = (
    "WITH"
    + ",".join((SCOPE_STAGES, WINDOWS, MULTI_PERIOD_HISTORY))
    + f""",
placed_rows AS (
    SELECT r.deal_id, r.valid_from, r.amount, r.window_index, r.is_entry, r.stage_place,
           {SNAPSHOT_ROW} AS is_snapshot_row,
           (CAST(r.first_mark AS bigint) * {MARK_BASE} + r.last_mark) * {MARK_BASE} + r.stage_place AS snapshot_key,
           NOT r.is_deleted AND {STATE_AT_WINDOW_END} AS is_live_at_window_end
    -- a fence (OFFSET 0) in the pass's order: the stage's place is computed once per row, not once per use
    FROM (SELECT r.*, array_position({REPORTED_STAGES}, r.stage_id) AS stage_place
          FROM marked_rows r
          ORDER BY r.deal_id, r.valid_from
          OFFSET 0) r
),
deal_summaries AS (
    SELECT array_agg(r.window_index) FILTER (WHERE r.is_live_at_window_end) AS live_windows,
           array_agg(r.window_index * {ENTRY_BASE} + r.stage_place)
               FILTER (WHERE r.is_entry AND r.window_index IS NOT NULL AND r.stage_place IS NOT NULL) AS entries,
           array_agg(r.snapshot_key) FILTER (WHERE r.is_snapshot_row) AS snapshot_keys,
           array_agg(r.amount) FILTER (WHERE r.is_snapshot_row) AS amounts,
           array_agg(r.valid_from) FILTER (WHERE r.is_snapshot_row) AS snapshot_times,
           -- a snapshot row's stint began at the last of these at or before it (its stint's entry)
           array_agg(r.valid_from) FILTER (WHERE r.is_entry AND r.stage_place IS NOT NULL) AS entry_times
    FROM placed_rows r
    WHERE r.window_index IS NOT NULL OR r.is_snapshot_row OR (r.is_entry AND r.stage_place IS NOT NULL)
    GROUP BY r.deal_id
),
-- a deal's entries beside its snapshot rows (set-returning functions in lockstep, the shorter list padded with
-- NULLs); piece_index says which entry a row holds, so an entry the deal made twice in a window counts once
pieces AS (
    SELECT d.live_windows, d.entry_times, d.entries,
           generate_series(1, greatest(cardinality(d.entries), cardinality(d.snapshot_keys))) AS piece_index,
           unnest(d.entries) AS entry,
           unnest(d.snapshot_keys) AS snapshot_key,
           unnest(d.amounts) AS amount,
           unnest(d.snapshot_times) AS snapshot_time
    FROM deal_summaries d
),
piece_groups AS (
    SELECT p.entry / {ENTRY_BASE} AS window_index, p.entry % {ENTRY_BASE} AS entered_place,
           p.snapshot_key / {MARK_BASE**2} AS first_mark, p.snapshot_key / {MARK_BASE} % {MARK_BASE} AS last_mark,
           p.snapshot_key % {MARK_BASE} AS snapshot_place,
           count(*) FILTER (WHERE p.entry / {ENTRY_BASE} = ANY (p.live_windows)
                            AND array_position(p.entries, p.entry) = p.piece_index) AS entered,
           count(p.snapshot_key) AS deals, sum(p.amount) AS total_amount,
           -- exact numeric seconds (a sum of intervals would overflow its days at a million deals)
           sum(extract(epoch FROM p.entry_times[width_bucket(p.snapshot_time, p.entry_times)]))
               AS stint_start_seconds
    FROM pieces p
    GROUP BY GROUPING SETS ((p.entry), (p.snapshot_key))
),
reported_stages AS (
    SELECT place, stage_id FROM unnest({REPORTED_STAGES}) WITH ORDINALITY AS reported(stage_id, place)
),
snapshot AS (
    SELECT w.window_index, g.snapshot_place, CAST(sum(g.deals) AS bigint) AS deal_count,
           sum(g.total_amount) AS total_amount,
           sum(g.deals * extract(epoch FROM w.window_end) - g.stint_start_seconds) AS stint_seconds
    FROM piece_groups g
    JOIN windows w ON w.end_mark BETWEEN g.first_mark AND g.last_mark
    WHERE g.snapshot_place IS NOT NULL
    GROUP BY w.window_index, g.snapshot_place
)
SELECT w.window_index,
       st.pipeline_id,
       st.stage_id,
       COALESCE(sn.deal_count, 0) AS deal_count,
       COALESCE(sn.total_amount, 0) AS total_amount,
       round(sn.total_amount / NULLIF(sn.deal_count, 0), 2) AS avg_amount,
       {rounded_days("sn.stint_seconds", "sn.deal_count")} AS avg_days_in_stage,
       COALESCE(en.entered, 0) AS entered_count
FROM windows w
CROSS JOIN scope_stages st
JOIN reported_stages rs ON rs.stage_id = st.stage_id
LEFT JOIN snapshot sn ON sn.window_index = w.window_index AND sn.snapshot_place = rs.place
LEFT JOIN piece_groups en ON en.window_index = w.window_index AND en.entered_place = rs.place
ORDER BY w.window_index, st.pipeline_id, st.position
"""
)

REPORT = ReportDefinition(
    report_type="pipeline_overview",
    title="Pipeline overview",
    description=(
        "Per stage of the selected pipelines: the deals sitting in it at the end of the "
        "window (count, amounts, average days in the stage) and how many entered it during the window."
    ),
    fact_table=pipeline_overview_fact,
    dimensions=("pipeline_id", "stage_id"),
    metrics=("deal_count", "total_amount", "avg_amount", "avg_days_in_stage", "entered_count"),
    headline_metrics=("deal_count", "total_amount", "entered_count"),
    cadences=("week",),
    sql=SQL,
    multi_period_sql=MULTI_PERIOD_SQL,
    # bump when a change can change the results (test_report_versions)
    report_version=1,
    options=(INCLUDE_CLOSED,),
    # JIT without its optimising passes: faster than JIT off on the SQL before, no slower on this one
    # (docs/reports/pipeline_overview_design_details.md#jit and #per-deal-groups-2026-12-06)
    planner_settings=ORDERED_PASS + UNOPTIMISED_JIT,
    fact_checks=(STAGE_ROWS_COMPLETE,),
)
