"""Late rows not settled yet (real PostgreSQL): a so-far run made stale by a row dated ahead of its recording,
and stale runs that wait for rows recorded in the CRM's longest write before a refresh can see them.

The check is fleet-wide (one cursor for the module's database): each test looks at its own tenants only.
"""

from datetime import UTC, datetime, timedelta

from dyno_reports.core import config
from dyno_reports.freshness import refresh
from dyno_reports_tests.support.history import load, load_rows
from dyno_reports_tests.test_staleness import WEEKS, D, late_row, run_count, stale_of, succeeded, tenant_with_deal


def test_a_so_far_run_is_stale_for_a_row_recorded_before_its_valid_from(engine):
    mine, stages = tenant_with_deal()
    load(engine, mine)
    today = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    so_far = succeeded(engine, "win_loss", mine, (today - 3 * D, today + 4 * D), so_far=True)
    ended = succeeded(engine, "win_loss", mine, WEEKS[0])
    tomorrow = today + D  # recorded now, dated tomorrow: inside the so-far run's window, after its K
    load_rows(engine, mine, [late_row(mine, stages[0].stage_id, tomorrow)])
    found = stale_of(engine, mine)
    assert set(found) == {so_far} and ended not in found
    assert (found[so_far].late_rows, found[so_far].earliest_valid_from) == (1, tomorrow)


def test_a_run_stale_only_for_rows_recorded_just_now_waits_and_refresh_skips_it(engine):
    mine, stages = tenant_with_deal()
    load(engine, mine)
    old = succeeded(engine, "win_loss", mine, WEEKS[0])
    recorded = datetime.now(UTC)
    load_rows(engine, mine, [late_row(mine, stages[2].stage_id, WEEKS[0][0] + 4 * D, recorded_at=recorded)])
    stale = stale_of(engine, mine)[old]
    assert (stale.late_rows, stale.settled_rows, stale.unsettled_to) == (1, 0, recorded)
    assert stale.known_from == recorded + config.crm_max_write() and stale.waiting()
    known_from = f"{stale.known_from.astimezone(UTC):%Y-%m-%d %H:%M:%S}"
    assert stale.waiting_text() == f"waiting: rows recorded in the last 10 minutes; refresh from {known_from} UTC"
    assert stale.as_json()["waiting"] is True and not stale.waiting(as_known_at=recorded)

    before = run_count(engine)
    done = refresh.refresh(engine, tenant_ids=[mine.tenant_id])
    assert [(r.stale.run_id, r.result, r.waiting, r.failed) for r in done] == [(old, None, stale.waiting_text(), False)]
    assert run_count(engine) == before

    # given K at or after the row (the demo's own import), it does not wait: the new run sees it
    done = refresh.refresh(engine, tenant_ids=[mine.tenant_id], as_known_at=datetime.now(UTC))
    assert [r.stale.run_id for r in done] == [old] and done[0].result.succeeded
    assert done[0].summary().startswith("1 row changed") and stale_of(engine, mine) == {}


def test_a_run_with_settled_late_rows_does_not_wait(engine):
    mine, stages = tenant_with_deal()
    load(engine, mine)
    old = succeeded(engine, "win_loss", mine, WEEKS[0], as_known_at=datetime.now(UTC) - timedelta(hours=2))
    settled = datetime.now(UTC) - timedelta(hours=1)  # before the check's time minus the longest write
    unsettled = datetime.now(UTC)
    rows = [(WEEKS[0][0] + 4 * D, settled), (WEEKS[0][0] + 5 * D, unsettled)]
    load_rows(engine, mine, [late_row(mine, stages[2].stage_id, v, recorded_at=r) for v, r in rows])
    stale = stale_of(engine, mine)[old]
    assert (stale.late_rows, stale.settled_rows, stale.unsettled_to) == (2, 1, unsettled)
    assert not stale.waiting()  # refreshing now fixes the settled row; the other is found again later
