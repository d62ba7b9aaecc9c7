"""The stale check compares scopes and versions only where they changed (real PostgreSQL): a stage edit after
a check flags its scope's runs, a run made after the edit is current, a version bump flags, and a check with
nothing new writes nothing.

The check is fleet-wide (one cursor for the module's database): each test looks at its own tenants only.
"""

import json
from dataclasses import replace
from datetime import UTC, datetime
from decimal import Decimal

from sqlalchemy import select, text

from dyno_reports.freshness import staleness
from dyno_reports.reports import registry
from dyno_reports.storage.tables import stale_scope, stale_version
from dyno_reports_tests.support.history import load
from dyno_reports_tests.test_staleness import WEEKS, set_stage, stale_of, succeeded, tenant_with_deal

MONTHS = [(datetime(2025, m, 1, tzinfo=UTC), datetime(2025, m + 1, 1, tzinfo=UTC)) for m in (5, 6)]
STALE_TABLES = ("report_run_stale", "stale_scope", "stale_version")


WRITES = text(
    "SELECT relname, n_tup_ins + n_tup_upd + n_tup_del FROM pg_stat_xact_user_tables "
    "WHERE schemaname = 'reporting' AND relname = ANY (:tables)"
)


def writes_of_a_check(engine) -> dict[str, int]:
    """Rows a check inserts, updates or deletes in its finding and cursor tables (rolled back after). The
    counters may hold earlier transactions' counts not flushed yet: the check's are the difference."""
    with engine.connect() as conn, conn.begin() as transaction:
        before = {table: n for table, n in conn.execute(WRITES, {"tables": list(STALE_TABLES)})}
        staleness.check(conn)
        after = {table: n for table, n in conn.execute(WRITES, {"tables": list(STALE_TABLES)})}
        transaction.rollback()
    assert len(after) == len(STALE_TABLES)
    return {table: n - before[table] for table, n in after.items() if n != before[table]}


def test_a_stage_edit_after_a_check_flags_its_scopes_runs_and_a_later_run_is_current(engine, monkeypatch):
    monkeypatch.setenv("DYNO_CRM_MAX_WRITE_SECONDS", "0")  # no re-read window: a check sees only what is new
    data, stages = tenant_with_deal()
    load(engine, data)
    may = succeeded(engine, "weighted_pipeline", data, MONTHS[0])
    assert stale_of(engine, data) == {}
    assert writes_of_a_check(engine) == {}  # nothing new: nothing compared, nothing written

    set_stage(engine, data, stages[0].stage_id, probability=Decimal("0.35"))
    # one scope of one tenant changed: its digest saved, its one run flagged
    assert writes_of_a_check(engine) == {"stale_scope": 1, "report_run_stale": 1}
    found = stale_of(engine, data)
    assert set(found) == {may} and found[may].scope_changed
    june = succeeded(engine, "weighted_pipeline", data, MONTHS[1])  # made with the new digest
    assert set(stale_of(engine, data)) == {may}
    with engine.connect() as conn:
        digests = conn.execute(
            select(stale_scope.c.selection, stale_scope.c.digest).where(stale_scope.c.tenant_id == data.tenant_id)
        ).all()
        june_digest = conn.execute(text("SELECT scope_digest FROM reporting.report_run WHERE run_id = :r"), {"r": june})
        assert digests == [(None, june_digest.scalar_one())]

    set_stage(engine, data, stages[0].stage_id, probability=stages[0].probability)  # back as `may` read it
    found = stale_of(engine, data)
    assert set(found) == {june} and found[june].reasons() == ["stages changed"]


def test_a_scope_of_selected_pipelines_is_compared_when_its_tenants_stages_change(engine):
    data, stages = tenant_with_deal()
    load(engine, data)
    only = {"pipeline_ids": [str(stages[0].pipeline_id)]}
    selected = succeeded(engine, "weighted_pipeline", data, MONTHS[0], only)
    every = succeeded(engine, "weighted_pipeline", data, MONTHS[1])
    assert stale_of(engine, data) == {}
    with engine.connect() as conn:
        seen = conn.execute(select(stale_scope.c.selection).where(stale_scope.c.tenant_id == data.tenant_id))
        assert sorted(seen.scalars(), key=json.dumps) == sorted([None, only["pipeline_ids"]], key=json.dumps)
    set_stage(engine, data, stages[1].stage_id, kind="lost", probability=Decimal(0))
    assert set(stale_of(engine, data)) == {selected, every}


def test_a_version_bump_is_seen_once_and_flags_its_reports_runs(engine, monkeypatch):
    monkeypatch.setenv("DYNO_CRM_MAX_WRITE_SECONDS", "0")
    mine, _ = tenant_with_deal()
    load(engine, mine)
    win_loss = succeeded(engine, "win_loss", mine, WEEKS[0])
    stale_of(engine, mine)
    monkeypatch.setitem(registry(), "win_loss", replace(registry()["win_loss"], report_version=7))
    found = stale_of(engine, mine)
    assert found[win_loss].reasons() == ["report version 1 -> 7"]
    with engine.connect() as conn:
        seen = conn.execute(select(stale_version.c.report_version).where(stale_version.c.report_type == "win_loss"))
        assert seen.scalar_one() == 7
    assert writes_of_a_check(engine) == {}  # the bump is seen: the next check compares nothing
    monkeypatch.setitem(registry(), "win_loss", replace(registry()["win_loss"], report_version=1))
    assert stale_of(engine, mine) == {}
