"""Several windows of one question read in one pass: how windows are grouped, and the SQL blocks and bound
parameters a report's multi-period statement uses.

A report's `multi_period_sql` answers P windows of one tenant, one set of options and one K from one ordered
pass over the tenant's history before the last window's end, and returns `window_index` (1..P, the windows'
order as given) before its fact columns. Its windows are *disjoint* (a start at or after every earlier end):
each history row then lies in at most one window, found by a lookup, never a join that copies rows. Windows
that overlap are split into disjoint passes (`disjoint_passes`), so any set of windows is answered.

Bound parameters (`window_params`), besides the report's own (`tenant_id`, `known_at`, `pipeline_ids`, its
options): `window_ends` (timestamptz[], by window_index), `last_end`, `end_marks` (the distinct ends, sorted:
a row is the state at every end in `[first_mark, last_mark]`, its mark range), `window_end_marks` (each
window's end as its index in `end_marks`), `mark_count`, `segment_bounds` (every start and end, sorted) and
`segment_windows` (int[]: per segment of the time axis, `width_bucket(t, segment_bounds) + 1`, the window
containing it or 0; `window_of` turns the 0 into NULL).
"""

from collections.abc import Sequence
from datetime import datetime
from typing import Any

Window = tuple[datetime | None, datetime]


def window_of(instant: str) -> str:
    """SQL: the index of the window containing `instant` (an SQL expression), NULL when none contains it or it
    is NULL. `segment_windows` holds 0, not NULL, for a segment outside every window: an int array without a
    NULL is subscripted by offset, one with NULLs by walking its null bitmap (measured: the pass about 5% of the
    scan floor faster)."""
    segment = f"width_bucket({instant}, CAST(:segment_bounds AS timestamptz[])) + 1"
    return f"NULLIF((CAST(:segment_windows AS int[]))[{segment}], 0)"


# The history before the last end as known at K, in primary-key order, with what does not depend on E:
# whether a row is an entry, the previous row's stage, the next row's valid_from and stage, the start of the
# row's stint and of the stint before the row (running maxima over the same order: no sort). `first_mark` and
# `last_mark` say at which ends the row is the deal's state, `window_index` which window the row lies in.
# Columns nobody reads cost nothing: PostgreSQL drops their window calls. No report's pass reads the stint starts
# any more (their window node over every history row costs about half the scan floor: docs/performance.md, fourth
# pass); they stay because `marked_rows` without a window function of its own lets PostgreSQL push the reports'
# filters into it, which measured 2-4 % slower.
MULTI_PERIOD_HISTORY = f"""
history AS (
    SELECT h.deal_id, h.valid_from, h.stage_id, h.owner_principal_id, h.amount, h.expected_close_date,
           h.is_deleted,
           h.stage_id IS DISTINCT FROM lag(h.stage_id) OVER deal_order AS is_entry,
           lag(h.stage_id) OVER deal_order AS previous_stage_id,
           lead(h.valid_from) OVER deal_order AS next_from,
           lead(h.stage_id) OVER deal_order AS next_stage_id
    FROM crm.deal_history h
    WHERE h.tenant_id = :tenant_id
      AND h.valid_from < CAST(:last_end AS timestamptz)
      AND h.recorded_at <= CAST(:known_at AS timestamptz)
    WINDOW deal_order AS (PARTITION BY h.deal_id ORDER BY h.valid_from)
),
marked_rows AS (
    SELECT r.*,
           max(r.valid_from) FILTER (WHERE r.is_entry)
               OVER (PARTITION BY r.deal_id ORDER BY r.valid_from ROWS UNBOUNDED PRECEDING) AS stint_start,
           max(r.valid_from) FILTER (WHERE r.is_entry)
               OVER (PARTITION BY r.deal_id ORDER BY r.valid_from
                     ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING) AS previous_stint_start,
           width_bucket(r.valid_from, CAST(:end_marks AS timestamptz[])) + 1 AS first_mark,
           COALESCE(width_bucket(r.next_from, CAST(:end_marks AS timestamptz[])), :mark_count) AS last_mark,
           {window_of("r.valid_from")} AS window_index
    FROM history r
    -- the pass's own order, which it already has (no sort): it tells the planner, so a report's group per deal
    -- or window over these rows needs no sort either
    ORDER BY r.deal_id, r.valid_from
)"""

# The row is the deal's state at the end of the window it lies in (its next row is at or after that end).
STATE_AT_WINDOW_END = "(r.next_from IS NULL OR r.next_from >= (CAST(:window_ends AS timestamptz[]))[r.window_index])"

# The windows, by window_index, with their end and its mark.
WINDOWS = """
windows AS (
    SELECT w.window_index, w.window_end, w.end_mark
    FROM unnest(CAST(:window_ends AS timestamptz[]), CAST(:window_end_marks AS int[]))
         WITH ORDINALITY AS w(window_end, end_mark, window_index)
)"""


def disjoint_passes(windows: Sequence[Window]) -> list[list[int]]:
    """Indexes of `windows` in groups of disjoint windows (each one pass), fewest greedily: by start (no start
    first), each window joins the first group whose last end is at or before its start."""
    order = sorted(range(len(windows)), key=lambda i: (windows[i][0] is not None, windows[i][0] or windows[i][1]))
    groups: list[list[int]] = []
    for index in order:
        start = windows[index][0]
        group = next((g for g in groups if start is not None and windows[g[-1]][1] <= start), None)
        if group is None:
            groups.append([index])
        else:
            group.append(index)
    return [sorted(group, key=lambda i: windows[i][1]) for group in groups]


def window_params(windows: Sequence[Window]) -> dict[str, Any]:
    """The bound parameters of a multi-period statement for disjoint `windows` (window_index = position + 1)."""
    ends = [end for _, end in windows]
    marks = sorted(set(ends))
    bounds = sorted({start for start, _ in windows if start is not None} | set(ends))
    segment_windows = [0] * (len(bounds) + 1)
    for index, (start, end) in enumerate(windows, start=1):
        first = 0 if start is None else bounds.index(start) + 1
        for segment in range(first, bounds.index(end) + 1):
            if segment_windows[segment]:
                raise ValueError("a multi-period pass takes disjoint windows: split them with disjoint_passes")
            segment_windows[segment] = index
    return {
        "window_ends": ends,
        "last_end": max(ends),
        "end_marks": marks,
        "window_end_marks": [marks.index(end) + 1 for end in ends],
        "mark_count": len(marks),
        "segment_bounds": bounds,
        "segment_windows": segment_windows,
    }
