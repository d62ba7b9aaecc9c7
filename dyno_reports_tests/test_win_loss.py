"""win_loss against docs/definitions.md (real PostgreSQL): hand-made edge cases.

Its SQL against its reference on generated histories, and the checks every report gets
(options, definition, a tenant without pipelines): test_report_registry.py.
"""

from datetime import UTC, datetime, timedelta
from decimal import Decimal

from dyno_reports_tests.reference.win_loss import expected
from dyno_reports_tests.support.facts import run, run_and_read
from dyno_reports_tests.support.history import (
    DEAL_IDS,
    PIPELINE_IDS,
    PRINCIPAL_IDS,
    load,
    two_pipelines,
)

REPORT = "win_loss"
H = timedelta(hours=1)
D = timedelta(days=1)
S = datetime(2025, 6, 1, tzinfo=UTC)
E = datetime(2025, 7, 1, tzinfo=UTC)
P0, P1 = PRINCIPAL_IDS[:2]
A, B = PIPELINE_IDS[:2]
NO_DATE, DELETED = None, True


def counts(facts: dict, pipeline_id, owner) -> tuple:
    fact = facts[(pipeline_id, owner)]
    return fact["won_count"], fact["lost_count"], fact["won_amount"], fact["lost_amount"]


def rates(facts: dict, pipeline_id, owner) -> tuple:
    fact = facts[(pipeline_id, owner)]
    return fact["win_rate"], fact["win_rate_by_value"], fact["avg_cycle_days"]


def test_last_closing_event_in_w_counts_only_while_still_of_its_kind(engine):
    data, (lead, proposal, won, lost), _ = two_pipelines()
    data.add_deal(DEAL_IDS[0], [(S - 10 * D, lead, 100), (S + D, won, 100)])  # 11 days
    data.add_deal(DEAL_IDS[1], [(S - 5 * D, lead, 50), (S + D, won, 50), (S + 3 * D, proposal, 50)])  # reopened
    data.add_deal(DEAL_IDS[2], [(S - 20 * D, lead, 30), (S - 10 * D, won, 30)])  # closed before W
    data.add_deal(
        DEAL_IDS[3], [(S - 20 * D, lead, 40), (S - 10 * D, won, 40), (S + 2 * D, lead, 40), (S + 4 * D, won, 45)]
    )  # won again in W: 24 days
    # won, then flipped to lost by another owner: the last closing event counts
    data.add_deal(DEAL_IDS[4], [(S - D, lead, 100, P0), (S + D, won, 100, P0), (S + 2 * D, lost, 55, P1)])
    # amount and owner change while staying won: no new closing event, the entry row counts
    data.add_deal(DEAL_IDS[5], [(S - D, lead, 300, P0), (S + D, won, 300, P0), (S + 5 * D, won, 999, P1)])  # 2 days
    data.add_deal(DEAL_IDS[6], [(S - D, lead, 1000), (S + D, won, 1000), (S + 2 * D, won, 1000, P0, NO_DATE, DELETED)])
    data.add_deal(
        DEAL_IDS[7], [(S - D, lead, 7), (S + D, won, 7), (S + 2 * D, won, 7, P0, NO_DATE, DELETED), (S + 3 * D, won, 7)]
    )  # restored: 2 days
    data.add_deal(DEAL_IDS[8], [(S - D, lead, 20), (S + D, lost, 20), (E, lost, 20, P0, NO_DATE, DELETED)])
    data.add_deal(DEAL_IDS[9], [(S - 2 * D, lead, 11), (S, won, 11)])  # closed exactly at S: 2 days
    data.add_deal(DEAL_IDS[10], [(S - 2 * D, lead, 500), (E, won, 500)])  # closed exactly at E: not in W
    data.add_deal(DEAL_IDS[11], [(S + 6 * D, won, 13)])  # created won (skips every open stage): 0 days
    data.add_deal(DEAL_IDS[12], [(S - D, lead, 17, P1), (S, lost, 17, P1)])  # skips proposal
    load(engine, data)

    facts = run_and_read(engine, REPORT, data.tenant_id, S, E)

    assert facts == expected(data, S, E)
    assert set(facts) == {(A, P0), (A, P1)}
    assert counts(facts, A, P0) == (6, 1, Decimal("476.00"), Decimal("20.00"))
    assert rates(facts, A, P0) == (Decimal("0.8571"), Decimal("0.9597"), Decimal("6.83"))  # 41 days / 6
    assert counts(facts, A, P1) == (0, 2, Decimal("0"), Decimal("72.00"))
    assert rates(facts, A, P1) == (Decimal("0"), Decimal("0"), None)


def test_pipeline_is_the_closing_stages_and_the_kind_at_e_may_be_in_another_pipeline(engine):
    data, (lead, _, won, _), (renewal, won_b, lost_b) = two_pipelines()
    data.add_deal(DEAL_IDS[0], [(S - D, lead, 10), (S + D, won, 10), (S + 2 * D, lost_b, 10)])  # flipped into B
    data.add_deal(DEAL_IDS[1], [(S - D, lead, 20), (S + D, won, 20), (S + 2 * D, won_b, 25)])  # still won, in B
    data.add_deal(DEAL_IDS[2], [(S - D, lead, 30, P1), (S, renewal, 30, P1), (S + D, won_b, 30, P1)])
    load(engine, data)

    every = run_and_read(engine, REPORT, data.tenant_id, S, E)
    only_a = run_and_read(engine, REPORT, data.tenant_id, S, E, {"pipeline_ids": [str(A)]})
    only_b = run_and_read(engine, REPORT, data.tenant_id, S, E, {"pipeline_ids": [str(B)]})

    assert every == expected(data, S, E) == only_b
    assert only_a == expected(data, S, E, [A])
    assert counts(every, B, P0) == (1, 1, Decimal("25.00"), Decimal("10.00"))
    assert counts(every, B, P1) == (1, 0, Decimal("30.00"), Decimal("0"))
    # only A: deal 0's last closing event in A is the win, but it is lost at E; deal 1 is still won
    assert set(only_a) == {(A, P0)}
    assert counts(only_a, A, P0) == (1, 0, Decimal("20.00"), Decimal("0"))


def test_a_deleting_row_that_changes_the_stage_is_a_closing_event(engine):
    # docs/definitions.md: only rows that change nothing but amount, owner, close date or is_deleted are not entries
    data, (lead, _, won, _), _ = two_pipelines()
    data.add_deal(DEAL_IDS[0], [(S - D, lead, 5, P0), (S + D, won, 6, P1, NO_DATE, DELETED), (S + 2 * D, won, 7, P0)])
    load(engine, data)

    facts = run_and_read(engine, REPORT, data.tenant_id, S, E)

    assert facts == expected(data, S, E)
    assert counts(facts, A, P1) == (1, 0, Decimal("6.00"), Decimal("0"))
    assert rates(facts, A, P1) == (Decimal("1"), Decimal("1"), Decimal("2"))
    assert run_and_read(engine, REPORT, data.tenant_id, S, S + 2 * D) == {}  # deleted at E


def test_rates_and_cycle_days_are_rounded_once_and_null_on_empty(engine):
    data, (lead, _, won, lost), (renewal, won_b, lost_b) = two_pipelines()
    data.add_deal(DEAL_IDS[0], [(S, lead, 1), (S + 3 * H, won, 1)])  # 0.125 days
    data.add_deal(DEAL_IDS[1], [(S, lead, 1), (S + 9 * H, won, 1)])  # 0.375 days: mean 0.25, not 0.26
    data.add_deal(DEAL_IDS[2], [(S, lead, 1), (S + H, lost, 1)])  # 2/3 -> 0.6667
    data.add_deal(DEAL_IDS[3], [(S, renewal, 5), (S + 3 * H, won_b, 5)])  # 0.125 -> 0.13 (half away from zero)
    data.add_deal(DEAL_IDS[4], [(S, lead, 0, P1), (S + D, won, 0, P1)])  # zero amounts: no rate by value
    data.add_deal(DEAL_IDS[5], [(S, lead, 0, P1), (S + D, lost, 0, P1)])
    data.add_deal(DEAL_IDS[6], [(S, renewal, 10, P1), (S + D, lost_b, 10, P1)])  # no won deal: no cycle days
    load(engine, data)

    facts = run_and_read(engine, REPORT, data.tenant_id, S, E)

    assert facts == expected(data, S, E)
    assert rates(facts, A, P0) == (Decimal("0.6667"), Decimal("0.6667"), Decimal("0.25"))
    assert rates(facts, B, P0) == (Decimal("1"), Decimal("1"), Decimal("0.13"))
    assert rates(facts, A, P1) == (Decimal("0.5"), None, Decimal("1"))
    assert rates(facts, B, P1) == (Decimal("0"), Decimal("0"), None)


def test_empty_window_and_window_without_start(engine):
    data, (lead, _, won, _), _ = two_pipelines()
    data.add_deal(DEAL_IDS[0], [(S - 100 * D, lead, 8), (S - 90 * D, won, 8)])
    data.add_deal(DEAL_IDS[1], [(S - 10 * D, lead, 9)])  # never closed
    load(engine, data)

    assert run_and_read(engine, REPORT, data.tenant_id, S, E) == {}
    unbounded = run_and_read(engine, REPORT, data.tenant_id, None, E)
    assert unbounded == expected(data, None, E)
    assert counts(unbounded, A, P0) == (1, 0, Decimal("8.00"), Decimal("0"))
    assert rates(unbounded, A, P0) == (Decimal("1"), Decimal("1"), Decimal("10"))


def test_headline_sums_counts_and_amounts(engine):
    data, (lead, _, won, lost), _ = two_pipelines()
    data.add_deal(DEAL_IDS[0], [(S, lead, 3, P0), (S + D, won, 3, P0)])
    data.add_deal(DEAL_IDS[1], [(S, lead, 4, P1), (S + D, lost, 4, P1)])
    load(engine, data)

    result = run(engine, REPORT, data.tenant_id, S, E)

    assert result.headline == {
        "won_count": 1,
        "lost_count": 1,
        "won_amount": Decimal("3.00"),
        "lost_amount": Decimal("4.00"),
    }
