"""pipeline_overview: per stage, the snapshot at E (deals, amounts, days in stage) and entries in W."""

from dyno_reports.reports.base import ReportDefinition
from dyno_reports.reports.option_specs import OptionSpec
from dyno_reports.reports.pipeline_overview.checks import STAGE_ROWS_COMPLETE
from dyno_reports.reports.sql_common import (
    ORDERED_PASS,
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
    # bump when a change can change the results (test_report_versions)
    report_version=1,
    options=(INCLUDE_CLOSED,),
    # JIT without its optimising passes: faster than JIT off on the SQL before, no slower on this one
    # (docs/reports/pipeline_overview_design_details.md#jit and #per-deal-groups-2026-12-06)
    planner_settings=ORDERED_PASS + UNOPTIMISED_JIT,
    fact_checks=(STAGE_ROWS_COMPLETE,),
)
