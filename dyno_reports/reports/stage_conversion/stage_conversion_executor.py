"""stage_conversion: per open stage, the deals that entered it in W and how many of them moved on.

The cohort of a stage s is the population deals with an entry into s in W, each
with t0 = its first such entry. A cohort deal advanced when it has a later entry
(before E) into a won stage, or an open stage of greater position, of s's own
pipeline. See docs/reports/stage_conversion_design_details.md.
"""

from dyno_reports.reports.base import ReportDefinition
from dyno_reports.reports.sql_common import ORDERED_PASS, WINDOW_START, report_sql, rounded_days, rounded_rate
from dyno_reports.storage.tables import stage_conversion_fact

# The pass keeps the entries in W of live deals (a few per deal at most, with the deal's
# stage at E); cohorts and advances are joins over that small set.
SQL = report_sql(
    ("deal_id", "valid_from", "stage_id", "is_entry", "is_live", "stage_at_end"),
    f""",
entries_in_window AS (
    SELECT deal_id, stage_id, valid_from AS entered_at, stage_at_end
    FROM deal_rows
    WHERE is_live AND is_entry AND valid_from >= {WINDOW_START}
),
cohort AS (
    -- per open stage in scope: the population deals with an entry into it in W, and t0
    SELECT sc.stage_id, sc.pipeline_id, sc.position, e.deal_id, e.stage_at_end, min(e.entered_at) AS t0
    FROM entries_in_window e
    JOIN scope_stages sc ON sc.stage_id = e.stage_id AND sc.kind = 'open'
    GROUP BY sc.stage_id, sc.pipeline_id, sc.position, e.deal_id, e.stage_at_end
),
advanced AS (
    -- cohort deals with a later entry (before E: history holds nothing later) into a won
    -- stage or a further open stage of the same pipeline; seconds from t0 to the first one
    SELECT c.stage_id, c.deal_id, extract(epoch FROM min(n.entered_at) - c.t0) AS seconds
    FROM cohort c
    JOIN entries_in_window n ON n.deal_id = c.deal_id AND n.entered_at > c.t0
    JOIN scope_stages ns ON ns.stage_id = n.stage_id AND ns.pipeline_id = c.pipeline_id
    WHERE ns.kind = 'won' OR (ns.kind = 'open' AND ns.position > c.position)
    GROUP BY c.stage_id, c.deal_id, c.t0
),
per_stage AS (
    SELECT c.stage_id,
           count(*) AS entered_count,
           count(a.deal_id) AS advanced_count,
           count(*) FILTER (WHERE at_end.kind = 'lost') AS lost_count,
           sum(a.seconds) AS advance_seconds
    FROM cohort c
    -- the stage of the state at E, in any pipeline (selected or not)
    JOIN crm.stage at_end ON at_end.tenant_id = :tenant_id AND at_end.stage_id = c.stage_at_end
    LEFT JOIN advanced a ON a.stage_id = c.stage_id AND a.deal_id = c.deal_id
    GROUP BY c.stage_id
)
SELECT st.pipeline_id,
       st.stage_id,
       COALESCE(ps.entered_count, 0) AS entered_count,
       COALESCE(ps.advanced_count, 0) AS advanced_count,
       COALESCE(ps.lost_count, 0) AS lost_count,
       {rounded_rate("ps.advanced_count", "ps.entered_count")} AS conversion_rate,
       {rounded_days("ps.advance_seconds", "ps.advanced_count")} AS avg_days_to_advance
FROM scope_stages st
LEFT JOIN per_stage ps ON ps.stage_id = st.stage_id
WHERE st.kind = 'open'
ORDER BY st.pipeline_id, st.position
""",
)

REPORT = ReportDefinition(
    report_type="stage_conversion",
    title="Stage conversion",
    description=(
        "Per open stage of the selected pipelines: the deals that entered it during the window, "
        "how many of them advanced (to a won stage or a later open stage of the same pipeline) "
        "before its end, how many sit in a lost stage at its end, the conversion rate and the "
        "average days to advance."
    ),
    fact_table=stage_conversion_fact,
    dimensions=("pipeline_id", "stage_id"),
    metrics=("entered_count", "advanced_count", "lost_count", "conversion_rate", "avg_days_to_advance"),
    headline_metrics=("entered_count", "advanced_count", "lost_count"),
    cadences=("week",),
    sql=SQL,
    # bump when a change can change the results (test_report_versions)
    report_version=1,
    # JIT off: its compile cost more CPU than it saved (docs/reports/stage_conversion_design_details.md#jit)
    jit=False,
    planner_settings=ORDERED_PASS,
)
