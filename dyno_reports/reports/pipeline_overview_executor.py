"""pipeline_overview: per stage, the snapshot at E (deals, amounts, days in stage) and entries in W."""

from pydantic import Field, StrictBool

from dyno_reports.reports.base import ReportDefinition, ReportOptions
from dyno_reports.reports.sql_common import WINDOW_START, report_sql, rounded_days
from dyno_reports.storage.tables import pipeline_overview_fact


class PipelineOverviewOptions(ReportOptions):
    include_closed: StrictBool = Field(default=False, description="also report stages of kind won and lost")


SQL = report_sql(
    f""",
snapshot AS (
    SELECT p.stage_id,
           count(*) AS deal_count,
           sum(p.amount) AS total_amount,
           sum(extract(epoch FROM CAST(:period_end AS timestamptz) - s.entered_at)) AS stint_seconds
    FROM population p
    JOIN stints s ON s.deal_id = p.deal_id AND s.exited_at IS NULL
    GROUP BY p.stage_id
),
entered AS (
    SELECT stage_id, count(DISTINCT deal_id) AS entered_count
    FROM stints
    WHERE entered_at >= {WINDOW_START}
    GROUP BY stage_id
)
SELECT st.pipeline_id,
       st.stage_id,
       COALESCE(sn.deal_count, 0) AS deal_count,
       COALESCE(sn.total_amount, 0) AS total_amount,
       round(sn.total_amount / sn.deal_count, 2) AS avg_amount,
       {rounded_days("sn.stint_seconds", "sn.deal_count")} AS avg_days_in_stage,
       COALESCE(en.entered_count, 0) AS entered_count
FROM scope_stages st
LEFT JOIN snapshot sn ON sn.stage_id = st.stage_id
LEFT JOIN entered en ON en.stage_id = st.stage_id
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
    options_model=PipelineOverviewOptions,
    cadence="week",
    sql=SQL,
)
