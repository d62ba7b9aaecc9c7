"""SQL building blocks the reports compose: one ordered pass over the tenant's history as of E.

A report's statement is `report_sql(<its own CTEs and SELECT>)`. `deal_rows` is
referenced once, so PostgreSQL inlines it: its window functions stack on the primary
key order of crm.deal_history, (tenant_id, deal_id, valid_from), and the history is
read once in that order, never stored in a temp file nor sorted a second time
(`scope_stages`, a few rows, may be referenced more often). A report filters the
rows it needs (the state at E, the entries in W, `STINT_ENTRIES`) before any
second window, join or group. The blocks carry the tenant predicate and ignore every history row
dated at or after E, so a report built on them inherits isolation and the
"as of E" rule. Bound parameters: `tenant_id`, `period_start` (NULL = no lower
bound), `period_end`, `pipeline_ids` (NULL = every pipeline of the tenant).
"""

# The planner setting of a report whose one pass must follow the primary key (the executor sets it for the
# run's transaction only). For a tenant that is a minority of crm.deal_history, whose heap is not in key order,
# the planner prefers a parallel seq scan and an external sort by (deal_id, valid_from) to walking the key:
# 28-47 MB of temp files and slower at 100k deals; at 1M deals it walks the key anyway. Sorting disabled, it
# walks the key whenever it can (a sort with no alternative, e.g. of a few result rows, still runs). Measured
# per report in its design details, "Plan".
ORDERED_PASS = (("enable_sort", "off"),)

# The same aim for a report whose steps after the pass should still sort freely: no sequential or bitmap scan
# of the history, so it is read by the primary key (the scan floor's own setting), and a sort of the result
# rows stays possible. weighted_pipeline: with sorts off, at 1M deals the planner materialises its population
# and sorts it incrementally into 70 MB of temp files; with this, a hash join and a hash aggregate, 0 MB, and
# 1.16 / 0.98 x the scan floor at 100k / 1M (design details, "Planner settings").
KEY_ORDER_SCAN = (("enable_seqscan", "off"), ("enable_bitmapscan", "off"))

# JIT without its optimisation and inlining passes, for a report that keeps `jit=True`: the statement's
# expressions and tuple deforming are compiled (the pass deforms every history row), for a compile of
# milliseconds, not the 1.3-2.9 s of CPU the optimising passes took at 1M deals. pipeline_overview: 2-3%
# faster at 100k and at 1M deals than with JIT off; deal_velocity and pipeline_movement were slower with it
# (design details, "JIT").
UNOPTIMISED_JIT = (("jit_optimize_above_cost", "-1"), ("jit_inline_above_cost", "-1"))

# The window's lower bound S as SQL; `-infinity` when the window has no start.
# "At a time in W" is then `ts >= WINDOW_START`, since every history row is before E already.
WINDOW_START = "COALESCE(CAST(:period_start AS timestamptz), '-infinity')"

# Each history row before E with the flags of its place in the deal's history:
# `is_entry` (the first row of a stint: the stage differs from the previous row's),
# `previous_stage_id` (the stage of the stint an entry ends), `next_valid_from` and
# `next_stage_id` (the deal's next row before E, NULL on the last), `is_state_at_end`
# (the deal's last row before E: its state at E), and from that last row `stage_at_end`
# (the stage at E of a live deal, NULL when the deal is deleted as of E) and `is_live`
# (the deal is in the population). One window: lag and lead ignore the frame, which spans
# the deal. Each lag, lead or last_value fetches a row per history row, so the columns share
# fetches: `is_state_at_end` is the lead of `next_stage_id` (stage_id is NOT NULL) and
# `is_live` the last_value of `stage_at_end` (PostgreSQL evaluates identical window calls
# once). A column no report reads is not computed (PostgreSQL drops unused window outputs).
DEAL_ROWS = """
deal_rows AS (
    SELECT h.deal_id, h.valid_from, h.stage_id, h.owner_principal_id, h.amount,
           h.expected_close_date, h.is_deleted,
           lag(h.stage_id) OVER whole_deal AS previous_stage_id,
           h.stage_id IS DISTINCT FROM lag(h.stage_id) OVER whole_deal AS is_entry,
           lead(h.stage_id) OVER whole_deal IS NULL AS is_state_at_end,
           lead(h.valid_from) OVER whole_deal AS next_valid_from,
           lead(h.stage_id) OVER whole_deal AS next_stage_id,
           last_value(CASE WHEN NOT h.is_deleted THEN h.stage_id END) OVER whole_deal IS NOT NULL AS is_live,
           last_value(CASE WHEN NOT h.is_deleted THEN h.stage_id END) OVER whole_deal AS stage_at_end
    FROM crm.deal_history h
    WHERE h.tenant_id = :tenant_id
      AND h.valid_from < CAST(:period_end AS timestamptz)
    WINDOW whole_deal AS (PARTITION BY h.deal_id ORDER BY h.valid_from
                          ROWS BETWEEN UNBOUNDED PRECEDING AND UNBOUNDED FOLLOWING)
)"""

# The entries of live deals a question about stints ended in W can need (a condition on
# `deal_rows r`): the entries in W, and the entries that can have begun a stint such an entry
# ends or the state at E is in: an entry whose stint goes on past its own row
# (`next_stage_id = stage_id`; a deal's last entry is one, unless it is the state at E itself)
# or ends at a row in W (`next_valid_from` in W). So the entry before an entry in W, and a
# deal's last entry, are always among them, and between an entry in W and the entry before it
# no other row is. A report computes the start of a stint by a second window over these rows
# (and the states at E it needs), in the same order: at 100k deals they are a fifth to a third
# of the history, and a window costs PostgreSQL 15 about 0.3 µs a row (design details of
# pipeline_overview and deal_velocity, "Plan").
STINT_ENTRIES = f"""r.is_live AND r.is_entry
      AND (r.valid_from >= {WINDOW_START}
           OR r.next_stage_id = r.stage_id
           OR r.next_valid_from >= {WINDOW_START})"""

SCOPE_STAGES = """
scope_stages AS (
    SELECT s.stage_id, s.pipeline_id, s.position, s.kind, s.probability
    FROM crm.stage s
    WHERE s.tenant_id = :tenant_id
      AND (CAST(:pipeline_ids AS uuid[]) IS NULL
           OR s.pipeline_id = ANY (CAST(:pipeline_ids AS uuid[])))
)"""


def rounded_days(seconds: str, count: str | None = None) -> str:
    """SQL: `seconds` in days, or the mean of `count` rows' total `seconds` (NULL over none),
    rounded once to 2 decimals, half away from zero.

    One numeric division of the exact total by count * 86400, with the dividend at
    30 decimals first: PostgreSQL keeps the dividend's scale in the quotient, so
    the quotient is within 1e-30 of the exact mean and round(, 2) goes up on a half
    only when the exact mean is one (an avg() followed by / 86400 rounds twice).
    """
    divisor = "86400" if count is None else f"(NULLIF({count}, 0) * 86400)"
    return f"round(round({seconds}, 30) / {divisor}, 2)"


def rounded_rate(numerator: str, denominator: str) -> str:
    """SQL: numerator / denominator rounded once to 4 decimals, NULL when the denominator is 0.

    The dividend is taken to 30 decimals first, so the quotient keeps 30 decimals
    (PostgreSQL keeps the dividend's scale) and round(, 4) sees the exact ratio
    even for huge amount sums (as `rounded_days` does for days).
    """
    return f"round(round(CAST({numerator} AS numeric), 30) / NULLIF({denominator}, 0), 4)"


def report_sql(own_ctes_and_select: str) -> str:
    """A report's whole statement: `deal_rows` and `scope_stages`, then its own CTEs (starting
    with a comma) and its SELECT.

    `report_sql("")` is the prefix every report's statement starts with.
    """
    return "WITH" + ",".join((DEAL_ROWS, SCOPE_STAGES)) + own_ctes_and_select
