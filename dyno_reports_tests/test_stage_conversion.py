"""stage_conversion against docs/definitions.md (real PostgreSQL): hand-made edge cases.

Its SQL against its reference on generated histories, and the checks every report gets
(options, definition, a tenant without pipelines): test_report_registry.py.
"""

from datetime import timedelta
from decimal import Decimal

from dyno_reports_tests.reference.stage_conversion import expected
from dyno_reports_tests.support.facts import run_and_read, stage_row
from dyno_reports_tests.support.history import (
    DEAL_IDS,
    PIPELINE_IDS,
    T0,
    load,
    two_pipelines,
)

REPORT = "stage_conversion"
H = timedelta(hours=1)
D = timedelta(days=1)
WEEK = (T0, T0 + 7 * D)


def counts(fact: dict) -> tuple:
    return fact["entered_count"], fact["advanced_count"], fact["lost_count"]


def test_skips_repeats_reopened_and_flipped_deals(engine):
    data, (lead, qualified, proposal, won, lost), _ = two_pipelines(3)
    # skips qualified: lead -> proposal is an advance (2 days)
    data.add_deal(DEAL_IDS[0], [(T0 + D, lead, 10), (T0 + 3 * D, proposal, 10)])
    # entered lead before W: not in lead's cohort; in qualified's, not advanced
    data.add_deal(DEAL_IDS[1], [(T0 - 2 * D, lead, 10), (T0 + D, qualified, 10)])
    # repeated visits: t0 = the first entry into lead in W (exactly S), first advance 1 day later;
    # back to lead, then qualified again: qualified's re-entry has no greater position
    data.add_deal(
        DEAL_IDS[2], [(T0, lead, 1), (T0 + D, qualified, 1), (T0 + 2 * D, lead, 1), (T0 + 4 * D, qualified, 1)]
    )
    # lost: in the cohort, not advanced, counted lost
    data.add_deal(DEAL_IDS[3], [(T0 + 2 * D, lead, 1), (T0 + 5 * D, lost, 1)])
    # flipped won -> lost: advanced (the entry into won) and lost at E
    data.add_deal(DEAL_IDS[4], [(T0 + D, lead, 1), (T0 + 2 * D, won, 1), (T0 + 3 * D, lost, 1)])
    # won before W, reopened into lead in W and won again: advanced after 5 days
    data.add_deal(
        DEAL_IDS[5], [(T0 - 5 * D, qualified, 1), (T0 - 3 * D, won, 1), (T0 + D, lead, 1), (T0 + 6 * D, won, 1)]
    )
    # amount-only changes are not entries: no second t0, no advance
    data.add_deal(DEAL_IDS[6], [(T0 - D, lead, 1), (T0 + D, lead, 2), (T0 + 2 * D, lead, 3)])
    load(engine, data)

    facts = run_and_read(engine, REPORT, data.tenant_id, *WEEK)

    assert facts == expected(data, *WEEK)
    assert set(facts) == {(s.pipeline_id, s.stage_id) for s in data.stages.values() if s.kind == "open"}
    assert counts(stage_row(facts, lead)) == (5, 4, 2)  # deals 0, 2, 3, 4, 5; 3 and 4 lost
    assert stage_row(facts, lead)["conversion_rate"] == Decimal("0.8000")
    assert stage_row(facts, lead)["avg_days_to_advance"] == Decimal("2.25")  # (2 + 1 + 1 + 5) / 4
    assert counts(stage_row(facts, qualified)) == (2, 0, 0)  # deals 1 and 2
    assert stage_row(facts, qualified)["conversion_rate"] == Decimal("0")
    assert stage_row(facts, qualified)["avg_days_to_advance"] is None
    assert counts(stage_row(facts, proposal)) == (1, 0, 0)


def test_moves_between_pipelines_and_pipeline_filter(engine):
    data, (lead, qualified, _proposal, won, _lost), (renewal, renewal_won, renewal_lost) = two_pipelines(3)
    # lead -> the other pipeline's won stage: not an advance of lead (other pipeline)
    data.add_deal(DEAL_IDS[0], [(T0, lead, 1), (T0 + D, renewal, 1), (T0 + 2 * D, renewal_won, 1)])
    # lead -> the other pipeline's lost stage: lost counts in any pipeline
    data.add_deal(DEAL_IDS[1], [(T0, lead, 1), (T0 + D, renewal_lost, 1)])
    # came from the other pipeline into qualified, then advanced to won of its own pipeline
    data.add_deal(DEAL_IDS[2], [(T0 - D, renewal, 1), (T0 + H, qualified, 1), (T0 + 13 * H, won, 1)])
    load(engine, data)
    only_first = [PIPELINE_IDS[0]]

    facts = run_and_read(engine, REPORT, data.tenant_id, *WEEK, {"pipeline_ids": [str(PIPELINE_IDS[0])]})

    assert facts == expected(data, *WEEK, only_first)
    assert {p for p, _ in facts} == {PIPELINE_IDS[0]}
    assert counts(stage_row(facts, lead)) == (2, 0, 1)
    assert counts(stage_row(facts, qualified)) == (1, 1, 0)
    assert stage_row(facts, qualified)["avg_days_to_advance"] == Decimal("0.50")
    every = run_and_read(engine, REPORT, data.tenant_id, *WEEK)
    assert every == expected(data, *WEEK)
    assert counts(stage_row(every, renewal)) == (1, 1, 0)  # deal 0; deal 2 entered it before W


def test_deletions_restores_and_rows_at_the_bounds(engine):
    data, (lead, qualified, _proposal, won, _lost), _ = two_pipelines(3)
    start, end = WEEK
    # deleted before E: counts nowhere
    data.add_deal(
        DEAL_IDS[0], [(T0 + D, lead, 1), (T0 + 2 * D, qualified, 1), (T0 + 3 * D, qualified, 1, None, None, True)]
    )
    # deleted, then restored into qualified: live at E, and the restoring row is an entry
    data.add_deal(
        DEAL_IDS[1],
        [(T0 + D, lead, 1), (T0 + 2 * D, lead, 1, None, None, True), (T0 + 3 * D, qualified, 1, None, None, False)],
    )
    # deleted only at E (ignored): counts; its win exactly at E is ignored too
    data.add_deal(DEAL_IDS[2], [(T0 + D, qualified, 1), (end, won, 1), (end + H, won, 1, None, None, True)])
    # entered lead just before S: not in the cohort; its advance inside W does not matter
    data.add_deal(DEAL_IDS[3], [(start - H, lead, 1), (start + H, qualified, 1)])
    load(engine, data)

    facts = run_and_read(engine, REPORT, data.tenant_id, start, end)

    assert facts == expected(data, start, end)
    assert counts(stage_row(facts, lead)) == (1, 1, 0)  # deal 1
    assert stage_row(facts, lead)["avg_days_to_advance"] == Decimal("2.00")
    assert counts(stage_row(facts, qualified)) == (3, 0, 0)  # deals 1, 2, 3


def test_window_without_start_takes_the_first_entry_ever(engine):
    data, (lead, qualified, *_), _ = two_pipelines(3)
    data.add_deal(
        DEAL_IDS[0],
        [(T0 - 300 * D, lead, 1), (T0 - 200 * D, qualified, 1), (T0 - 100 * D, lead, 1), (T0 - 50 * D, qualified, 1)],
    )
    load(engine, data)

    facts = run_and_read(engine, REPORT, data.tenant_id, None, T0)

    assert facts == expected(data, None, T0)
    assert counts(stage_row(facts, lead)) == (1, 1, 0)
    assert stage_row(facts, lead)["avg_days_to_advance"] == Decimal("100.00")  # from the first entry ever


def test_empty_window_gives_zero_rows_with_null_rates(engine):
    data, first, second = two_pipelines(3)
    data.add_deal(DEAL_IDS[0], [(T0 - 20 * D, first[0], 1), (T0 - 10 * D, first[1], 1)])  # no close date
    data.add_deal(DEAL_IDS[1], [(T0 - 20 * D, second[0], 1, None, T0.date())])  # with a close date
    load(engine, data)

    facts = run_and_read(engine, REPORT, data.tenant_id, *WEEK)

    assert facts == expected(data, *WEEK)
    assert len(facts) == 4
    for fact in facts.values():
        assert counts(fact) == (0, 0, 0)
        assert fact["conversion_rate"] is None and fact["avg_days_to_advance"] is None


def test_rates_and_days_are_rounded_once_half_away_from_zero(engine):
    data, (lead, qualified, proposal, won, _lost), _ = two_pipelines(3)
    # 7 deals enter lead, 3 advance after 1h, 1h and 7h: mean 3h = 0.125 days -> 0.13
    # (rounding each deal first would give (0.04 + 0.04 + 0.29) / 3 -> 0.12)
    for i, hours in enumerate([1, 1, 7, None, None, None, None]):
        later = [] if hours is None else [(T0 + D + hours * H, proposal, 1)]
        data.add_deal(DEAL_IDS[i], [(T0 + D, lead, 1), *later])
    # 32 deals enter qualified, one advances: 1/32 = 0.03125 -> 0.0313
    for i in range(32):
        later = [(T0 + 3 * D, won, 1)] if i == 0 else []
        data.add_deal(DEAL_IDS[10 + i], [(T0 + 2 * D, qualified, 1), *later])
    load(engine, data)

    facts = run_and_read(engine, REPORT, data.tenant_id, *WEEK)

    assert facts == expected(data, *WEEK)
    assert stage_row(facts, lead)["conversion_rate"] == Decimal("0.4286")
    assert stage_row(facts, lead)["avg_days_to_advance"] == Decimal("0.13")
    assert stage_row(facts, qualified)["conversion_rate"] == Decimal("0.0313")
