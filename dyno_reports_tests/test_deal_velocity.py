"""deal_velocity against docs/definitions.md (real PostgreSQL): hand-made edge cases.

Its SQL against its reference on generated histories, and the checks every report gets
(options, definition, a tenant without pipelines): test_report_registry.py.
"""

from datetime import timedelta
from decimal import Decimal
from uuid import UUID

from dyno_reports_tests.reference.deal_velocity import expected
from dyno_reports_tests.support.facts import run_and_read, stage_row
from dyno_reports_tests.support.history import (
    DEAL_IDS,
    PIPELINE_IDS,
    T0,
    Stage,
    load,
    two_pipelines,
)

REPORT = "deal_velocity"
US = timedelta(microseconds=1)
H = timedelta(hours=1)
D = timedelta(days=1)
MONTH = (T0, T0 + 30 * D)
STAGE_MARK_ID = UUID(int=0)  # sql_common.STAGE_MARK_IN_WINDOW


def metrics(fact: dict) -> tuple:
    return fact["exited_count"], fact["avg_days"], fact["p50_days"], fact["p90_days"]


def test_every_stint_counts_with_reopen_delete_restore_and_moves(engine):
    data, (lead, qualified, proposal, won, lost), (renewal, renewal_won, _) = two_pipelines(3)
    start, end = MONTH
    # repeated visits of lead: 3 days, 2 days and, reopened after won, 1 day; qualified 2 days
    data.add_deal(
        DEAL_IDS[0],
        [
            (T0 - 2 * D, lead, 1),
            (T0 + D, qualified, 1),
            (T0 + 3 * D, lead, 1),
            (T0 + 5 * D, won, 1),
            (T0 + 6 * D, lead, 1),
            (T0 + 7 * D, qualified, 1),
        ],
    )
    # exit before S: not counted; skipped to proposal, whose stint is still open at E: not counted
    data.add_deal(DEAL_IDS[1], [(T0 - 10 * D, lead, 1), (T0 - H, proposal, 1)])
    # exit exactly at S counts (1 day); an exit exactly at E does not (the stint is open at E)
    data.add_deal(DEAL_IDS[2], [(T0 - D, lead, 1), (T0, qualified, 1), (end, won, 1)])
    # deleted before E: counts nowhere
    data.add_deal(DEAL_IDS[3], [(T0, lead, 1), (T0 + D, qualified, 1), (T0 + 2 * D, qualified, 1, None, None, True)])
    # deleted and restored in lead: those rows are no exits, the stint lasts 4 days
    data.add_deal(
        DEAL_IDS[4],
        [
            (T0, lead, 1),
            (T0 + D, lead, 1, None, None, True),
            (T0 + 2 * D, lead, 1, None, None, False),
            (T0 + 4 * D, qualified, 1),
        ],
    )
    # moved to the other pipeline (lead: 6 days), then won there (renewal: 2 days)
    data.add_deal(DEAL_IDS[5], [(T0, lead, 1), (T0 + 6 * D, renewal, 1), (T0 + 8 * D, renewal_won, 1)])
    # amount-only changes: no exit
    data.add_deal(DEAL_IDS[6], [(T0 - D, lead, 1), (T0 + D, lead, 2, None, T0.date())])
    # flipped won -> lost, reopened into qualified (2 days): closed stages have no rows
    data.add_deal(
        DEAL_IDS[7], [(T0 - 3 * D, won, 1), (T0 + D, lost, 1), (T0 + 2 * D, qualified, 1), (T0 + 4 * D, proposal, 1)]
    )
    load(engine, data)

    facts = run_and_read(engine, REPORT, data.tenant_id, start, end)

    assert facts == expected(data, start, end)
    assert set(facts) == {(s.pipeline_id, s.stage_id) for s in data.stages.values() if s.kind == "open"}
    # lead: 3, 2, 1 (deal 0) + 4 (deal 4) + 6 (deal 5), and deal 2's 1 day
    assert metrics(stage_row(facts, lead)) == (6, Decimal("2.83"), Decimal("2.50"), Decimal("5.00"))
    assert metrics(stage_row(facts, qualified)) == (2, Decimal("2.00"), Decimal("2.00"), Decimal("2.00"))
    assert metrics(stage_row(facts, proposal)) == (0, None, None, None)
    assert metrics(stage_row(facts, renewal)) == (1, Decimal("2.00"), Decimal("2.00"), Decimal("2.00"))


def test_pipeline_filter_and_window_without_start(engine):
    data, (lead, qualified, *_), (renewal, renewal_won, _) = two_pipelines(3)
    data.add_deal(
        DEAL_IDS[0],
        [
            (T0 - 400 * D, lead, 1),
            (T0 - 300 * D, qualified, 1),
            (T0 - 100 * D, renewal, 1),
            (T0 - 40 * D, renewal_won, 1),
        ],
    )
    load(engine, data)
    only_first = [PIPELINE_IDS[0]]

    facts = run_and_read(engine, REPORT, data.tenant_id, None, T0, {"pipeline_ids": [str(PIPELINE_IDS[0])]})

    assert facts == expected(data, None, T0, only_first)
    assert {p for p, _ in facts} == {PIPELINE_IDS[0]}
    assert metrics(stage_row(facts, lead)) == (1, Decimal("100.00"), Decimal("100.00"), Decimal("100.00"))
    assert metrics(stage_row(facts, qualified)) == (1, Decimal("200.00"), Decimal("200.00"), Decimal("200.00"))


def test_empty_window_gives_zero_rows(engine):
    data, (lead, qualified, *_), _ = two_pipelines(3)
    data.add_deal(DEAL_IDS[0], [(T0 - 20 * D, lead, 1), (T0 - 10 * D, qualified, 1)])
    load(engine, data)

    facts = run_and_read(engine, REPORT, data.tenant_id, *MONTH)

    assert facts == expected(data, *MONTH)
    assert len(facts) == 4
    assert all(metrics(fact) == (0, None, None, None) for fact in facts.values())


def test_percentiles_interpolate_and_round_once_half_away_from_zero(engine):
    data, (lead, qualified, proposal, *_), _ = two_pipelines(3)
    # lead: stints of 1h and 5h -> mean and median 3h = 0.125 days -> 0.13; p90 4.6h -> 0.19
    for i, hours in enumerate([1, 5]):
        data.add_deal(DEAL_IDS[i], [(T0, lead, 1), (T0 + hours * H, qualified, 1)])
    # qualified: 1, 2, 3, 4 hours -> p50 2.5h (0.104 -> 0.10), p90 3.7h (0.154 -> 0.15)
    for i, hours in enumerate([1, 2, 3, 4]):
        data.add_deal(DEAL_IDS[10 + i], [(T0, qualified, 1), (T0 + hours * H, proposal, 1)])
    load(engine, data)

    facts = run_and_read(engine, REPORT, data.tenant_id, *MONTH)

    assert facts == expected(data, *MONTH)
    assert metrics(stage_row(facts, lead)) == (2, Decimal("0.13"), Decimal("0.13"), Decimal("0.19"))
    assert metrics(stage_row(facts, qualified)) == (4, Decimal("0.10"), Decimal("0.10"), Decimal("0.15"))


def test_percentiles_are_exact_where_double_precision_is_not(engine):
    """Stints of B - 1 microsecond and B, B = 3000.005 days: the exact mean and p50 (B - 0.5us) and
    p90 (B - 0.1us) round down to 3000.00. percentile_cont on double precision gives 3000.01
    (p90 over the lengths in days, p50 over the lengths in seconds)."""
    data, (lead, qualified, *_), _ = two_pipelines(3)
    length = 3000 * D + 432 * timedelta(seconds=1)  # 3000.005 days
    exit_at = T0 + D
    data.add_deal(DEAL_IDS[0], [(exit_at - length + US, lead, 1), (exit_at, qualified, 1)])
    data.add_deal(DEAL_IDS[1], [(exit_at - length, lead, 1), (exit_at, qualified, 1)])
    load(engine, data)

    facts = run_and_read(engine, REPORT, data.tenant_id, *MONTH)

    assert facts == expected(data, *MONTH)
    assert metrics(stage_row(facts, lead)) == (2, Decimal("3000.00"), Decimal("3000.00"), Decimal("3000.00"))


def test_a_stage_whose_id_is_the_in_window_mark(engine):
    """The pass marks a next row in W with the nil uuid (STAGE_MARK_IN_WINDOW): a stage with that id
    only adds entries the stint step does not need, never drops one it needs."""
    data, (lead, qualified, *_), _ = two_pipelines(2)
    nil = Stage(STAGE_MARK_ID, PIPELINE_IDS[0], 9, "open", Decimal("0.5"))
    data.stages[nil.stage_id] = nil
    start, end = MONTH
    # nil's next row before S is another stage (the entry is not needed), then a stint exits in W
    data.add_deal(DEAL_IDS[0], [(T0 - 5 * D, nil, 1), (T0 - 3 * D, lead, 1), (T0 + D, qualified, 1)])
    # an entry whose next row before S is in nil (taken though not needed), then nil exits in W
    data.add_deal(DEAL_IDS[1], [(T0 - 5 * D, lead, 1), (T0 - 3 * D, nil, 1), (T0 + 2 * D, qualified, 1)])
    # a stint in nil that goes on past its entry, exited in W
    data.add_deal(DEAL_IDS[2], [(T0 - 4 * D, nil, 1), (T0 - 2 * D, nil, 2), (T0 + D, lead, 1), (T0 + 3 * D, nil, 1)])
    load(engine, data)

    facts = run_and_read(engine, REPORT, data.tenant_id, start, end)

    assert facts == expected(data, start, end)
    assert metrics(stage_row(facts, nil)) == (2, Decimal("5.00"), Decimal("5.00"), Decimal("5.00"))
    assert metrics(stage_row(facts, lead)) == (2, Decimal("3.00"), Decimal("3.00"), Decimal("3.80"))


def test_a_stint_with_updates_before_the_window_starts_at_its_entry(engine):
    data, (lead, qualified, proposal, *_), _ = two_pipelines(3)
    start, end = MONTH
    # entered lead before S, amount and owner changed before S and in W, exited in W: 6 days
    data.add_deal(
        DEAL_IDS[0], [(T0 - 5 * D, lead, 1), (T0 - 3 * D, lead, 2), (T0 - H, lead, 3), (T0 + D, qualified, 3)]
    )
    # entered qualified before S, changed in W, exited in W: 4 days
    data.add_deal(DEAL_IDS[1], [(T0 - 2 * D, qualified, 1), (T0 + D, qualified, 2), (T0 + 2 * D, proposal, 2)])
    load(engine, data)

    facts = run_and_read(engine, REPORT, data.tenant_id, start, end)

    assert facts == expected(data, start, end)
    assert metrics(stage_row(facts, lead)) == (1, Decimal("6.00"), Decimal("6.00"), Decimal("6.00"))
    assert metrics(stage_row(facts, qualified)) == (1, Decimal("4.00"), Decimal("4.00"), Decimal("4.00"))
