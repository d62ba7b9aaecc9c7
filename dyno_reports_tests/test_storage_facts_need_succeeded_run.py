"""Facts only of a run SUCCEEDED at commit, checked once per statement (migration 0006), on real PostgreSQL:
`reporting.report_run` and `report_pipeline_overview_fact` written directly, as the superuser and as the writer
role, two sessions for the lock, and the downgrade to 0005's per-row deferred trigger on a database of its own."""

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta

import pytest
from sqlalchemy import Connection, Engine, create_engine, insert, text, update
from sqlalchemy.exc import DBAPIError

from dyno_reports.engine import executor, run_records
from dyno_reports.engine.run_request import RunRequest, build_request
from dyno_reports.storage import migrate
from dyno_reports.storage.tables import pipeline_overview_fact, report_run
from dyno_reports_tests.support.history import DEAL_IDS, PIPELINE_IDS, T0, TenantData, load
from dyno_reports_tests.support.knowledge import A_SCOPE_DIGEST

END = T0 + timedelta(days=7)
NOT_SUCCEEDED = "cannot be committed: the run is not SUCCEEDED"
WRITER = "dyno_report_writer"


@pytest.fixture(scope="module")
def tenant(engine) -> TenantData:
    data = TenantData()
    lead, *_ = data.add_pipeline(PIPELINE_IDS[0], ["open", "won", "lost"])
    data.add_deal(DEAL_IDS[0], [(T0, lead, 10)])
    load(engine, data)
    return data


@pytest.fixture
def run_request(engine, tenant) -> RunRequest:
    with engine.connect() as conn:
        return build_request(conn, "pipeline_overview", tenant.tenant_id, period_start=T0, period_end=END)


def add_header(conn: Connection, req: RunRequest, status: str) -> uuid.UUID:
    run_id = uuid.uuid4()
    values = run_records.header_values(req, run_id, status) | ({"error_message": "x"} if status == "FAILED" else {})
    values |= {"scope_digest": A_SCOPE_DIGEST}  # a writer that succeeds its run later says what it read at once
    conn.execute(insert(report_run).values(**values))
    return run_id


def add_facts(conn: Connection, req: RunRequest, run_id: uuid.UUID, rows: int = 1) -> None:
    """`rows` fact rows in one INSERT statement."""
    conn.execute(
        insert(pipeline_overview_fact).values(
            [
                {
                    "run_id": run_id,
                    "tenant_id": req.tenant_id,
                    "pipeline_id": PIPELINE_IDS[0],
                    "stage_id": uuid.uuid4(),
                    "deal_count": 1,
                    "total_amount": 1,
                    "entered_count": 1,
                }
                for _ in range(rows)
            ]
        )
    )


def set_status(conn: Connection, run_id: uuid.UUID, status: str) -> None:
    values = {"status": status} | ({"error_message": "x"} if status == "FAILED" else {})
    conn.execute(update(report_run).where(report_run.c.run_id == run_id).values(**values))


def fact_count(engine: Engine, run_id: uuid.UUID) -> int:
    with engine.connect() as conn:
        return conn.execute(
            text("SELECT count(*) FROM reporting.report_pipeline_overview_fact WHERE run_id = :r"), {"r": run_id}
        ).scalar_one()


def committed_header(engine: Engine, req: RunRequest, status: str) -> uuid.UUID:
    with engine.begin() as conn:
        return add_header(conn, req, status)


def test_facts_of_an_in_progress_run_are_refused_at_commit_not_before(engine, run_request):
    conn = engine.connect()
    try:
        transaction = conn.begin()
        run_id = add_header(conn, run_request, "IN_PROGRESS")
        add_facts(conn, run_request, run_id, rows=3)  # accepted for now: the run may still succeed
        with pytest.raises(DBAPIError, match=NOT_SUCCEEDED):
            transaction.commit()
    finally:
        conn.close()
    assert fact_count(engine, run_id) == 0


def test_an_in_progress_run_that_succeeds_before_commit_keeps_its_facts(engine, run_request):
    """The pattern of the executor before 0006 (header, facts, then SUCCEEDED), still allowed."""
    with engine.begin() as conn:
        run_id = add_header(conn, run_request, "IN_PROGRESS")
        add_facts(conn, run_request, run_id, rows=2)
        set_status(conn, run_id, "SUCCEEDED")
    assert fact_count(engine, run_id) == 2


@pytest.mark.parametrize("status", ["IN_PROGRESS", "SUCCEEDED"])
def test_a_run_failed_after_its_facts_went_in_cannot_keep_them(engine, run_request, status):
    """Facts pass at once for a SUCCEEDED run; the commit check still covers a later change of its status
    (possible only with the finality trigger off, as here)."""
    with pytest.raises(DBAPIError, match=NOT_SUCCEEDED), engine.begin() as conn:
        conn.exec_driver_sql("ALTER TABLE reporting.report_run DISABLE TRIGGER report_run_status_is_final")
        run_id = add_header(conn, run_request, status)
        add_facts(conn, run_request, run_id)
        set_status(conn, run_id, "FAILED")
    assert fact_count(engine, run_id) == 0


def test_facts_of_a_failed_run_are_refused_by_the_insert_itself(engine, run_request):
    run_id = committed_header(engine, run_request, "FAILED")
    with engine.connect() as conn, conn.begin(), pytest.raises(DBAPIError, match=NOT_SUCCEEDED):
        add_facts(conn, run_request, run_id)


def test_facts_of_an_earlier_in_progress_run_need_it_succeeded_in_the_same_transaction(engine, run_request):
    left_over = committed_header(engine, run_request, "IN_PROGRESS")  # as a cut-off transaction leaves it
    with pytest.raises(DBAPIError, match=NOT_SUCCEEDED), engine.begin() as conn:
        add_facts(conn, run_request, left_over)
    with engine.begin() as conn:
        add_facts(conn, run_request, left_over)
        set_status(conn, left_over, "SUCCEEDED")
    assert fact_count(engine, left_over) == 1


def test_facts_of_a_succeeded_run_pass(engine, run_request):
    run_id = committed_header(engine, run_request, "SUCCEEDED")
    with engine.begin() as conn:
        add_facts(conn, run_request, run_id, rows=2)
    assert fact_count(engine, run_id) == 2


def test_the_check_runs_once_per_statement_not_per_row(engine, run_request):
    with engine.connect() as conn, conn.begin() as transaction:
        conn.exec_driver_sql("SET LOCAL track_functions = 'pl'")
        run_id = add_header(conn, run_request, "SUCCEEDED")
        add_facts(conn, run_request, run_id, rows=5)
        calls = conn.execute(
            text("SELECT funcname, calls FROM pg_stat_xact_user_functions WHERE schemaname = 'reporting'")
        ).all()
        transaction.rollback()
    assert calls == [("facts_require_succeeded_runs", 1)]


@contextmanager
def as_writer(engine: Engine, tenant_id: uuid.UUID) -> Iterator[Connection]:
    with engine.connect() as conn, conn.begin():
        conn.exec_driver_sql(f"SET LOCAL ROLE {WRITER}")
        run_records.enter_tenant(conn, tenant_id)
        yield conn


def test_no_tenant_setting_hides_a_run_from_the_commit_check(engine, run_request):
    """The writer, bound by row-level security, switches tenants before commit: the check still sees its run."""
    with pytest.raises(DBAPIError, match=NOT_SUCCEEDED), as_writer(engine, run_request.tenant_id) as conn:
        run_id = add_header(conn, run_request, "IN_PROGRESS")
        add_facts(conn, run_request, run_id)
        conn.execute(text("SELECT set_config('dyno.tenant_id', :t, true)"), {"t": str(uuid.uuid4())})
    assert fact_count(engine, run_id) == 0


def test_the_writer_may_add_facts_to_its_in_progress_run_then_succeed_it(engine, run_request):
    """The statement check runs as the caller: the writer, bound by row-level security, touches its own run."""
    with as_writer(engine, run_request.tenant_id) as conn:
        run_id = add_header(conn, run_request, "IN_PROGRESS")
        add_facts(conn, run_request, run_id, rows=2)
        set_status(conn, run_id, "SUCCEEDED")
    assert fact_count(engine, run_id) == 2


def test_the_writer_runs_the_executor_through_the_check(engine, run_request, monkeypatch):
    monkeypatch.setenv("DYNO_EXECUTOR_ROLE", WRITER)
    result = executor.execute(engine, run_request)
    assert result.succeeded and fact_count(engine, result.run_id) == result.fact_rows > 0


def test_facts_of_an_in_progress_run_hold_it_until_commit(engine, run_request):
    """Another session cannot fail the run between the check and the commit: the check locked it."""
    left_over = committed_header(engine, run_request, "IN_PROGRESS")
    with engine.connect() as conn, conn.begin() as transaction:
        add_facts(conn, run_request, left_over)
        with engine.connect() as other, other.begin():
            other.exec_driver_sql("SET LOCAL lock_timeout = '200ms'")
            with pytest.raises(DBAPIError, match="lock timeout"):
                set_status(other, left_over, "FAILED")
        transaction.rollback()


def test_the_downgrade_restores_the_per_row_check(database_factory):
    other = create_engine(database_factory("facts_check_downgrade"))
    try:
        migrate.upgrade(other)
        assert migrate.downgrade(other, "0005") == "0005"
        with other.connect() as conn:
            kinds = conn.execute(
                text(
                    "SELECT DISTINCT t.tgname, t.tgconstraint <> 0, t.tgdeferrable, t.tgtype & 1 = 1"
                    " FROM pg_trigger t WHERE t.tgname LIKE 'facts_need%' OR t.tgname LIKE 'report_run_facts%'"
                )
            ).all()
        assert kinds == [("facts_need_succeeded_run", True, True, True)]  # constraint, deferrable, FOR EACH ROW
        assert migrate.upgrade(other) == migrate.head_revision()
    finally:
        other.dispose()
