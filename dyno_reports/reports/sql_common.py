"""SQL building blocks the reports compose: one ordered pass over the tenant's history as of E.

A report's statement is `report_sql(<the deal_rows columns it reads>, <its own CTEs and
SELECT>)`. `deal_rows` is referenced once, so PostgreSQL inlines it: its window functions
stack on the primary key order of crm.deal_history, (tenant_id, deal_id, valid_from), and the history is
read once in that order, never stored in a temp file nor sorted a second time
(`scope_stages`, a few rows, may be referenced more often). A report filters the
rows it needs (the state at E, the entries in W, `STINT_ENTRIES`) before any
second window, join or group. The blocks carry the tenant predicate and ignore every history row
dated at or after E and every row recorded after K (KNOWN_ROWS), so a report built on them inherits
isolation and the "as of E, as known at K" rule. Bound parameters: `tenant_id`, `period_start` (NULL = no
lower bound), `period_end`, `known_at`, `pipeline_ids` (NULL = every pipeline of the tenant).
"""

from collections.abc import Sequence

# The planner setting of a report whose one pass must follow the primary key (the executor sets it for the
# run's transaction only; a sort with no alternative, e.g. of a few result rows, still runs).
# Reason: else, for a tenant that is a minority of the history, the planner seq-scans it and sorts it in temp files.
# Figures per report: docs/reports/<report>_design_details.md#planner-settings.
ORDERED_PASS = (("enable_sort", "off"),)

# The same aim for a report whose steps after the pass should still sort freely: no sequential or bitmap scan
# of the history, so it is read by the primary key (the scan floor's own setting), and a sort of the result
# rows stays possible.
# Reason: with sorts off, weighted_pipeline sorts its population into temp files at 1M deals; with this it hashes it.
# Figures: docs/reports/weighted_pipeline_design_details.md#planner-settings.
KEY_ORDER_SCAN = (("enable_seqscan", "off"), ("enable_bitmapscan", "off"))

# The memory of a multi-period pass's sorts and hashes: its groups are per (mark range, ...) or per closing event
# of a whole backfill, which spill to temp files at 1M deals under the default 4 MB (weighted_pipeline wrote 213 MB
# for 26 weeks, win_loss 195 MB for 12 months); a backfill is one statement where a fleet runs many small ones.
# Figures: docs/performance.md#backfills-one-pass-for-many-periods.
PASS_WORK_MEM = (("work_mem", "64MB"),)

# JIT without its optimisation and inlining passes, for a report that keeps `jit=True`: the statement's
# expressions and tuple deforming are compiled (the pass deforms every history row), neither inlined nor optimised.
# Reason: the optimising passes cost far more than they save; pipeline_overview is faster with this than with JIT
# off, deal_velocity and pipeline_movement were slower. Figures: docs/reports/pipeline_overview_design_details.md#jit.
UNOPTIMISED_JIT = (("jit_optimize_above_cost", "-1"), ("jit_inline_above_cost", "-1"))

# JIT, without its optimising passes, for the multi-period pass of a report whose single statement runs without it:
# a pass evaluates its expressions over every history row of a whole backfill, so the compile pays for itself.
# Reason: at 100k deals, 12 months, the pass is 2-7 % faster with it (stage_conversion, deal_velocity,
# pipeline_movement, win_loss). Figures: docs/performance.md#backfills-one-pass-for-many-periods.
PASS_JIT = (("jit", "on"), *UNOPTIMISED_JIT)

# No nested loops: a pass that joins its closing events of a whole backfill to the deals and stages, whose
# number the planner underestimates by a factor of 40, then hashes them instead of looping (win_loss: 13-19 %).
# Figures: docs/performance.md#backfills-one-pass-for-many-periods.
HASH_JOINS = (("enable_nestloop", "off"),)

# The window's lower bound S as SQL; `-infinity` when the window has no start.
# "At a time in W" is then `ts >= WINDOW_START`, since every history row is before E already.
WINDOW_START = "COALESCE(CAST(:period_start AS timestamptz), '-infinity')"

# `next_stage_mark` of a row whose next row is in W. Any uuid would do: should a stage have this id, a
# row whose next row is before S and in that stage looks like one whose next row is in W, so
# STINT_ENTRIES takes an entry it does not need; taking more entries than needed never changes which
# entry comes before an entry in W (test_deal_velocity.py has such a stage).
STAGE_MARK_IN_WINDOW = "CAST('00000000-0000-0000-0000-000000000000' AS uuid)"

# The columns `deal_rows` can give, by name: each history row before E, with the flags of its
# place in the deal's history: `is_entry` (the first row of a stint: the stage differs from the
# previous row's), `previous_stage_id` (the stage of the stint an entry ends), `next_stage_id`
# (the stage of the deal's next row before E, NULL on the last), `is_state_at_end` (the deal's
# last row before E: its state at E), `next_stage_mark` (the next row's stage when that row is
# before S, STAGE_MARK_IN_WINDOW when it is in W, NULL on the last row: whether the next row is
# in the same stage and whether it is in W, in one fetch), and from that last row `stage_at_end`
# (the stage at E of a live deal, NULL when the deal is deleted as of E) and `is_live` (the deal
# is in the population). One window: lag and lead ignore the frame, which spans the deal. Each
# lag, lead or last_value fetches a row per history row, so the columns share fetches:
# `is_state_at_end` is the lead of `next_stage_id` (stage_id is NOT NULL) and `is_live` the
# last_value of `stage_at_end` (PostgreSQL evaluates identical window calls once).
DEAL_ROW_COLUMNS = {
    "deal_id": "h.deal_id",
    "valid_from": "h.valid_from",
    "stage_id": "h.stage_id",
    "owner_principal_id": "h.owner_principal_id",
    "amount": "h.amount",
    "expected_close_date": "h.expected_close_date",
    "is_deleted": "h.is_deleted",
    "previous_stage_id": "lag(h.stage_id) OVER whole_deal",
    "is_entry": "h.stage_id IS DISTINCT FROM lag(h.stage_id) OVER whole_deal",
    "is_state_at_end": "lead(h.stage_id) OVER whole_deal IS NULL",
    "next_stage_id": "lead(h.stage_id) OVER whole_deal",
    "next_stage_mark": (
        f"lead(CASE WHEN h.valid_from >= {WINDOW_START} THEN {STAGE_MARK_IN_WINDOW} ELSE h.stage_id END)"
        " OVER whole_deal"
    ),
    "is_live": "last_value(CASE WHEN NOT h.is_deleted THEN h.stage_id END) OVER whole_deal IS NOT NULL",
    "stage_at_end": "last_value(CASE WHEN NOT h.is_deleted THEN h.stage_id END) OVER whole_deal",
}

# The history rows a run reads (`h`): the tenant's, dated before E (valid time) and recorded at or before K
# (transaction time, docs/definitions.md "As known at"). recorded_at is not in the primary key: it filters the
# rows the key order walks, after the index condition, and changes no plan (docs/performance.md).
KNOWN_ROWS = """
    FROM crm.deal_history h
    WHERE h.tenant_id = :tenant_id
      AND h.valid_from < CAST(:period_end AS timestamptz)
      AND h.recorded_at <= CAST(:known_at AS timestamptz)"""

# Where `deal_rows` reads from, whatever its columns: the tenant's history before E as known at K, one window
# per deal.
DEAL_ROWS_SOURCE = (
    KNOWN_ROWS
    + """
    WINDOW whole_deal AS (PARTITION BY h.deal_id ORDER BY h.valid_from
                          ROWS BETWEEN UNBOUNDED PRECEDING AND UNBOUNDED FOLLOWING)
)"""
)


def deal_rows(columns: Sequence[str]) -> str:
    """The `deal_rows` CTE with only `columns` (names of DEAL_ROW_COLUMNS). PostgreSQL drops the
    window calls of columns nobody reads, but still projects a NULL in their place on every
    history row, a cost measured in docs/performance.md ("deal_rows with only its columns", 2026-12-07)."""
    select_list = ",\n           ".join(f"{DEAL_ROW_COLUMNS[name]} AS {name}" for name in columns)
    return f"\ndeal_rows AS (\n    SELECT {select_list}{DEAL_ROWS_SOURCE}"


# The entries of live deals a question about stints ended in W can need (a condition on
# `deal_rows r`): the entries in W, and the entries that can have begun a stint such an entry
# ends: an entry whose stint goes on past its own row (its next row is in the same stage) or
# ends at a row in W (its next row is in W), both read from `next_stage_mark`. So the entry
# before an entry in W is always among them, and between an entry in W and the entry before it
# no other row is. A report computes the start of a stint by a second window over these rows,
# in the same order: a fraction of the history (docs/reports/deal_velocity_design_details.md#sql-approach).
STINT_ENTRIES = f"""r.is_live AND r.is_entry
      AND (r.valid_from >= {WINDOW_START}
           OR r.next_stage_mark IN (r.stage_id, {STAGE_MARK_IN_WINDOW}))"""

SCOPE_STAGES = """
scope_stages AS (
    SELECT s.stage_id, s.pipeline_id, s.position, s.kind, s.probability
    FROM crm.stage s
    WHERE s.tenant_id = :tenant_id
      AND (CAST(:pipeline_ids AS uuid[]) IS NULL
           OR s.pipeline_id = ANY (CAST(:pipeline_ids AS uuid[])))
)"""


def cents(amount: str) -> str:
    """SQL: `amount` (numeric(18,2)) in integer cents, a bigint (exact: at most 10^18 - 1 cents). Summed as
    bigints, amounts keep a far smaller aggregate state than numeric sums (an int128, not a numeric buffer), so a
    multi-period pass's hash tables of thousands of groups stay small and fast (pipeline_movement, 12 months at
    100k deals: 3.7 MB in memory with cents, over the 8 MB hash memory and 65 batches with numeric)."""
    return f"CAST({amount} * 100 AS bigint)"


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


def report_sql(deal_row_columns: Sequence[str], own_ctes_and_select: str) -> str:
    """A report's whole statement: `deal_rows` with the columns it reads, and `scope_stages`,
    then its own CTEs (starting with a comma) and its SELECT."""
    return "WITH" + ",".join((deal_rows(deal_row_columns), SCOPE_STAGES)) + own_ctes_and_select
