"""win_loss: deals closed won or lost in W (and still so at E), per closing pipeline and owner on the closing row."""

from dyno_reports.reports.base import ReportDefinition
from dyno_reports.reports.multi_period import MULTI_PERIOD_HISTORY, STATE_AT_WINDOW_END
from dyno_reports.reports.sql_common import (
    HASH_JOINS,
    ORDERED_PASS,
    PASS_JIT,
    PASS_WORK_MEM,
    SCOPE_STAGES,
    WINDOW_START,
    report_sql,
    rounded_days,
    rounded_rate,
)
from dyno_reports.storage.tables import win_loss_fact


def totals_and_rates(key: str = "") -> str:
    """The statements' last steps: the counted deals grouped per pipeline and owner (per `key` first, e.g. the
    window), and the rates and days rounded once."""
    first = f"{key},\n           " if key else ""
    selected = f"{key},\n       " if key else ""
    ordered = f"{key}, " if key else ""
    return f"""grouped AS (
    SELECT {first}pipeline_id,
           owner_principal_id AS principal_id,
           count(*) FILTER (WHERE kind = 'won') AS won_count,
           count(*) FILTER (WHERE kind = 'lost') AS lost_count,
           COALESCE(sum(amount) FILTER (WHERE kind = 'won'), 0) AS won_amount,
           COALESCE(sum(amount) FILTER (WHERE kind = 'lost'), 0) AS lost_amount,
           sum(cycle_seconds) FILTER (WHERE kind = 'won') AS won_cycle_seconds
    FROM counted
    GROUP BY {ordered}pipeline_id, owner_principal_id
)
SELECT {selected}pipeline_id,
       principal_id,
       won_count,
       lost_count,
       won_amount,
       lost_amount,
       {rounded_rate("won_count", "won_count + lost_count")} AS win_rate,
       {rounded_rate("won_amount", "won_amount + lost_amount")} AS win_rate_by_value,
       {rounded_days("won_cycle_seconds", "won_count")} AS avg_cycle_days
FROM grouped
ORDER BY {ordered}pipeline_id, principal_id
"""


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
{totals_and_rates()}""",
)

# Every window of a backfill from one pass (reports/multi_period.py). A deal with a closing event in window w has
# its state at E_w among its rows in w (its last one there). The pass keeps the closing events in windows and the
# states at a window's end (a deal's last row in each window it has rows in), a fraction of the history; over
# those, in the pass's order (no sort), a closing event is the deal's last in its window when the next kept row is
# not one, and it counts when it is itself the state at the window's end and live, or when that next row (then the
# state at the same window's end) is live and of its kind. The stage and deal lookups run on those closing events
# only.
# docs/reports/win_loss_design_details.md#multi-period-runs
# The selected won and lost stages as one array, computed once (an InitPlan) and searched per row.
CLOSING_ROW = "r.is_entry AND r.stage_id = ANY (ARRAY(SELECT stage_id FROM closing_stages))"
MULTI_PERIOD_SQL = (
    "WITH"
    + ",".join((SCOPE_STAGES, MULTI_PERIOD_HISTORY))
    + f""",
closing_stages AS (
    SELECT st.stage_id
    FROM scope_stages st
    WHERE st.kind IN ('won', 'lost')
),
kept_rows AS (
    SELECT r.deal_id, r.valid_from, r.stage_id, r.owner_principal_id, r.amount, r.is_deleted, r.window_index,
           {CLOSING_ROW} AS is_closing,
           {STATE_AT_WINDOW_END} AS is_state_at_window_end
    FROM marked_rows r
    WHERE r.window_index IS NOT NULL
      -- every state at a window's end, not only those after a closing event there: which ones those are would
      -- take the start of each row's stint, one more window node over the whole history (18 % of the pass)
      AND (({CLOSING_ROW}) OR {STATE_AT_WINDOW_END})
),
followed_rows AS (
    SELECT k.*,
           lead(k.is_closing) OVER deal_order AS next_is_closing,
           lead(k.is_deleted) OVER deal_order AS next_is_deleted,
           lead(k.stage_id) OVER deal_order AS next_stage_id
    FROM kept_rows k
    WINDOW deal_order AS (PARTITION BY k.deal_id ORDER BY k.valid_from)
),
last_closings AS (
    -- each deal's last closing event in a window, when the deal is live at the window's end
    SELECT f.deal_id, f.window_index, f.valid_from AS closed_at, f.stage_id, f.owner_principal_id, f.amount,
           CASE WHEN f.is_state_at_window_end THEN f.stage_id ELSE f.next_stage_id END AS stage_at_window_end
    FROM followed_rows f
    WHERE f.is_closing
      AND CASE WHEN f.is_state_at_window_end THEN NOT f.is_deleted
               ELSE NOT f.next_is_closing AND NOT f.next_is_deleted END
),
counted AS (
    SELECT c.window_index, st.pipeline_id, c.owner_principal_id, st.kind, c.amount,
           extract(epoch FROM c.closed_at - d.created_at) AS cycle_seconds
    FROM last_closings c
    JOIN scope_stages st ON st.stage_id = c.stage_id
    JOIN crm.stage now_stage ON now_stage.tenant_id = :tenant_id AND now_stage.stage_id = c.stage_at_window_end
    JOIN crm.deal d ON d.tenant_id = :tenant_id AND d.deal_id = c.deal_id
    WHERE now_stage.kind = st.kind
),
{totals_and_rates("window_index")}"""
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
    multi_period_sql=MULTI_PERIOD_SQL,
    multi_period_settings=PASS_WORK_MEM + PASS_JIT + HASH_JOINS,
    # bump when a change can change the results (test_report_versions)
    report_version=1,
    # JIT off: its compile cost more CPU than it saved (docs/reports/win_loss_design_details.md#jit)
    jit=False,
    planner_settings=ORDERED_PASS,
)
