"""pipeline_overview against docs/definitions.md (real PostgreSQL): hand-made edge cases.

Its SQL against its reference on generated histories, and the checks every report gets
(options, definition, a tenant without pipelines): test_report_registry.py.
"""

from datetime import timedelta
from decimal import Decimal

from dyno_reports_tests.reference.pipeline_overview import expected
from dyno_reports_tests.support.facts import run_and_read
from dyno_reports_tests.support.history import (
    DEAL_IDS,
    PIPELINE_IDS,
    T0,
    load,
    two_pipelines,
)

REPORT = "pipeline_overview"
H = timedelta(hours=1)
D = timedelta(days=1)


def test_snapshot_and_entries_with_reopen_delete_and_move(engine):
    data, (lead, proposal, won, _lost), (renewal, *_rest) = two_pipelines()
    start, end = T0, T0 + 7 * D
    data.add_deal(DEAL_IDS[0], [(T0 - 3 * D, lead, 100), (T0 + D, proposal, 200)])
    # won before the window, reopened into lead inside it: an entry into lead in W
    data.add_deal(DEAL_IDS[1], [(T0 - 9 * D, lead, 50), (T0 - 5 * D, won, 50), (T0 + 2 * D, lead, 70)])
    # deleted before E: counts nowhere, although it entered proposal in W
    data.add_deal(
        DEAL_IDS[2], [(T0 - D, lead, 10), (T0 + H, proposal, 10), (T0 + 3 * D, proposal, 10, None, None, True)]
    )
    # moved to the other pipeline inside W
    data.add_deal(DEAL_IDS[3], [(T0 - 2 * D, proposal, 30), (T0 + 4 * D, renewal, 30)])
    # a row dated exactly E and one after: both ignored
    data.add_deal(DEAL_IDS[4], [(T0 + 5 * D, lead, 5), (end, proposal, 5), (end + D, won, 5)])
    # amount-only change: no new entry, the stint continues
    data.add_deal(DEAL_IDS[5], [(T0 - 10 * D, lead, 1), (T0 + 6 * D, lead, 3)])
    load(engine, data)

    facts = run_and_read(engine, REPORT, data.tenant_id, start, end)

    assert facts == expected(data, start, end)
    assert set(facts) == {(s.pipeline_id, s.stage_id) for s in (lead, proposal, renewal)}
    lead_row = facts[(lead.pipeline_id, lead.stage_id)]
    assert lead_row["deal_count"] == 3  # deals 1 (reopened), 4, 5
    assert lead_row["total_amount"] == Decimal("78.00")
    assert lead_row["avg_amount"] == Decimal("26.00")
    # stints started 5, 2 and 17 days before E (deal 5's amount change is not an entry)
    assert lead_row["avg_days_in_stage"] == Decimal("8.00")
    assert lead_row["entered_count"] == 2  # deals 1 and 4; deal 5 entered before W
    assert facts[(proposal.pipeline_id, proposal.stage_id)]["deal_count"] == 1
    assert facts[(proposal.pipeline_id, proposal.stage_id)]["entered_count"] == 1  # deal 2 is deleted
    assert facts[(renewal.pipeline_id, renewal.stage_id)]["entered_count"] == 1


def test_include_closed_and_pipeline_filter_and_empty_stages(engine):
    data, (lead, proposal, won, lost), (_renewal, _renewal_won, _renewal_lost) = two_pipelines()
    data.add_deal(DEAL_IDS[0], [(T0, lead, 100), (T0 + D, won, 100)])
    load(engine, data)
    end = T0 + 7 * D

    closed = run_and_read(
        engine, REPORT, data.tenant_id, T0, end, {"include_closed": True, "pipeline_ids": [str(PIPELINE_IDS[0])]}
    )

    assert closed == expected(data, T0, end, [PIPELINE_IDS[0]], include_closed=True)
    assert set(closed) == {(s.pipeline_id, s.stage_id) for s in (lead, proposal, won, lost)}
    empty = closed[(proposal.pipeline_id, proposal.stage_id)]
    assert (empty["deal_count"], empty["total_amount"], empty["avg_amount"], empty["avg_days_in_stage"]) == (
        0,
        Decimal("0"),
        None,
        None,
    )
    assert closed[(won.pipeline_id, won.stage_id)]["deal_count"] == 1


def test_window_without_start_counts_every_entry_before_end(engine):
    data, (lead, proposal, *_), _ = two_pipelines()
    data.add_deal(DEAL_IDS[0], [(T0 - 300 * D, lead, 1), (T0 - 200 * D, proposal, 1), (T0 - 100 * D, lead, 1)])
    load(engine, data)

    facts = run_and_read(engine, REPORT, data.tenant_id, None, T0)

    assert facts == expected(data, None, T0)
    assert facts[(lead.pipeline_id, lead.stage_id)]["entered_count"] == 1  # distinct deals, not entries
    assert facts[(lead.pipeline_id, lead.stage_id)]["avg_days_in_stage"] == Decimal("100.00")
