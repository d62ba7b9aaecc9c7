"""win_loss: deals closed won or lost in W (and still so at E), per closing pipeline and owner on the closing row."""

from dyno_reports.reports.base import ReportDefinition
from dyno_reports.reports.sql_common import ORDERED_PASS, WINDOW_START, report_sql, rounded_days, rounded_rate
from dyno_reports.storage.tables import win_loss_fact

# Only live deals' entries in W can be counted: they are filtered in the pass, before any join.
SQL = report_sql(
    ("deal_id", "valid_from", "stage_id", "owner_principal_id", "amount", "is_entry", "is_live", "stage_at_end"),
    f""",
last_closing AS (
    -- each live deal's last closing event in W (an entry into a won/lost stage of a selected pipeline);
    -- the closing row is that entry row: its owner and amount are the ones reported
    SELECT DISTINCT ON (h.deal_id)
           h.deal_id, h.valid_from AS closed_at, h.owner_principal_id, h.amount, h.stage_at_end,
           st.pipeline_id, st.kind
    FROM deal_rows h
    JOIN scope_stages st ON st.stage_id = h.stage_id
    WHERE h.is_live
      AND h.is_entry
      AND st.kind IN ('won', 'lost')
      AND h.valid_from >= {WINDOW_START}
    ORDER BY h.deal_id, h.valid_from DESC
),
counted AS (
    -- those whose stage at E (in any pipeline) is of the same kind as that event
    SELECT c.pipeline_id, c.owner_principal_id, c.kind, c.amount,
           extract(epoch FROM c.closed_at - d.created_at) AS cycle_seconds
    FROM last_closing c
    JOIN crm.stage now_stage ON now_stage.tenant_id = :tenant_id AND now_stage.stage_id = c.stage_at_end
    JOIN crm.deal d ON d.tenant_id = :tenant_id AND d.deal_id = c.deal_id
    WHERE now_stage.kind = c.kind
),
grouped AS (
    SELECT pipeline_id,
           owner_principal_id AS principal_id,
           count(*) FILTER (WHERE kind = 'won') AS won_count,
           count(*) FILTER (WHERE kind = 'lost') AS lost_count,
           COALESCE(sum(amount) FILTER (WHERE kind = 'won'), 0) AS won_amount,
           COALESCE(sum(amount) FILTER (WHERE kind = 'lost'), 0) AS lost_amount,
           sum(cycle_seconds) FILTER (WHERE kind = 'won') AS won_cycle_seconds
    FROM counted
    GROUP BY pipeline_id, owner_principal_id
)
SELECT pipeline_id,
       principal_id,
       won_count,
       lost_count,
       won_amount,
       lost_amount,
       {rounded_rate("won_count", "won_count + lost_count")} AS win_rate,
       {rounded_rate("won_amount", "won_amount + lost_amount")} AS win_rate_by_value,
       {rounded_days("won_cycle_seconds", "won_count")} AS avg_cycle_days
FROM grouped
ORDER BY pipeline_id, principal_id
""",
)

REPORT = ReportDefinition(
    report_type="win_loss",
    title="Win / loss",
    description=(
        "Deals of the selected pipelines closed won or lost during the window and still so at its end, "
        "per pipeline and owner: counts, amounts, win rates by count and by value, and the average "
        "days from creation to a win."
    ),
    fact_table=win_loss_fact,
    dimensions=("pipeline_id", "principal_id"),
    metrics=(
        "won_count",
        "lost_count",
        "won_amount",
        "lost_amount",
        "win_rate",
        "win_rate_by_value",
        "avg_cycle_days",
    ),
    headline_metrics=("won_count", "lost_count", "won_amount", "lost_amount"),
    cadences=("month", "quarter"),
    sql=SQL,
    # bump when a change can change the results (test_report_versions)
    report_version=1,
    # JIT off: its compile cost more CPU than it saved (docs/reports/win_loss_design_details.md#jit)
    jit=False,
    planner_settings=ORDERED_PASS,
)
