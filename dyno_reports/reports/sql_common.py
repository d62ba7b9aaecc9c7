"""SQL shared by every report: the tenant's history as of E, the population, stints and stages in scope.

Each report's SQL is `WITH <COMMON_CTES>, <its own CTEs> SELECT ...`. The CTEs
carry the tenant predicate and ignore every history row dated at or after E, so a
report that builds on them inherits isolation and the "as of E" rule. Bound
parameters: `tenant_id`, `period_start` (NULL = no lower bound), `period_end`,
`pipeline_ids` (NULL = every pipeline of the tenant).
"""

# One pass over the tenant's history in (deal_id, valid_from) order, which the
# primary key of crm.deal_history already provides: no sort, no extra index.
COMMON_CTES = """
history AS (
    SELECT h.deal_id, h.valid_from, h.stage_id, h.owner_principal_id, h.amount,
           h.expected_close_date, h.is_deleted,
           h.stage_id IS DISTINCT FROM lag(h.stage_id) OVER deal_rows AS is_entry,
           lead(h.valid_from) OVER deal_rows IS NULL AS is_state_at_end
    FROM crm.deal_history h
    WHERE h.tenant_id = :tenant_id
      AND h.valid_from < CAST(:period_end AS timestamptz)
    WINDOW deal_rows AS (PARTITION BY h.deal_id ORDER BY h.valid_from)
),
population AS (
    -- deals live at E, with their state at E
    SELECT deal_id, stage_id, owner_principal_id, amount, expected_close_date, valid_from
    FROM history
    WHERE is_state_at_end AND NOT is_deleted
),
stints AS (
    -- every stint of a population deal: its entry and its exit (the next entry, if any before E)
    SELECT e.deal_id, e.stage_id, e.valid_from AS entered_at, e.owner_principal_id, e.amount,
           lead(e.valid_from) OVER (PARTITION BY e.deal_id ORDER BY e.valid_from) AS exited_at
    FROM history e
    WHERE e.is_entry AND e.deal_id IN (SELECT deal_id FROM population)
),
scope_stages AS (
    SELECT s.stage_id, s.pipeline_id, s.position, s.kind, s.probability
    FROM crm.stage s
    WHERE s.tenant_id = :tenant_id
      AND (CAST(:pipeline_ids AS uuid[]) IS NULL
           OR s.pipeline_id = ANY (CAST(:pipeline_ids AS uuid[])))
)
"""

# The window's lower bound S as SQL; `-infinity` when the window has no start.
# "At a time in W" is then `ts >= WINDOW_START`, since every history row is before E already.
WINDOW_START = "COALESCE(CAST(:period_start AS timestamptz), '-infinity')"


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
    """A report's whole statement: the shared CTEs, then its own (starting with a comma) and SELECT."""
    return "WITH" + COMMON_CTES + own_ctes_and_select
