"""stage_conversion: per open stage, the deals that entered it in W and how many of them moved on.

The cohort of a stage s is the population deals with an entry into s in W, each
with t0 = its first such entry. A cohort deal advanced when it has a later entry
(before E) into a won stage, or an open stage of greater position, of s's own
pipeline. See docs/reports/stage_conversion_design_details.md.
"""

from dyno_reports.reports.base import ReportDefinition
from dyno_reports.reports.multi_period import MULTI_PERIOD_HISTORY, STATE_AT_WINDOW_END, WINDOWS
from dyno_reports.reports.sql_common import (
    ORDERED_PASS,
    PASS_JIT,
    SCOPE_STAGES,
    WINDOW_START,
    report_sql,
    rounded_days,
    rounded_rate,
)
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

# Every window of a backfill from one pass (reports/multi_period.py). What a window w needs of a deal is among the
# deal's rows in w: its entries in w (t0, and every later entry before E_w that can advance it) and its state at
# E_w, the last of them. One group per deal, in the pass's order, collects its entries in windows (in time order)
# and the windows whose end it is live at; a window's entries are consecutive places of those arrays (a window
# is one stretch of time). Unnesting the places, array functions and operators against each open stage's
# advancing stages then give every t0 and its first advance: no join on the pass's rows and no subquery run per
# deal. docs/reports/stage_conversion_design_details.md#multi-period-runs
LIVE_AT_WINDOW_END = f"NOT r.is_deleted AND {STATE_AT_WINDOW_END}"
# Array slices `[a:b]` keep a word character before the colon: `]:name` would be a bound parameter to text().
MULTI_PERIOD_SQL = (
    "WITH"
    + ",".join((SCOPE_STAGES, WINDOWS, MULTI_PERIOD_HISTORY))
    + f""",
stage_lookup AS (
    -- the open stages in scope, and row k of `advancing_rows` the stages an entry into which advances the k-th
    -- (a won stage, or an open stage of greater position, of its pipeline), padded with NULL (which matches
    -- nothing) to one width. Looked up by position in the rows of the pass, never joined to them: a join could
    -- put the pass on the inner side of a nested loop, run once per stage
    SELECT array_agg(o.stage_id) AS open_stages,
           array_agg(array_cat(o.advancing, array_fill(CAST(NULL AS uuid), ARRAY[o.width - cardinality(o.advancing)])))
               AS advancing_rows
    FROM (SELECT sc.stage_id, COALESCE(adv.stage_ids, '{{}}') AS advancing,
                 COALESCE(max(cardinality(adv.stage_ids)) OVER (), 0) + 1 AS width
          FROM scope_stages sc
          CROSS JOIN LATERAL (
              SELECT array_agg(ns.stage_id) AS stage_ids
              FROM scope_stages ns
              WHERE ns.pipeline_id = sc.pipeline_id
                AND (ns.kind = 'won' OR (ns.kind = 'open' AND ns.position > sc.position))
          ) adv
          WHERE sc.kind = 'open') o
),
deal_summaries AS (
    -- one group per deal, in the pass's order (marked_rows states it): its entries in windows, in time order, and
    -- the windows whose end it is live at, negated where its stage at that end is lost (one array for both)
    SELECT array_agg(r.window_index) FILTER (WHERE r.is_entry) AS entry_windows,
           array_agg(r.stage_id) FILTER (WHERE r.is_entry) AS entry_stages,
           array_agg(r.valid_from) FILTER (WHERE r.is_entry) AS entry_times,
           array_agg(CASE WHEN r.stage_id IN (
               SELECT ls.stage_id
               FROM crm.stage ls
               WHERE ls.tenant_id = :tenant_id AND ls.kind = 'lost'
           ) THEN -r.window_index ELSE r.window_index END) FILTER (WHERE {LIVE_AT_WINDOW_END}) AS end_windows
    FROM marked_rows r
    WHERE r.window_index IS NOT NULL  -- a row outside every window is none of these
    GROUP BY r.deal_id
),
window_entries AS (
    SELECT unnest(d.entry_windows) AS window_index, unnest(d.entry_stages) AS stage_id,
           generate_series(1, cardinality(d.entry_windows)) AS place,
           d.entry_windows, d.entry_stages, d.entry_times, d.end_windows
    FROM deal_summaries d
),
cohort_entries AS (
    -- t0: an entry into an open stage in scope, of a deal live at the window's end, with no entry into that
    -- stage before it in the window (the window's entries are consecutive places: it is one stretch of time).
    -- Consecutive entries are of different stages, so only an entry with two or more before it in its window
    -- needs the search (most have fewer: the entry two places back is in another window, or none)
    SELECT e.window_index, e.stage_id, e.place, e.entry_windows, e.entry_stages, e.entry_times,
           -e.window_index = ANY (e.end_windows) AS lost_at_end,
           (SELECT l.advancing_rows FROM stage_lookup l)[e.open_stage:e.open_stage] AS advancing_stages
    FROM (SELECT w.*, array_position((SELECT l.open_stages FROM stage_lookup l), w.stage_id) AS open_stage
          FROM window_entries w) e
    WHERE e.open_stage IS NOT NULL
      AND (e.window_index = ANY (e.end_windows) OR -e.window_index = ANY (e.end_windows))
      AND (e.entry_windows[e.place - 2] IS DISTINCT FROM e.window_index
           OR array_position(e.entry_stages, e.stage_id, width_bucket(e.window_index - 1, e.entry_windows) + 1)
           = e.place)
    -- a fence: not merged into the query below, so its expressions are evaluated once per t0, not once per use
    OFFSET 0  -- noqa: AM09
),
cohort_outcomes AS (
    -- per t0, the place of its advance: the first later entry in the window into an advancing stage. Mostly
    -- none (no later entry in the window) or the next entry; else the rest of the window is looked at, and
    -- only for a deal that went back within the window and then advanced are the places between searched (a
    -- subquery run for that t0 alone)
    SELECT c.window_index, c.stage_id, c.lost_at_end,
           extract(epoch FROM c.entry_times[c.advance_place] - c.entry_times[c.place]) AS advance_seconds
    FROM (SELECT t.window_index, t.stage_id, t.lost_at_end, t.entry_times, t.place,
                 CASE WHEN COALESCE(t.entry_windows[t.place + 1], 0) <> t.window_index THEN NULL
                      WHEN t.entry_stages[t.place + 1] = ANY (t.advancing_stages) THEN t.place + 1
                      WHEN NOT (t.entry_stages[t.place + 2:t.last_place] && t.advancing_stages) THEN NULL
                      ELSE (SELECT min(later.place)
                            FROM generate_series(t.place + 2, t.last_place) later(place)
                            WHERE t.entry_stages[later.place] = ANY (t.advancing_stages))
                 END AS advance_place
          -- the window's last place by a binary search, evaluated only where a CASE branch reads it
          FROM (SELECT c.*, width_bucket(c.window_index, c.entry_windows) AS last_place FROM cohort_entries c) t) c
    -- a fence too: per_stage reads advance_seconds twice (count, sum), which would evaluate the CASE twice
    OFFSET 0  -- noqa: AM09
),
per_stage AS (
    SELECT window_index, stage_id, count(*) AS entered_count, count(advance_seconds) AS advanced_count,
           count(*) FILTER (WHERE lost_at_end) AS lost_count, sum(advance_seconds) AS advance_seconds
    FROM cohort_outcomes
    GROUP BY window_index, stage_id
)
SELECT w.window_index,
       st.pipeline_id,
       st.stage_id,
       COALESCE(ps.entered_count, 0) AS entered_count,
       COALESCE(ps.advanced_count, 0) AS advanced_count,
       COALESCE(ps.lost_count, 0) AS lost_count,
       {rounded_rate("ps.advanced_count", "ps.entered_count")} AS conversion_rate,
       {rounded_days("ps.advance_seconds", "ps.advanced_count")} AS avg_days_to_advance
FROM windows w
CROSS JOIN scope_stages st
LEFT JOIN per_stage ps ON ps.window_index = w.window_index AND ps.stage_id = st.stage_id
WHERE st.kind = 'open'
ORDER BY w.window_index, st.pipeline_id, st.position
"""
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
    multi_period_sql=MULTI_PERIOD_SQL,
    # bump when a change can change the results (test_report_versions)
    report_version=1,
    # JIT off: its compile cost more CPU than it saved (docs/reports/stage_conversion_design_details.md#jit)
    jit=False,
    # but its multi-period pass with JIT: one compile for a whole backfill's rows (sql_common.PASS_JIT)
    multi_period_settings=PASS_JIT,
    planner_settings=ORDERED_PASS,
)
