"""Stale runs found by the stale check (real PostgreSQL): late history rows, changed stages, a newer report
version; a check reads only the rows recorded since the previous one; refresh re-runs stale questions.

The check is fleet-wide (one cursor for the module's database): each test looks at its own tenants only.
"""

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from sqlalchemy import func, select, text, update

from dyno_reports.engine import multi_period
from dyno_reports.freshness import refresh, staleness
from dyno_reports.reports import registry
from dyno_reports.storage.tables import report_run, stage, stale_check
from dyno_reports_tests.support.facts import facts_by_key, run
from dyno_reports_tests.support.history import (
    DEAL_IDS,
    PIPELINE_IDS,
    T0,
    Row,
    TenantData,
    load,
    load_rows,
    two_pipelines,
)

D = timedelta(days=1)
WEEKS = [(T0 + 7 * i * D, T0 + 7 * (i + 1) * D) for i in range(3)]  # 2025-06-02, -09, -16, -23


def tenant_with_deal() -> tuple[TenantData, list]:
    data = TenantData()
    stages = data.add_pipeline(PIPELINE_IDS[0], ["open", "won", "lost"])
    data.add_deal(DEAL_IDS[0], [(T0 - 3 * D, stages[0], 10), (T0 + 3 * D, stages[1], 10)])
    return data, stages


def succeeded(engine, report_type, data, window, options=None, **kwargs):
    result = run(engine, report_type, data.tenant_id, *window, options, **kwargs)
    assert result.succeeded, result.error_message
    return result.run_id


def stale_of(engine, *tenants: TenantData, **filters) -> dict:
    with engine.connect() as conn:
        found = staleness.check(conn, tenant_ids=[t.tenant_id for t in tenants], **filters)
    return {s.run_id: s for s in found}


def late_row(data: TenantData, stage_id, valid_from: datetime, recorded_at: datetime | None = None) -> Row:
    recorded = recorded_at or datetime.now(UTC)
    return Row(DEAL_IDS[0], valid_from, stage_id, data.principals[0], Decimal(99), recorded_at=recorded)


def cursor(engine) -> datetime | None:
    with engine.connect() as conn:
        return conn.execute(select(stale_check.c.checked_to)).scalar_one()


def test_a_backdated_row_makes_exactly_its_tenants_runs_ending_after_it_stale(engine):
    mine, stages = tenant_with_deal()
    other, _ = tenant_with_deal()
    load(engine, mine)
    load(engine, other)
    runs = [succeeded(engine, "win_loss", mine, week) for week in WEEKS]
    others = [succeeded(engine, "win_loss", other, week) for week in WEEKS]
    assert stale_of(engine, mine, other) == {}

    valid_from = WEEKS[1][0] + D  # inside the second week: the second and third runs end after it
    load_rows(engine, mine, [late_row(mine, stages[0].stage_id, valid_from)])
    found = stale_of(engine, mine, other)
    assert set(found) == set(runs[1:]) and not set(others) & set(found)
    assert all(s.late_rows == 1 and s.earliest_valid_from == valid_from for s in found.values())
    assert found[runs[1]].reasons() == [f"1 late row from {valid_from.isoformat()}"]

    # the check's windows overlap by the CRM's longest write: the same row read again is not counted twice
    again = stale_of(engine, mine, other)
    assert {r: s.late_rows for r, s in again.items()} == {r: 1 for r in runs[1:]}

    # a row dated at or after every run's end makes none stale
    load_rows(engine, mine, [late_row(mine, stages[1].stage_id, WEEKS[2][1] + D)])
    assert {r: s.late_rows for r, s in stale_of(engine, mine, other).items()} == {r: 1 for r in runs[1:]}


def test_a_row_dated_at_a_runs_end_leaves_it_current(engine):
    mine, stages = tenant_with_deal()
    load(engine, mine)
    first = succeeded(engine, "win_loss", mine, WEEKS[0])
    load_rows(engine, mine, [late_row(mine, stages[0].stage_id, WEEKS[0][1])])
    assert first not in stale_of(engine, mine)


def test_a_second_check_reads_only_rows_recorded_since_the_first(engine):
    """A row recorded before the cursor's window (as if already read) is not read again: the check costs the
    new rows, not the history; the stale set stays the same."""
    mine, stages = tenant_with_deal()
    load(engine, mine)
    week = succeeded(engine, "win_loss", mine, WEEKS[1])
    assert stale_of(engine, mine) == {}
    checked_to = cursor(engine)
    assert checked_to is not None
    old = checked_to - timedelta(hours=1)  # before the window (checked_to minus the CRM's 10 minutes)
    load_rows(engine, mine, [late_row(mine, stages[0].stage_id, WEEKS[1][0] + D, recorded_at=old)])
    assert stale_of(engine, mine) == {}
    assert cursor(engine) > checked_to
    new = late_row(mine, stages[0].stage_id, WEEKS[1][0] + 2 * D)
    load_rows(engine, mine, [new])
    assert {r: s.late_rows for r, s in stale_of(engine, mine).items()} == {week: 1}


def test_a_run_given_an_older_k_after_the_check_is_checked_directly(engine):
    mine, stages = tenant_with_deal()
    valid_from, recorded = WEEKS[1][0] + D, datetime(2025, 7, 1, tzinfo=UTC)
    mine.rows.append(late_row(mine, stages[0].stage_id, valid_from, recorded_at=recorded))
    load(engine, mine)
    stale_of(engine, mine)  # the cursor moves past the row's recorded_at
    known_at = datetime(2025, 6, 20, tzinfo=UTC)  # before the row was recorded
    week = succeeded(engine, "win_loss", mine, WEEKS[1], as_known_at=known_at)
    current = succeeded(engine, "win_loss", mine, WEEKS[2])  # default K: knows the row
    found = stale_of(engine, mine)
    assert set(found) == {week} and found[week].late_rows == 1 and found[week].earliest_valid_from == valid_from
    assert current not in found
    assert stale_of(engine, mine)[week].late_rows == 1  # checked once, not again


def set_stage(engine, data: TenantData, stage_id, **values) -> None:
    with engine.begin() as conn:
        conn.execute(
            update(stage).where(stage.c.tenant_id == data.tenant_id, stage.c.stage_id == stage_id).values(**values)
        )


def test_a_probability_edit_makes_the_runs_of_its_scope_stale_and_a_rename_nothing(engine):
    data, first, second = two_pipelines()
    data.add_deal(DEAL_IDS[0], [(T0 - 3 * D, first[0], 10)])
    load(engine, data)
    month = (datetime(2025, 6, 1, tzinfo=UTC), datetime(2025, 7, 1, tzinfo=UTC))
    only = {p: {"pipeline_ids": [str(p)]} for p in data.pipelines}
    weighted_all = succeeded(engine, "weighted_pipeline", data, month)
    weighted_first = succeeded(engine, "weighted_pipeline", data, month, only[first[0].pipeline_id])
    weighted_second = succeeded(engine, "weighted_pipeline", data, month, only[second[0].pipeline_id])
    win_loss_second = succeeded(engine, "win_loss", data, month, only[second[0].pipeline_id])
    assert stale_of(engine, data) == {}

    set_stage(engine, data, first[0].stage_id, name="renamed")
    assert stale_of(engine, data) == {}
    set_stage(engine, data, first[0].stage_id, probability=Decimal("0.55"))
    found = stale_of(engine, data)
    assert set(found) == {weighted_all, weighted_first}
    assert all(s.scope_changed and s.reasons() == ["stages changed"] for s in found.values())
    assert weighted_second not in found and win_loss_second not in found
    set_stage(engine, data, first[0].stage_id, probability=first[0].probability)  # back as the runs read it
    assert stale_of(engine, data) == {}


def test_a_report_version_bump_makes_its_runs_stale(engine, monkeypatch):
    mine, _ = tenant_with_deal()
    load(engine, mine)
    win_loss = succeeded(engine, "win_loss", mine, WEEKS[0])
    overview = succeeded(engine, "pipeline_overview", mine, WEEKS[0])
    monkeypatch.setitem(registry(), "win_loss", replace(registry()["win_loss"], report_version=2))
    found = stale_of(engine, mine)
    assert set(found) == {win_loss} and overview not in found
    assert (found[win_loss].version, found[win_loss].current_version) == (1, 2)
    assert found[win_loss].reasons() == ["report version 1 -> 2"]
    assert set(stale_of(engine, mine, report_types=["pipeline_overview"])) == set()
    monkeypatch.undo()
    assert stale_of(engine, mine) == {}


def run_count(engine) -> int:
    with engine.connect() as conn:
        return conn.execute(select(func.count()).select_from(report_run)).scalar_one()


def latest_run(engine, run_id):
    with engine.connect() as conn:
        fingerprint = conn.execute(
            select(report_run.c.input_fingerprint).where(report_run.c.run_id == run_id)
        ).scalar_one()
        return conn.execute(
            text("SELECT run_id FROM reporting.report_run_latest WHERE input_fingerprint = :f"), {"f": fingerprint}
        ).scalar_one()


def test_refresh_reruns_the_stale_question_and_the_latest_view_moves(engine, monkeypatch):
    # the refresh's default K (now minus the CRM's longest write) knows a row written just now
    monkeypatch.setenv("DYNO_CRM_MAX_WRITE_SECONDS", "0")
    mine, stages = tenant_with_deal()
    load(engine, mine)
    old = succeeded(engine, "win_loss", mine, WEEKS[0])
    load_rows(engine, mine, [late_row(mine, stages[2].stage_id, WEEKS[0][0] + 4 * D)])  # the deal lost after all
    assert set(stale_of(engine, mine)) == {old}

    done = refresh.refresh(engine, tenant_ids=[mine.tenant_id])
    assert [r.stale.run_id for r in done] == [old]
    new = done[0].result.run_id
    assert done[0].result.succeeded and new != old
    assert done[0].summary().startswith("1 row changed")
    assert latest_run(engine, old) == new
    with engine.connect() as conn:  # the old run stays as it was
        assert conn.execute(select(report_run.c.status).where(report_run.c.run_id == old)).scalar_one() == "SUCCEEDED"
    assert stale_of(engine, mine) == {}


def test_refresh_computes_the_stale_weeks_of_one_question_in_one_pass(engine, monkeypatch):
    monkeypatch.setenv("DYNO_CRM_MAX_WRITE_SECONDS", "0")
    passes = []
    compute = multi_period.compute
    monkeypatch.setattr(multi_period, "compute", lambda conn, asked: passes.append(len(asked)) or compute(conn, asked))
    mine, stages = tenant_with_deal()
    load(engine, mine)
    old = [succeeded(engine, "pipeline_overview", mine, week) for week in WEEKS]
    load_rows(engine, mine, [late_row(mine, stages[0].stage_id, T0 - 4 * D)])  # an amount before every week
    done = refresh.refresh(engine, tenant_ids=[mine.tenant_id])
    assert sorted(r.stale.run_id for r in done) == sorted(old) and passes == [3]
    for refreshed in done:
        window = (refreshed.result.request.window.start, refreshed.result.request.window.end)
        assert refreshed.result.succeeded and refreshed.diff is not None
        alone = succeeded(engine, "pipeline_overview", mine, window)
        assert facts_by_key(engine, "pipeline_overview", refreshed.result.run_id) == facts_by_key(
            engine, "pipeline_overview", alone
        )


@pytest.mark.parametrize("filters", [{}, {"report_types": ["win_loss"]}])
def test_check_filters_and_orders_its_listing(engine, filters):
    mine, stages = tenant_with_deal()
    load(engine, mine)
    runs = [succeeded(engine, "win_loss", mine, week) for week in reversed(WEEKS)]
    overview = succeeded(engine, "pipeline_overview", mine, WEEKS[0])
    load_rows(engine, mine, [late_row(mine, stages[0].stage_id, T0)])
    with engine.connect() as conn:
        found = staleness.check(conn, tenant_ids=[mine.tenant_id], **filters)
    expected = ([] if filters else [overview]) + list(reversed(runs))  # by report, then period_end
    assert [s.run_id for s in found] == expected
