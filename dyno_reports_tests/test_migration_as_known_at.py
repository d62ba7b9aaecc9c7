"""Migration 0011 on databases with history and runs (real PostgreSQL): history rows recorded at their valid_from,
old runs knowing what a run on unchanged data records now (K = generated_at, version 1, their scope's digest) and
not stale on unchanged data; a CRM's own recorded_at kept; the downgrade restores 0010's schema.
"""

import uuid
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import create_engine, insert, text

from dyno_reports.engine import executor, run_records, run_request
from dyno_reports.storage import drift, migrate, tables
from dyno_reports_tests.reference.common import scope_digest
from dyno_reports_tests.support.history import DEAL_IDS, T0, history_values, load, two_pipelines
from dyno_reports_tests.test_migrations import latest_views

D = timedelta(days=1)
JUNE = (datetime(2025, 6, 1, tzinfo=UTC), datetime(2025, 7, 1, tzinfo=UTC))
KNEW = ("known_at", "report_version", "scope_digest")
# The rows that make a run stale (docs/definitions.md, "As known at"): its tenant's, dated before E, recorded after K.
LATE_FOR_RUN = """
SELECT count(*) FROM reporting.report_run r JOIN crm.deal_history h ON h.tenant_id = r.tenant_id
WHERE r.run_id = :r AND h.valid_from < r.period_end AND h.recorded_at > r.known_at
"""


@pytest.fixture
def engine_at_0010(database_factory):
    engine = create_engine(database_factory("as_known_at"))
    migrate.upgrade(engine, "0010")
    yield engine
    engine.dispose()


def load_before_0011(engine, data) -> None:
    """The tenant as a loader wrote it before recorded_at existed."""
    load(engine, replace(data, rows=[]))
    with engine.begin() as conn:
        rows = [
            {k: v for k, v in row.items() if k != "recorded_at"} for row in history_values(data.tenant_id, data.rows)
        ]
        conn.execute(insert(tables.deal_history), rows)


def old_header(request: run_request.RunRequest, status: str, generated_at: datetime) -> dict:
    """A header as the code before 0011 wrote it: no known_at, report_version or scope_digest."""
    values = run_records.header_values(request, uuid.uuid4(), status) | {"generated_at": generated_at}
    if status == "FAILED":
        values["error_message"] = "a failure"
    return {name: value for name, value in values.items() if name not in KNEW}


def test_0011_backfills_history_and_runs_so_that_old_runs_are_current_on_unchanged_data(engine_at_0010):
    engine = engine_at_0010
    data, (lead, proposal, won, _lost), (renewal, *_) = two_pipelines()
    data.add_deal(DEAL_IDS[0], [(T0 - 2 * D, lead, 100), (T0 + D, proposal, 120), (T0 + 3 * D, won, 120)])
    data.add_deal(DEAL_IDS[1], [(T0 - D, renewal, 30), (T0 + 25 * D, renewal, 35)])
    load_before_0011(engine, data)
    first, _second = data.pipelines
    asked = {
        "every pipeline": ("weighted_pipeline", None, False),
        "one pipeline": ("win_loss", {"pipeline_ids": [str(first)]}, False),
        "so far": ("pipeline_overview", None, True),  # run on June 20 for June: E after it ran
    }
    with engine.connect() as conn:
        requests = {
            name: run_request.build_request(
                conn, report, data.tenant_id, period_start=JUNE[0], period_end=JUNE[1], options=options,
                so_far=so_far, now=datetime(2025, 6, 20, tzinfo=UTC) if so_far else None,
            )
            for name, (report, options, so_far) in asked.items()
        }  # fmt: skip
    generated = {
        "every pipeline": JUNE[1] + D,
        "one pipeline": JUNE[1] + 2 * D,
        "so far": datetime(2025, 6, 20, 1, tzinfo=UTC),
    }
    old = {name: old_header(request, "SUCCEEDED", generated[name]) for name, request in requests.items()}
    failed = old_header(requests["every pipeline"], "FAILED", JUNE[1] + 3 * D)
    with engine.begin() as conn:
        conn.execute(insert(tables.report_run), list(old.values()))
        conn.execute(insert(tables.report_run).values(failed))

    migrate.upgrade(engine, "0011")

    with engine.connect() as conn:
        history = conn.execute(
            text("SELECT count(*), count(*) FILTER (WHERE recorded_at = valid_from) FROM crm.deal_history")
        ).one()
        runs = {row.run_id: row for row in conn.execute(text("SELECT * FROM reporting.report_run"))}
        late = {
            name: conn.execute(text(LATE_FOR_RUN), {"r": header["run_id"]}).scalar_one() for name, header in old.items()
        }
        so_far = dict(conn.execute(text("SELECT run_id, so_far FROM reporting.report_run_latest")).all())
    assert history == (len(data.rows), len(data.rows))
    for name, header in old.items():
        recorded = runs[header["run_id"]]
        assert (recorded.known_at, recorded.report_version) == (header["generated_at"], 1), name
        new = executor.execute(engine, requests[name])  # the same question, on unchanged data, after 0011
        assert new.succeeded and recorded.scope_digest == new.scope_digest, name
    assert runs[old["one pipeline"]["run_id"]].scope_digest == scope_digest(data, [first])
    assert runs[old["every pipeline"]["run_id"]].scope_digest == scope_digest(data, None)
    assert [getattr(runs[failed["run_id"]], column) for column in KNEW] == [None] * 3
    # not stale on unchanged data: no row dated before E recorded after K; the so-far run only by the row dated
    # after it ran (June 27), which it could not have seen: it answered "so far"
    assert late == {"every pipeline": 0, "one pipeline": 0, "so far": 1}
    assert so_far[old["so far"]["run_id"]] is True and so_far[old["every pipeline"]["run_id"]] is False


def test_0011_downgrade_restores_0010s_views_and_columns_and_upgrades_again(engine_at_0010):
    engine = engine_at_0010
    views = latest_views(engine)
    migrate.upgrade(engine, "0011")
    after = latest_views(engine)
    migrate.downgrade(engine, "0010")
    with engine.connect() as conn:
        columns = set(
            conn.execute(
                text(
                    "SELECT table_name || '.' || column_name FROM information_schema.columns"
                    " WHERE column_name IN ('recorded_at', 'known_at', 'report_version', 'scope_digest')"
                )
            ).scalars()
        )
        index = conn.execute(text("SELECT to_regclass('crm.deal_history_tenant_id_recorded_at_idx')")).scalar()
    assert latest_views(engine) == views and columns == set() and index is None
    kept = {name: (options, grants) for name, (_sql, options, _comment, grants) in views.items()}
    assert {name: (options, grants) for name, (_sql, options, _comment, grants) in after.items()} == kept
    assert migrate.upgrade(engine) == migrate.head_revision() and drift.check(engine) == []


def test_0011_keeps_a_crms_own_recorded_at_as_it_is(database_factory):
    engine = create_engine(database_factory("crm_recorded_at"))
    contract = migrate.MIGRATIONS / "versions" / "0001_crm_contract_and_reporting_core.py"
    assert "CREATE TABLE IF NOT EXISTS crm.deal_history" in contract.read_text()
    try:
        with engine.begin() as conn:  # the CRM's schema: its history has recorded_at already, its own default
            conn.exec_driver_sql("CREATE SCHEMA crm")
            conn.exec_driver_sql(
                "CREATE TABLE crm.deal_history (tenant_id uuid NOT NULL, deal_id uuid NOT NULL,"
                " valid_from timestamptz NOT NULL, stage_id uuid NOT NULL, owner_principal_id uuid NOT NULL,"
                " amount numeric(18,2) NOT NULL, expected_close_date date, is_deleted boolean NOT NULL DEFAULT false,"
                " recorded_at timestamptz NOT NULL DEFAULT clock_timestamp(),"
                " PRIMARY KEY (tenant_id, deal_id, valid_from))"
            )
            conn.exec_driver_sql(
                "INSERT INTO crm.deal_history VALUES (gen_random_uuid(), gen_random_uuid(), '2025-06-01',"
                " gen_random_uuid(), gen_random_uuid(), 10, NULL, false, '2025-06-30')"
            )
        migrate.upgrade(engine)
        with engine.connect() as conn:
            kept = conn.execute(text("SELECT recorded_at FROM crm.deal_history")).scalar_one()
            default = conn.execute(
                text(
                    "SELECT column_default FROM information_schema.columns"
                    " WHERE table_schema = 'crm' AND table_name = 'deal_history' AND column_name = 'recorded_at'"
                )
            ).scalar_one()
            index = conn.execute(text("SELECT to_regclass('crm.deal_history_tenant_id_recorded_at_idx')")).scalar()
        assert kept == datetime(2025, 6, 30, tzinfo=UTC) and default == "clock_timestamp()" and index is not None
        migrate.downgrade(engine, "0010")
        with engine.connect() as conn:
            assert conn.execute(text("SELECT recorded_at FROM crm.deal_history")).scalar_one() == kept
    finally:
        engine.dispose()
