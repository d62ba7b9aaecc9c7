"""weighted_pipeline: open deals at E per pipeline, owner and expected close month (with its fiscal quarter),
weighted by stage probability."""

from dyno_reports.reports.base import ReportDefinition
from dyno_reports.reports.sql_common import KEY_ORDER_SCAN, report_sql
from dyno_reports.storage.tables import weighted_pipeline_fact

# A snapshot at E only: the window's start plays no part (docs/definitions.md, "weighted_pipeline").
# `close_month` truncates a DATE through `timestamp` (without time zone), so the
# session's time zone cannot shift it. The weighted sum is exact numeric
# (numeric(18,2) x numeric(5,4)) and rounded once, after the sum.
# The population is each deal's row at E when not deleted: `deal_rows` alone, no stint block.
# `close_quarter` follows from close_month: the tenant's fiscal quarters start every third month from
# :fiscal_year_start_month, so a month's quarter starts ((month - start month) mod 3) months earlier. It is
# computed once per group, after the GROUP BY (a date minus an interval is a timestamp without time zone:
# no session time zone either).
SQL = report_sql(
    ("stage_id", "owner_principal_id", "expected_close_date", "amount", "is_deleted", "is_state_at_end"),
    """,
in_scope AS (
    SELECT st.pipeline_id,
           p.owner_principal_id AS principal_id,
           CAST(date_trunc('month', CAST(p.expected_close_date AS timestamp)) AS date) AS close_month,
           p.amount,
           st.probability
    FROM deal_rows p
    JOIN scope_stages st ON st.stage_id = p.stage_id
    WHERE p.is_state_at_end AND NOT p.is_deleted AND st.kind = 'open'
)
SELECT pipeline_id,
       principal_id,
       close_month,
       CAST(close_month - make_interval(
           months => (CAST(EXTRACT(MONTH FROM close_month) AS integer) + 12
                      - CAST(:fiscal_year_start_month AS integer)) % 3
       ) AS date) AS close_quarter,
       count(*) AS deal_count,
       sum(amount) AS total_amount,
       round(sum(amount * probability), 2) AS weighted_amount
FROM in_scope
GROUP BY pipeline_id, principal_id, close_month
ORDER BY pipeline_id, principal_id, close_month NULLS LAST
""",
)

REPORT = ReportDefinition(
    report_type="weighted_pipeline",
    title="Weighted pipeline",
    description=(
        "The open deals of the selected pipelines at the end of the window, per pipeline, owner and "
        "expected close month (and its fiscal quarter): how many, their amount, and their amount weighted "
        "by stage probability."
    ),
    fact_table=weighted_pipeline_fact,
    dimensions=("pipeline_id", "principal_id", "close_month"),
    attributes=("close_quarter",),
    metrics=("deal_count", "total_amount", "weighted_amount"),
    headline_metrics=("deal_count", "total_amount", "weighted_amount"),
    cadences=("month", "quarter"),
    sql=SQL,
    # bump when a change can change the results (test_report_versions)
    report_version=1,
    # JIT kept: at 1M deals it saved more than its compile (docs/reports/weighted_pipeline_design_details.md#jit)
    planner_settings=KEY_ORDER_SCAN,
)
