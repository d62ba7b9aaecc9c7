"""weighted_pipeline against its spec (real PostgreSQL): hand-made edge cases and generated histories."""

from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from dyno_reports.errors import InputError
from dyno_reports.reports import get_report
from dyno_reports_tests.reference.weighted_pipeline import expected
from dyno_reports_tests.support.facts import assert_matches_reference, run, run_and_read
from dyno_reports_tests.support.history import (
    DEAL_IDS,
    PIPELINE_IDS,
    PRINCIPAL_IDS,
    T0,
    TenantData,
    busy_histories,
    load,
    pipeline_selections,
    tenant_histories,
    two_pipelines,
    windows,
)

REPORT = "weighted_pipeline"
D = timedelta(days=1)
S = datetime(2025, 6, 1, tzinfo=UTC)
E = datetime(2025, 7, 1, tzinfo=UTC)
P0, P1 = PRINCIPAL_IDS[:2]
A, B = PIPELINE_IDS[:2]


def with_probabilities(data: TenantData, stages: list, probabilities: list[str]) -> list:
    changed = [replace(s, probability=Decimal(p)) for s, p in zip(stages, probabilities, strict=True)]
    data.stages.update({s.stage_id: s for s in changed})
    return changed


def row_of(facts: dict, pipeline_id, owner, month: date | None) -> tuple:
    fact = facts[(pipeline_id, owner, month)]
    return fact["deal_count"], fact["total_amount"], fact["weighted_amount"]


def test_groups_by_pipeline_owner_and_close_month_at_e(engine):
    data, (lead, proposal, won, _lost), (renewal, *_) = two_pipelines()
    jul, aug, sep = date(2025, 7, 3), date(2025, 8, 15), date(2025, 9, 2)
    data.add_deal(DEAL_IDS[0], [(T0, lead, 100, P0, jul)])
    data.add_deal(DEAL_IDS[1], [(T0, lead, 1, P0), (T0 + D, proposal, 200, P0, date(2025, 7, 31))])
    data.add_deal(DEAL_IDS[2], [(T0 - 40 * D, lead, 40, P0, None)])  # no close date
    # owner and amount changed before E (count) and again at E (ignored)
    data.add_deal(DEAL_IDS[3], [(T0, lead, 10, P0, aug), (T0 + 5 * D, lead, 12, P1, aug), (E, lead, 10, P0, aug)])
    data.add_deal(DEAL_IDS[4], [(T0, lead, 500, P0, jul), (T0 + D, won, 500, P0, jul)])  # closed: out
    data.add_deal(DEAL_IDS[5], [(T0, lead, 500, P0, jul), (T0 + D, lead, 500, P0, jul, True)])  # deleted: out
    data.add_deal(DEAL_IDS[6], [(T0, lead, 20, P1), (T0 + D, lead, 20, P1, None, True), (T0 + 2 * D, lead, 20, P1)])
    data.add_deal(DEAL_IDS[7], [(T0, lead, 60, P0, jul), (T0 + 3 * D, renewal, 60, P0, jul)])  # moved to B
    data.add_deal(DEAL_IDS[8], [(T0, proposal, 5, P1, date(2025, 6, 20)), (T0 + D, proposal, 5, P1, sep)])
    data.add_deal(DEAL_IDS[9], [(E, lead, 900, P0, jul)])  # created at E: does not exist yet
    data.add_deal(DEAL_IDS[10], [(T0 - 9 * D, won, 70, P1), (T0 + 4 * D, lead, 70, P1)])  # reopened
    data.add_deal(DEAL_IDS[11], [(T0, lead, 80, P0, jul), (T0 + D, won, 80, P0, jul), (E, lead, 80, P0, jul)])
    load(engine, data)

    facts = run_and_read(engine, REPORT, data.tenant_id, S, E)

    assert facts == expected(data, S, E)
    assert set(facts) == {
        (A, P0, date(2025, 7, 1)),
        (A, P0, None),
        (A, P1, date(2025, 8, 1)),
        (A, P1, None),
        (B, P0, date(2025, 7, 1)),
        (A, P1, date(2025, 9, 1)),
    }
    assert row_of(facts, A, P0, date(2025, 7, 1)) == (2, Decimal("300.00"), Decimal("50.00"))
    assert row_of(facts, A, P0, None) == (1, Decimal("40.00"), Decimal("4.00"))
    assert row_of(facts, A, P1, date(2025, 8, 1)) == (1, Decimal("12.00"), Decimal("1.20"))
    assert row_of(facts, A, P1, None) == (2, Decimal("90.00"), Decimal("9.00"))  # restored + reopened
    assert row_of(facts, B, P0, date(2025, 7, 1)) == (1, Decimal("60.00"), Decimal("6.00"))
    assert row_of(facts, A, P1, date(2025, 9, 1)) == (1, Decimal("5.00"), Decimal("1.00"))


def test_pipeline_filter_uses_the_pipeline_at_e(engine):
    data, (lead, *_), (renewal, *_) = two_pipelines()
    data.add_deal(DEAL_IDS[0], [(T0, lead, 60, P0), (T0 + 3 * D, renewal, 60, P0)])  # A -> B before E
    data.add_deal(DEAL_IDS[1], [(T0, renewal, 30, P0), (T0 + 3 * D, lead, 30, P0)])  # B -> A before E
    data.add_deal(DEAL_IDS[2], [(T0, lead, 10, P0), (E, renewal, 10, P0)])  # moves at E: still in A
    load(engine, data)

    only_b = run_and_read(engine, REPORT, data.tenant_id, S, E, {"pipeline_ids": [str(B)]})

    assert only_b == expected(data, S, E, [B])
    assert row_of(only_b, B, P0, None) == (1, Decimal("60.00"), Decimal("6.00"))
    assert set(only_b) == {(B, P0, None)}


def test_weighted_amount_is_rounded_once_half_away_from_zero(engine):
    data = TenantData()
    half, third, _won, _lost = with_probabilities(
        data, data.add_pipeline(A, ["open", "open", "won", "lost"]), ["0.5", "0.3333", "1", "0"]
    )
    for i in range(3):  # 3 x 0.005 = 0.015 -> 0.02; rounding each deal would give 0.03
        data.add_deal(DEAL_IDS[i], [(T0, half, "0.01", P0, date(2025, 7, 1))])
    data.add_deal(DEAL_IDS[3], [(T0, half, "0.05", P1, date(2025, 7, 1))])  # 0.025 -> 0.03 (banker's: 0.02)
    data.add_deal(DEAL_IDS[4], [(T0, third, "100.00", P1, None)])  # 33.33
    data.add_deal(DEAL_IDS[5], [(T0, third, "0.02", P0, None)])  # 0.006666 -> 0.01
    data.add_deal(DEAL_IDS[6], [(T0, third, "0.01", P0, None)])  # with the above: 0.009999 -> 0.01
    load(engine, data)

    facts = run_and_read(engine, REPORT, data.tenant_id, S, E)

    assert facts == expected(data, S, E)
    assert row_of(facts, A, P0, date(2025, 7, 1)) == (3, Decimal("0.03"), Decimal("0.02"))
    assert row_of(facts, A, P1, date(2025, 7, 1)) == (1, Decimal("0.05"), Decimal("0.03"))
    assert row_of(facts, A, P1, None) == (1, Decimal("100.00"), Decimal("33.33"))
    assert row_of(facts, A, P0, None) == (2, Decimal("0.03"), Decimal("0.01"))


def test_only_groups_with_deals_and_no_rows_without_open_deals(engine):
    data, (lead, proposal, won, lost), _ = two_pipelines()
    data.add_deal(DEAL_IDS[0], [(T0, lead, 1, P0), (T0 + D, won, 1, P0)])
    data.add_deal(DEAL_IDS[1], [(T0, proposal, 1, P0), (T0 + D, lost, 1, P0)])
    load(engine, data)
    assert run_and_read(engine, REPORT, data.tenant_id, S, E) == {}
    # before they closed, only lead and proposal had a deal: no row for the empty renewal stage
    assert set(run_and_read(engine, REPORT, data.tenant_id, S, T0 + D)) == {(A, P0, None)}

    no_pipelines = TenantData()
    load(engine, no_pipelines)
    assert run_and_read(engine, REPORT, no_pipelines.tenant_id, S, E) == {}


def test_snapshot_ignores_the_window_start(engine):
    data, (lead, proposal, *_), _ = two_pipelines()
    data.add_deal(DEAL_IDS[0], [(T0 - 300 * D, lead, 7, P0), (T0 - 200 * D, proposal, 9, P1, date(2025, 1, 31))])
    data.add_deal(DEAL_IDS[1], [(T0 + 10 * D, lead, 3, P1)])
    load(engine, data)

    unbounded = run_and_read(engine, REPORT, data.tenant_id, None, E)
    result = run(engine, REPORT, data.tenant_id, E - D, E)

    assert unbounded == expected(data, None, E)
    assert run_and_read(engine, REPORT, data.tenant_id, S, E) == unbounded
    assert row_of(unbounded, A, P1, date(2025, 1, 1)) == (1, Decimal("9.00"), Decimal("1.80"))
    assert result.headline == {"deal_count": 2, "total_amount": Decimal("12.00"), "weighted_amount": Decimal("2.10")}


def test_definition_and_unknown_options(engine):
    report = get_report(REPORT)
    assert (report.cadence, report.dimensions) == ("month", ("pipeline_id", "principal_id", "close_month"))
    data, _, _ = two_pipelines()
    load(engine, data)
    with pytest.raises(InputError, match="include_closed"):
        run(engine, REPORT, data.tenant_id, S, E, {"include_closed": True})


def any_probabilities(draw: st.DrawFn, data: TenantData) -> TenantData:
    """Open-stage probabilities of 4 decimals (the shared generators give tenths)."""
    for stage in list(data.stages.values()):
        if stage.kind == "open":
            probability = draw(st.decimals(min_value=0, max_value=1, places=4))
            data.stages[stage.stage_id] = replace(stage, probability=probability)
    return data


@st.composite
def weighted_histories(draw: st.DrawFn) -> TenantData:
    """tenant_histories (half the time with at least 3 deals) with 4-decimal probabilities, and
    about half the deals crowded: one owner and every close date moved into July (same day), so
    that groups hold several deals and rounding once differs from rounding each deal."""
    data = draw(tenant_histories() | tenant_histories(max_deals=16).filter(lambda d: len(d.created_at) >= 3))
    any_probabilities(draw, data)
    crowd = {deal_id for deal_id in sorted(data.created_at) if draw(st.booleans())}
    july = {r.close_date: r.close_date.replace(month=7) for r in data.rows if r.close_date is not None}
    data.rows = [
        replace(r, owner_id=data.principals[0], close_date=july.get(r.close_date)) if r.deal_id in crowd else r
        for r in data.rows
    ]
    return data


@st.composite
def busy_weighted_histories(draw: st.DrawFn) -> TenantData:
    """busy_histories (many deals, one owner, no close dates: big groups) with 4-decimal probabilities."""
    return any_probabilities(draw, draw(busy_histories()))


@given(data=weighted_histories(), choices=st.data())
def test_matches_reference_on_generated_histories(engine, data, choices):
    check_against_reference(engine, data, choices)


@given(data=busy_weighted_histories(), choices=st.data())
def test_matches_reference_on_busy_histories(engine, data, choices):
    check_against_reference(engine, data, choices)


def check_against_reference(engine, data: TenantData, choices) -> None:
    window = choices.draw(windows(data))
    assert_matches_reference(engine, REPORT, expected, data, window, choices.draw(pipeline_selections(data)))
