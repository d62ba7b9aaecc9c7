"""deal_velocity: per open stage, how long the stints that ended in W lasted (mean, median, p90).

Counted: every stint of a population deal in the stage whose exit (the deal's next
entry) is at a time in W, repeated visits included. Percentiles are computed
exactly on numeric, with percentile_cont's interpolation (PostgreSQL's own
percentile_cont works on double precision). See docs/reports/deal_velocity_design_details.md.
"""

from dyno_reports.reports.base import ReportDefinition
from dyno_reports.reports.multi_period import MULTI_PERIOD_HISTORY, STATE_AT_WINDOW_END, WINDOWS
from dyno_reports.reports.sql_common import (
    ORDERED_PASS,
    PASS_JIT,
    SCOPE_STAGES,
    STINT_ENTRIES,
    WINDOW_START,
    report_sql,
    rounded_days,
)
from dyno_reports.storage.tables import deal_velocity_fact


def continuous_percentile(fraction: str) -> str:
    """percentile_cont(fraction) of the stint lengths of a stage, in seconds, on numeric, from
    `durations` (its stints' lengths, sorted) and `exited_count`: the position is
    fraction * (exited_count - 1), counting from 0; interpolate linearly between the length
    at floor(position) and the next one."""
    position = f"({fraction} * (exited_count - 1))"
    at_floor = f"durations[CAST(floor({position}) AS integer) + 1]"
    after_floor = f"COALESCE(durations[CAST(floor({position}) AS integer) + 2], {at_floor})"
    return (
        f"extract(epoch FROM {at_floor}) + ({position} - floor({position}))"
        f" * (extract(epoch FROM {after_floor}) - extract(epoch FROM {at_floor}))"
    )


# A stint's exit is the deal's next entry: each entry in W of a live deal (other than its
# first row) ends the stint of `previous_stage_id` that began at the deal's entry before it.
# That entry is the row before among `STINT_ENTRIES` (one window in the pass's order, without
# a partition: read only on entries in W that are not a deal's first row, whose row before is
# the same deal's). Per stage, one aggregate sorts its exits' lengths into an array (as
# intervals, which sort as their seconds do and compare faster than numeric), so the
# percentiles are two subscripts each: no window over the exits. The stages in scope are
# picked after the aggregate, so the history pass is never the inner side of a join.
SQL = report_sql(
    ("deal_id", "valid_from", "stage_id", "previous_stage_id", "is_entry", "next_stage_mark", "is_live"),
    f""",
entries AS (
    SELECT r.valid_from, r.previous_stage_id,
           lag(r.valid_from) OVER (ORDER BY r.deal_id, r.valid_from) AS previous_entry_at
    FROM deal_rows r
    WHERE {STINT_ENTRIES}
),
exits AS (
    -- stints whose exit is in W (a stint open at E has no exit)
    SELECT previous_stage_id AS stage_id, valid_from - previous_entry_at AS duration
    FROM entries
    WHERE previous_stage_id IS NOT NULL AND valid_from >= {WINDOW_START}
),
sorted_exits AS (
    SELECT stage_id,
           count(*) AS exited_count,
           sum(extract(epoch FROM duration)) AS total_seconds,
           array_agg(duration ORDER BY duration) AS durations
    FROM exits
    GROUP BY stage_id
),
per_stage AS (
    SELECT stage_id, exited_count, total_seconds,
           {continuous_percentile("0.5")} AS p50_seconds,
           {continuous_percentile("0.9")} AS p90_seconds
    FROM sorted_exits
)
SELECT st.pipeline_id,
       st.stage_id,
       COALESCE(ps.exited_count, 0) AS exited_count,
       {rounded_days("ps.total_seconds", "ps.exited_count")} AS avg_days,
       {rounded_days("ps.p50_seconds")} AS p50_days,
       {rounded_days("ps.p90_seconds")} AS p90_days
FROM scope_stages st
LEFT JOIN per_stage ps ON ps.stage_id = st.stage_id
WHERE st.kind = 'open'
ORDER BY st.pipeline_id, st.position
""",
)

# Every window of a backfill from one pass (reports/multi_period.py). An exit in window w is an entry row in w that
# is not the deal's first row; the stint it ends began at the deal's entry before it. One window node over each
# deal (in the pass's order: no sort) collects the deal's entry times and the windows at whose end it is live (read
# from its states there), once per deal; each exit finds the stint's start among those times by a binary search
# (`width_bucket`: the entries at or before the exit are the exit itself and, before it, that start). A running
# `previous_stint_start` instead would take a second window node over the whole history (deal_velocity's pass 8 %
# slower, docs/reports/deal_velocity_design_details.md). The exits of the windows the deal is live at are grouped
# per (window, stage) by hash (an aggregate with ORDER BY would sort every exit, in temp files) and each group's
# lengths sorted on their own; the percentiles are then taken as in `SQL`.
# docs/reports/deal_velocity_design_details.md#multi-period-runs
EXIT_ROW = "r.is_entry AND r.previous_stage_id IS NOT NULL"
MULTI_PERIOD_SQL = (
    "WITH"
    + ",".join((SCOPE_STAGES, WINDOWS, MULTI_PERIOD_HISTORY))
    + f""",
exit_rows AS (
    SELECT e.window_index, e.previous_stage_id, e.live_windows,
           e.valid_from - e.entry_times[width_bucket(e.valid_from, e.entry_times) - 1] AS duration
    FROM (SELECT r.window_index, r.valid_from, r.previous_stage_id, {EXIT_ROW} AS is_exit,
                 array_agg(r.valid_from) FILTER (WHERE r.is_entry) OVER deal AS entry_times,
                 array_agg(r.window_index)
                     FILTER (WHERE r.window_index IS NOT NULL AND NOT r.is_deleted AND {STATE_AT_WINDOW_END})
                     OVER deal AS live_windows
          FROM marked_rows r
          WINDOW deal AS (PARTITION BY r.deal_id)) e
    WHERE e.window_index IS NOT NULL AND e.is_exit
),
exit_groups AS (
    SELECT window_index, previous_stage_id AS stage_id,
           count(*) AS exited_count,
           sum(extract(epoch FROM duration)) AS total_seconds,
           array_agg(duration) AS unsorted_durations
    FROM exit_rows
    WHERE window_index = ANY (live_windows)
    GROUP BY window_index, previous_stage_id
),
sorted_exits AS (
    SELECT g.window_index, g.stage_id, g.exited_count, g.total_seconds, sorted.durations
    FROM exit_groups g
    CROSS JOIN LATERAL (
        SELECT array_agg(duration ORDER BY duration) AS durations FROM unnest(g.unsorted_durations) duration
    ) sorted
),
per_stage AS (
    SELECT window_index, stage_id, exited_count, total_seconds,
           {continuous_percentile("0.5")} AS p50_seconds,
           {continuous_percentile("0.9")} AS p90_seconds
    FROM sorted_exits
)
SELECT w.window_index,
       st.pipeline_id,
       st.stage_id,
       COALESCE(ps.exited_count, 0) AS exited_count,
       {rounded_days("ps.total_seconds", "ps.exited_count")} AS avg_days,
       {rounded_days("ps.p50_seconds")} AS p50_days,
       {rounded_days("ps.p90_seconds")} AS p90_days
FROM windows w
CROSS JOIN scope_stages st
LEFT JOIN per_stage ps ON ps.window_index = w.window_index AND ps.stage_id = st.stage_id
WHERE st.kind = 'open'
ORDER BY w.window_index, st.pipeline_id, st.position
"""
)

REPORT = ReportDefinition(
    report_type="deal_velocity",
    title="Deal velocity",
    description=(
        "Per open stage of the selected pipelines: the stints that ended during the window "
        "(every visit counts) and how long they lasted: mean, median and 90th percentile in days."
    ),
    fact_table=deal_velocity_fact,
    dimensions=("pipeline_id", "stage_id"),
    metrics=("exited_count", "avg_days", "p50_days", "p90_days"),
    headline_metrics=("exited_count",),
    cadences=("month", "quarter"),
    sql=SQL,
    multi_period_sql=MULTI_PERIOD_SQL,
    # bump when a change can change the results (test_report_versions)
    report_version=1,
    # JIT off: its compile cost more CPU than it saved (docs/reports/deal_velocity_design_details.md#jit)
    jit=False,
    # but its multi-period pass with JIT: one compile for a whole backfill's rows (sql_common.PASS_JIT)
    multi_period_settings=PASS_JIT,
    planner_settings=ORDERED_PASS,
)
