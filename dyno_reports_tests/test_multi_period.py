"""Multi-period passes (real PostgreSQL): every window of a pass gets the facts its single-period run gets, row for
row, and the reference's; each is its own run with the same header; window sets are split into disjoint passes.

Windows are drawn as the report's tests draw one (with and without a start, bounds on row times), then more:
adjacent to the last, overlapping it, or anywhere; P from 1 to 6.
"""

import uuid
from dataclasses import replace
from datetime import timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import select

from dyno_reports.engine import executor, multi_period, run_request
from dyno_reports.reports import registry
from dyno_reports.reports.multi_period import disjoint_passes, window_params
from dyno_reports.storage.tables import report_run
from dyno_reports_tests.reference import REFERENCES
from dyno_reports_tests.support.facts import facts_by_key, run
from dyno_reports_tests.support.history import DEAL_IDS, PIPELINE_IDS, T0, TenantData, load
from dyno_reports_tests.support.history import pipeline_selections as selections
from dyno_reports_tests.support.late_rows import known_ats, with_late_rows

MULTI_PERIOD_REPORTS = sorted(name for name, report in registry().items() if report.multi_period_sql is not None)
HEADER_COLUMNS = [c.name for c in report_run.columns if c.name not in ("run_id", "generated_at")]
D = timedelta(days=1)


@st.composite
def window_sets(draw: st.DrawFn, reference, data) -> list:
    """1..6 windows: the first as the report's tests draw one, each next adjacent to the last one, overlapping it,
    or drawn afresh."""
    chosen = [draw(reference.windows(data))]
    for _ in range(draw(st.integers(0, 5))):
        end = chosen[-1][1]
        how = draw(st.sampled_from(["adjacent", "overlapping", "fresh"]))
        if how == "fresh":
            chosen.append(draw(reference.windows(data)))
        elif how == "adjacent":
            chosen.append((end, end + draw(st.integers(1, 40)) * D))
        else:
            chosen.append((end - draw(st.integers(1, 20)) * D, end + draw(st.integers(0, 20)) * D + D))
    return chosen


def requests_for(engine, report_type, data, chosen, asked, known_at):
    with engine.connect() as conn:
        return [
            run_request.build_request(
                conn,
                report_type,
                data.tenant_id,
                period_start=s,
                period_end=e,
                options=asked,
                as_known_at=known_at,
                so_far=True,
            )
            for s, e in chosen
        ]


@pytest.fixture(scope="module")
def edges(engine) -> TenantData:
    """Rows on the edges a pass must get right: a row exactly at a window's end (the next window's start), a
    deal deleted in one window and restored in the next, one whose state stays a row from before every window,
    an amount change inside a stint, closings, a reopening, one that goes back before it advances twice in one
    window (its first advance is not its next entry, and not its last) and one that enters a stage twice in one
    window (its second entry is no t0)."""
    data = TenantData()
    lead, qualified, won, lost = data.add_pipeline(PIPELINE_IDS[0], ["open", "open", "won", "lost"])
    week = 7 * D
    data.add_deal(DEAL_IDS[0], [(T0, lead, 10), (T0 + week, qualified, 10), (T0 + 2 * week, won, 10)])
    data.add_deal(
        DEAL_IDS[1],
        [
            (T0 - week, lead, 20),
            (T0 + D, lead, 20, None, None, True),
            (T0 + week + D, qualified, 25),
            (T0 + 3 * week, lost, 25),
        ],
    )
    data.add_deal(DEAL_IDS[2], [(T0 - 30 * D, qualified, 30)])
    data.add_deal(
        DEAL_IDS[3],
        [
            (T0 + 2 * D, lead, 40),
            (T0 + 3 * D, lead, 45),
            (T0 + 2 * week, qualified, 45),
            (T0 + 2 * week + D, won, 45),
            (T0 + 3 * week + 2 * D, qualified, 50),
        ],
    )
    data.add_deal(
        DEAL_IDS[4],
        [
            (T0 + week + D, lead, 60),
            (T0 + week + 2 * D, lost, 60),
            (T0 + week + 3 * D, qualified, 60),
            (T0 + week + 5 * D, won, 60),
        ],
    )
    data.add_deal(
        DEAL_IDS[5],
        [(T0 + 2 * week + n * D, stage, 70) for n, stage in enumerate([lead, qualified, lead, won], start=1)],
    )
    load(engine, data)
    return data


# A report that requires a start refuses a window without one before any pass (run_request refuses it).
EDGE_CASES = [
    (report_type, first_start)
    for report_type in MULTI_PERIOD_REPORTS
    for first_start in ("with", "without")
    if first_start == "with" or not registry()[report_type].requires_start
]


@pytest.mark.parametrize(("report_type", "first_start"), EDGE_CASES)
def test_adjacent_weeks_on_the_edges_are_their_single_period_runs(engine, edges, report_type, first_start):
    week = 7 * D
    chosen = [(T0 + n * week, T0 + (n + 1) * week) for n in range(4)]
    if first_start == "without":
        chosen[0] = (None, chosen[0][1])
    requests = requests_for(engine, report_type, edges, chosen, None, T0 + 10 * week)
    assert multi_period.shared_passes(requests) == [[0, 1, 2, 3]]
    with engine.connect() as conn:
        computed = multi_period.computed_passes(engine, conn, requests, [uuid.uuid4() for _ in requests])
    for (start, end), request, index in zip(chosen, requests, range(4), strict=True):
        result = executor.execute(engine, request, computed=computed[index])
        alone = run(engine, report_type, edges.tenant_id, start, end, as_known_at=T0 + 10 * week, so_far=True)
        assert facts_by_key(engine, report_type, result.run_id) == facts_by_key(engine, report_type, alone.run_id)


@pytest.mark.parametrize("report_type", MULTI_PERIOD_REPORTS)
@given(choices=st.data())
def test_each_window_of_a_pass_is_its_single_period_run_row_for_row(engine, report_type, choices):
    reference = REFERENCES[report_type]
    data = choices.draw(with_late_rows(choices.draw(reference.histories)))
    known_at = choices.draw(known_ats(data).filter(lambda k: k is not None))
    chosen = choices.draw(window_sets(reference, data))
    pipeline_ids = choices.draw(selections(data))
    options = choices.draw(st.fixed_dictionaries({}, optional=dict(reference.options)))
    asked = (options | ({} if pipeline_ids is None else {"pipeline_ids": [str(p) for p in pipeline_ids]})) or None
    load(engine, data)
    requests = requests_for(engine, report_type, data, chosen, asked, known_at)
    run_ids = [uuid.uuid4() for _ in requests]
    with engine.connect() as conn:
        computed = multi_period.computed_passes(engine, conn, requests, run_ids)
        assert sorted(computed) == sorted(i for group in multi_period.shared_passes(requests) for i in group)
        passed = [
            executor.execute(engine, r, run_id=i, connection=conn, computed=computed.get(n))
            for n, (r, i) in enumerate(zip(requests, run_ids, strict=True))
        ]
    for (start, end), result in zip(chosen, passed, strict=True):
        alone = run(engine, report_type, data.tenant_id, start, end, asked, as_known_at=known_at, so_far=True)
        assert result.succeeded and alone.succeeded, (result.error_message, alone.error_message)
        facts = facts_by_key(engine, report_type, result.run_id)
        assert facts == facts_by_key(engine, report_type, alone.run_id)
        assert facts == reference.expected(data, start, end, pipeline_ids, known_at=known_at, **options)
        assert (result.fact_rows, result.headline) == (alone.fact_rows, alone.headline)
        assert header(engine, result.run_id) == header(engine, alone.run_id) | {"dagster_run_id": None}


def header(engine, run_id) -> dict:
    with engine.connect() as conn:
        row = conn.execute(select(report_run).where(report_run.c.run_id == run_id)).mappings().one()
    return {name: row[name] for name in HEADER_COLUMNS}


# --- which windows share a pass (no DB) -----------------------------------------------------------


@pytest.mark.unit
def test_overlapping_windows_are_split_into_disjoint_passes_fewest_first():
    t = [multi_period_time(day) for day in range(10)]
    windows = [(t[0], t[2]), (t[1], t[3]), (t[2], t[4]), (None, t[1]), (t[3], t[5])]
    groups = disjoint_passes(windows)
    assert sorted(sorted(g) for g in groups) == [[0, 2], [1, 3, 4]]
    for group in groups:
        window_params([windows[i] for i in group])  # disjoint: accepted


@pytest.mark.unit
def test_window_params_refuse_overlapping_windows_and_map_each_segment_to_its_window():
    t = [multi_period_time(day) for day in range(4)]
    with pytest.raises(ValueError, match="disjoint"):
        window_params([(t[0], t[2]), (t[1], t[3])])
    params = window_params([(None, t[1]), (t[2], t[3])])
    assert params["segment_bounds"] == [t[1], t[2], t[3]]
    assert params["segment_windows"] == [1, 0, 2, 0]
    assert params["window_end_marks"] == [1, 2]


@pytest.mark.unit
def test_only_requests_of_one_question_share_a_pass():
    report = registry()["pipeline_overview"]
    base = run_request.RunRequest(
        report, uuid.uuid4(), window_of(0, 7), report.options_from(None), known_at=multi_period_time(100)
    )
    others = [
        replace(base, window=window_of(7, 14)),
        replace(base, window=window_of(14, 21), tenant_id=uuid.uuid4()),
        replace(base, window=window_of(21, 28), known_at=multi_period_time(101)),
        replace(base, window=window_of(3, 10)),
    ]
    assert multi_period.shared_passes([base, *others]) == [[0, 1]]


def multi_period_time(day: int):
    from datetime import UTC, datetime

    return datetime(2025, 1, 1, tzinfo=UTC) + day * D


def window_of(first: int, last: int):
    from dyno_reports.core.periods import Window

    return Window(multi_period_time(first), multi_period_time(last))
