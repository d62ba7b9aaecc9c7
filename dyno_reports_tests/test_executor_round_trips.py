"""The executor's round trips and transaction settings (real PostgreSQL): what one run sends, counted."""

import dataclasses
from collections.abc import Iterator
from datetime import timedelta

import pytest
from sqlalchemy import Engine, event

from dyno_reports.engine import executor, reuse, run_records, run_request
from dyno_reports.reports import get_report
from dyno_reports_tests.support.history import DEAL_IDS, PIPELINE_IDS, T0, TenantData, load

END = T0 + timedelta(days=7)


@pytest.fixture(scope="module")
def tenant(engine) -> TenantData:
    data = TenantData()
    lead, proposal, _won, _lost = data.add_pipeline(PIPELINE_IDS[0], ["open", "open", "won", "lost"])
    for i, deal_id in enumerate(DEAL_IDS[:4]):
        data.add_deal(deal_id, [(T0 - timedelta(days=i), lead, 10 * i), (T0 + timedelta(hours=1), proposal, 10 * i)])
    load(engine, data)
    return data


@pytest.fixture
def round_trips(engine: Engine) -> Iterator[list[str]]:
    """What the engine's connections send: BEGIN, each statement, COMMIT / ROLLBACK (one round trip each)."""
    sent: list[str] = []
    listeners = {
        "begin": lambda _conn: sent.append("BEGIN"),
        "commit": lambda _conn: sent.append("COMMIT"),
        "rollback": lambda _conn: sent.append("ROLLBACK"),
        "before_cursor_execute": lambda _conn, _cursor, statement, *_args: sent.append(statement),
    }
    for name, listener in listeners.items():
        event.listen(engine, name, listener)
    yield sent
    for name, listener in listeners.items():
        event.remove(engine, name, listener)


def request(engine: Engine, tenant: TenantData, report_type: str = "pipeline_overview") -> run_request.RunRequest:
    with engine.connect() as conn:
        return run_request.build_request(conn, report_type, tenant.tenant_id, period_start=T0, period_end=END)


def test_a_run_is_begin_two_statements_and_commit(engine, tenant, round_trips):
    run_request = request(engine, tenant)
    with engine.connect() as conn:
        round_trips.clear()
        result = executor.execute(engine, run_request, connection=conn)
        assert not conn.in_transaction()  # committed: the connection is ready for the next run
    assert result.succeeded and result.fact_rows == 2
    assert result.headline == {"deal_count": 4, "total_amount": 60, "entered_count": 5}  # deal 0 entered lead at S too
    assert len(round_trips) == 4, round_trips  # 10 once: settings, role, header, facts, headline, SUCCEEDED apart
    begin, settings, facts, commit = round_trips
    assert (begin, commit) == ("BEGIN", "COMMIT")
    assert "set_config('dyno.tenant_id'" in settings and "client_connection_check_interval" in settings
    assert "'plan_cache_mode', 'force_custom_plan'" in settings  # no generic plan on a reused connection
    assert (
        "INSERT INTO reporting.report_run" in facts and "INSERT INTO reporting.report_pipeline_overview_fact" in facts
    )
    assert not [sent for sent in round_trips if sent.startswith("UPDATE")]  # the header is inserted SUCCEEDED
    assert "FROM crm.tenant" in facts and "pg_advisory" not in settings  # the tenant checked on the facts' snapshot


def test_with_reuse_a_run_takes_the_question_lock_and_looks_once_for_an_answer(engine, tenant, round_trips):
    run_request = request(engine, tenant)
    with engine.connect() as conn:
        round_trips.clear()
        result = executor.execute(engine, run_request, connection=conn, reuse=reuse.Reuse(frozenset({"a-run"})))
    assert result.succeeded and not result.reused
    assert len(round_trips) == 5, round_trips  # one more than without reuse: the lookup
    begin, settings, lookup, facts, commit = round_trips
    assert (begin, commit) == ("BEGIN", "COMMIT") and "pg_advisory_xact_lock" in settings
    assert "FROM reporting.report_run" in lookup and "input_fingerprint" in lookup
    assert "INSERT INTO reporting.report_run" in facts


def test_the_headline_from_the_facts_statement_equals_the_facts_read_back(engine, tenant):
    for report_type in ("pipeline_overview", "weighted_pipeline", "win_loss"):
        result = executor.execute(engine, request(engine, tenant, report_type))
        with engine.begin() as conn:
            run_records.enter_tenant(conn, result.request.tenant_id)
            read_back = executor.headline_of(conn, result.request.report, result.request.tenant_id, result.run_id)
        assert result.succeeded and result.headline == read_back and result.headline, report_type
        assert [type(v) for v in result.headline.values()] == [type(v) for v in read_back.values()]


def test_one_connection_carries_many_runs_each_its_own_transaction(engine, tenant, round_trips):
    run_request = request(engine, tenant)
    with engine.connect() as conn:
        round_trips.clear()
        results = [executor.execute(engine, run_request, connection=conn) for _ in range(3)]
    assert [r.succeeded for r in results] == [True] * 3 and len({r.run_id for r in results}) == 3
    assert round_trips.count("BEGIN") == round_trips.count("COMMIT") == 3 and len(round_trips) == 12


def test_a_failed_run_on_a_given_connection_leaves_it_usable(engine, tenant, monkeypatch):
    run_request = request(engine, tenant)
    with engine.connect() as conn:
        monkeypatch.setattr(executor, "headline_of", lambda *a: 1 / 0)
        failed = executor.execute(engine, run_request, connection=conn)
        monkeypatch.undo()
        succeeded = executor.execute(engine, run_request, connection=conn)
    assert failed.status == "FAILED" and "ZeroDivisionError" in (failed.error_message or "")
    assert succeeded.succeeded and succeeded.fact_rows == 2


def settings_inside_the_run(monkeypatch, *names: str) -> list[tuple[str, ...]]:
    """The values of `names` seen inside each run's transaction, right after its facts statement."""
    seen: list[tuple[str, ...]] = []
    real = executor.headline_of

    def spy(conn, *args):
        seen.append(tuple(conn.exec_driver_sql(f"SELECT current_setting('{n}')").scalar_one() for n in names))
        return real(conn, *args)

    monkeypatch.setattr(executor, "headline_of", spy)
    return seen


def test_a_report_that_declares_jit_false_runs_with_jit_off(engine, tenant, monkeypatch):
    seen = settings_inside_the_run(monkeypatch, "jit", "dyno.tenant_id")
    declared = request(engine, tenant)
    with_jit = dataclasses.replace(declared, report=dataclasses.replace(get_report("pipeline_overview"), jit=True))
    without_jit = dataclasses.replace(declared, report=dataclasses.replace(get_report("pipeline_overview"), jit=False))
    assert executor.execute(engine, with_jit).succeeded and executor.execute(engine, without_jit).succeeded
    assert seen == [("on", str(tenant.tenant_id)), ("off", str(tenant.tenant_id))]
    with engine.connect() as conn:  # transaction-local: nothing stays on the pooled connection
        assert conn.exec_driver_sql("SHOW jit").scalar_one() == "on"


def test_a_reports_planner_settings_hold_for_its_run_only(engine, tenant, monkeypatch):
    seen = settings_inside_the_run(monkeypatch, "enable_seqscan", "random_page_cost", "jit")
    settings = (("enable_seqscan", "off"), ("random_page_cost", "1.5"))
    report = dataclasses.replace(get_report("pipeline_overview"), jit=False, planner_settings=settings)
    assert executor.execute(engine, dataclasses.replace(request(engine, tenant), report=report)).succeeded
    assert seen == [("off", "1.5", "off")]
    with engine.connect() as conn:
        assert conn.exec_driver_sql("SHOW enable_seqscan").scalar_one() == "on"


def test_the_executor_role_is_the_runs_role_and_only_its(engine, tenant, monkeypatch):
    monkeypatch.setenv("DYNO_EXECUTOR_ROLE", "dyno_report_writer")
    seen = settings_inside_the_run(monkeypatch, "role")
    assert executor.execute(engine, request(engine, tenant)).succeeded
    assert seen == [("dyno_report_writer",)]
    with engine.connect() as conn:
        assert conn.exec_driver_sql("SELECT current_user").scalar_one() != "dyno_report_writer"
