"""pipeline_overview: per stage, the snapshot at E (deals, amounts, days in stage) and entries in W."""

from dyno_reports.reports.base import OptionSpec, ReportDefinition
from dyno_reports.reports.sql_common import (
    ORDERED_PASS,
    STINT_AT_END_ENTRIES,
    UNOPTIMISED_JIT,
    WINDOW_START,
    report_sql,
    rounded_days,
)
from dyno_reports.storage.tables import pipeline_overview_fact

INCLUDE_CLOSED = OptionSpec("include_closed", bool, False, "also report stages of kind won and lost")


# One ordered pass; then, over each live deal's state at E, its entries in W and
# `STINT_AT_END_ENTRIES` (a fifth of the rows at 100k deals), a second window in the same order
# gives each row the start of the stint before it (`max(valid_from)` of the deal's entries
# before it: on the state at E, the deal's last entry) and the stages the deal entered in W
# before it. The rows that count are the states at E (the snapshot) and the entries in W,
# each counted once per deal and stage (its first entry into that stage in W). One hash
# aggregate of a few groups, no sort.
SQL = report_sql(
    f""",
stint_rows AS (
    SELECT r.deal_id, r.valid_from, r.stage_id, r.amount, r.is_entry, r.is_state_at_end,
           max(r.valid_from) FILTER (WHERE r.is_entry) OVER before_row AS previous_stint_start,
           array_agg(r.stage_id) FILTER (WHERE r.is_entry AND r.valid_from >= {WINDOW_START})
               OVER before_row AS stages_entered_in_window_before
    FROM deal_rows r
    WHERE r.is_live
      AND (r.is_state_at_end
           OR (r.is_entry AND r.valid_from >= {WINDOW_START})
           OR ({STINT_AT_END_ENTRIES}))
    WINDOW before_row AS (PARTITION BY r.deal_id ORDER BY r.valid_from
                          ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING)
),
counted_rows AS (
    SELECT stage_id, amount, is_state_at_end AS in_snapshot,
           CASE WHEN is_entry THEN valid_from ELSE previous_stint_start END AS stint_start,
           is_entry AND valid_from >= {WINDOW_START}
               AND array_position(stages_entered_in_window_before, stage_id) IS NULL
               AS is_first_entry_in_window
    FROM stint_rows
    WHERE is_state_at_end OR (is_entry AND valid_from >= {WINDOW_START})
),
per_stage AS (
    SELECT stage_id,
           count(*) FILTER (WHERE in_snapshot) AS deal_count,
           sum(amount) FILTER (WHERE in_snapshot) AS total_amount,
           sum(extract(epoch FROM CAST(:period_end AS timestamptz) - stint_start))
               FILTER (WHERE in_snapshot) AS stint_seconds,
           count(*) FILTER (WHERE is_first_entry_in_window) AS entered_count
    FROM counted_rows
    GROUP BY stage_id
)
SELECT st.pipeline_id,
       st.stage_id,
       COALESCE(ps.deal_count, 0) AS deal_count,
       COALESCE(ps.total_amount, 0) AS total_amount,
       round(ps.total_amount / NULLIF(ps.deal_count, 0), 2) AS avg_amount,
       {rounded_days("ps.stint_seconds", "ps.deal_count")} AS avg_days_in_stage,
       COALESCE(ps.entered_count, 0) AS entered_count
FROM scope_stages st
LEFT JOIN per_stage ps ON ps.stage_id = st.stage_id
WHERE CAST(:include_closed AS boolean) OR st.kind = 'open'
ORDER BY st.pipeline_id, st.position
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
    cadence="week",
    sql=SQL,
    options=(INCLUDE_CLOSED,),
    # JIT without its optimising passes: 2-3% faster at 100k and 1M deals than JIT off (design details, "JIT")
    planner_settings=ORDERED_PASS + UNOPTIMISED_JIT,
)
