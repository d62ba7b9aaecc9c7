"""weighted_pipeline: open deals at E per pipeline, owner and expected close month (with its fiscal quarter),
weighted by stage probability."""

from dyno_reports.reports.base import ReportDefinition
from dyno_reports.reports.multi_period import MULTI_PERIOD_HISTORY, WINDOWS
from dyno_reports.reports.sql_common import (
    KEY_ORDER_SCAN,
    ORDERED_PASS,
    PASS_WORK_MEM,
    SCOPE_STAGES,
    cents,
    report_sql,
)
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

# Every window of a backfill from one pass (reports/multi_period.py): a live row in an open stage in scope is the
# deal's state at every end in its mark range. Rows are counted and their amounts summed in integer cents
# (sql_common.cents: one numeric step per row, a small bigint sum state) per (mark range, stage, owner, close
# month); each such group's cents are weighted by its stage's probability once, and the groups summed per (mark
# range, pipeline, owner, close month), thousands of groups, then spread over the windows whose end mark is in
# the range and summed again. Weighting a stage's sum equals summing its weighted amounts (exact numerics), and
# the one round() per window and group comes last, as in SQL.
# docs/reports/weighted_pipeline_design_details.md#multi-period-runs
MULTI_PERIOD_SQL = (
    "WITH"
    + ",".join((SCOPE_STAGES, WINDOWS, MULTI_PERIOD_HISTORY))
    + f""",
open_stages AS (
    SELECT array_agg(o.stage_id) AS stage_ids
    FROM scope_stages o
    WHERE o.kind = 'open'
),
stage_groups AS (
    SELECT r.first_mark,
           r.last_mark,
           r.stage_id,
           r.owner_principal_id AS principal_id,
           CAST(date_trunc('month', CAST(r.expected_close_date AS timestamp)) AS date) AS close_month,
           count(*) AS deal_count,
           sum({cents("r.amount")}) AS total_cents
    FROM marked_rows r
    WHERE NOT r.is_deleted
      AND r.first_mark <= r.last_mark
      AND r.stage_id = ANY (CAST((SELECT o.stage_ids FROM open_stages o) AS uuid[]))
    GROUP BY r.first_mark, r.last_mark, r.stage_id, r.owner_principal_id, close_month
),
mark_range_groups AS (
    SELECT g.first_mark,
           g.last_mark,
           st.pipeline_id,
           g.principal_id,
           g.close_month,
           sum(g.deal_count) AS deal_count,
           sum(g.total_cents) AS total_cents,
           sum(g.total_cents * st.probability) AS weighted_cents
    FROM stage_groups g
    JOIN scope_stages st ON st.stage_id = g.stage_id
    GROUP BY g.first_mark, g.last_mark, st.pipeline_id, g.principal_id, g.close_month
)
SELECT w.window_index,
       g.pipeline_id,
       g.principal_id,
       g.close_month,
       CAST(g.close_month - make_interval(
           months => (CAST(EXTRACT(MONTH FROM g.close_month) AS integer) + 12
                      - CAST(:fiscal_year_start_month AS integer)) % 3
       ) AS date) AS close_quarter,
       CAST(sum(g.deal_count) AS bigint) AS deal_count,
       sum(g.total_cents) * 0.01 AS total_amount,
       round(sum(g.weighted_cents) * 0.01, 2) AS weighted_amount
FROM mark_range_groups g
JOIN windows w ON w.end_mark BETWEEN g.first_mark AND g.last_mark
GROUP BY w.window_index, g.pipeline_id, g.principal_id, g.close_month
ORDER BY w.window_index, g.pipeline_id, g.principal_id, g.close_month NULLS LAST
"""
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
    multi_period_sql=MULTI_PERIOD_SQL,
    # hashes its groups in memory, where a sort wrote 213 MB of temp at 1M deals (design details, multi-period)
    multi_period_settings=PASS_WORK_MEM + ORDERED_PASS,
    # bump when a change can change the results (test_report_versions)
    report_version=1,
    # JIT kept: at 1M deals it saved more than its compile (docs/reports/weighted_pipeline_design_details.md#jit)
    planner_settings=KEY_ORDER_SCAN,
)
