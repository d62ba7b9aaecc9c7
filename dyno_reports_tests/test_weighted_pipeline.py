"""weighted_pipeline against docs/definitions.md (real PostgreSQL): hand-made edge cases, close_quarter in
tenants' fiscal years.

Its SQL against its reference on generated histories, and the checks every report gets
(options, definition, a tenant without pipelines): test_report_registry.py.
"""

from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

from dyno_reports_tests.reference.weighted_pipeline import expected
from dyno_reports_tests.support.facts import run, run_and_read
from dyno_reports_tests.support.history import (
    DEAL_IDS,
    PIPELINE_IDS,
    PRINCIPAL_IDS,
    T0,
    TenantData,
    load,
    two_pipelines,
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


def test_close_quarter_is_the_fiscal_quarter_of_the_close_date_in_the_tenants_year(engine):
    """A December year (Kathmandu, named by its start): quarters December-February, March-May, June-August,
    September-November; one deal closing in each month of 2025 and one without a close date."""
    data, (lead, *_), _ = two_pipelines()
    data.calendar = ("Asia/Kathmandu", 7, 12, "start")
    for month in range(1, 13):
        data.add_deal(DEAL_IDS[month], [(T0, lead, month, P0, date(2025, month, 28))])
    data.add_deal(DEAL_IDS[0], [(T0, lead, 99, P0)])
    load(engine, data)

    facts = run_and_read(engine, REPORT, data.tenant_id, S, E)

    assert facts == expected(data, S, E)
    quarters = {month: row["close_quarter"] for (_, _, month), row in facts.items()}
    starts = {1: date(2024, 12, 1), 2: date(2024, 12, 1), 12: date(2025, 12, 1)}
    starts |= {m: date(2025, 3 * ((m - 3) // 3) + 3, 1) for m in range(3, 12)}
    assert quarters == {None: None} | {date(2025, m, 1): first for m, first in starts.items()}
