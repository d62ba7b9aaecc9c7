"""Committed work is never redone: re-executions, overlapping requests, lost connections and a gone tenant
(real PostgreSQL; run-worker processes in a temporary DAGSTER_HOME where a Dagster run of its own matters,
else in-process `materialize`; a TCP proxy the tests cut to take the database away).
"""

import threading
import time
import uuid
from collections import Counter
from datetime import UTC, datetime

import psycopg
import pytest
from dagster import DagsterEventType, DagsterInstance, DagsterRunStatus, instance_for_test, materialize
from sqlalchemy import Engine, func, select, text
from sqlalchemy.exc import OperationalError

from dyno_reports.dagster_defs import checks, io_manager, retrying
from dyno_reports.engine import executor, run_request
from dyno_reports.engine.reuse import QUESTION_LOCK_CLASS, Reuse, question_key
from dyno_reports.storage.tables import report_run, tenant
from dyno_reports_tests.conftest import url_string
from dyno_reports_tests.support import run_worker
from dyno_reports_tests.support.books import assert_books_agree, materialised_run_ids
from dyno_reports_tests.support.dagster import report_asset_of, report_resources
from dyno_reports_tests.support.history import load_small_tenant
from dyno_reports_tests.support.tcp_proxy import TcpProxy

REPORT = "pipeline_overview"
WEEKS = ["2025-05-12", "2025-05-19", "2025-05-26", "2025-06-02"]
WAITING = text(
    "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()"
    " AND wait_event_type = 'Lock'"
)


@pytest.fixture(scope="module")
def tenants(engine) -> list[str]:
    return sorted(load_small_tenant(engine, amount) for amount in (10, 20, 30))


@pytest.fixture
def env(database_url, monkeypatch) -> str:
    monkeypatch.setenv("DYNO_DAGSTER_START_DATE", "2025-01-01")
    return url_string(database_url)


@pytest.fixture
def slept(monkeypatch) -> list[float]:
    """The IO manager's back-off pauses, recorded and shortened to 1/10."""
    pauses: list[float] = []

    def pause(seconds: float) -> None:
        pauses.append(seconds)
        time.sleep(seconds / 10)

    monkeypatch.setattr(retrying, "_sleep", pause)
    return pauses


def headers_of(engine: Engine, dagster_run_id: str) -> list:
    with engine.connect() as conn:
        return conn.execute(
            select(report_run).where(report_run.c.dagster_run_id == dagster_run_id).order_by(report_run.c.period_start)
        ).all()


def weeks_of(instance, tenant_id: str, resources: dict, **kwargs):
    """One run of REPORT over WEEKS for one tenant, in-process."""
    return materialize(
        [report_asset_of(REPORT)],
        instance=instance,
        resources=resources,
        tags={
            "dagster/asset_partition_range_start": f"{WEEKS[0]}|{tenant_id}",
            "dagster/asset_partition_range_end": f"{WEEKS[-1]}|{tenant_id}",
        },
        raise_on_error=False,
        **kwargs,
    )


def step_retries(result) -> int:
    return sum(1 for e in result.all_events if e.event_type == DagsterEventType.STEP_UP_FOR_RETRY)


def lost_connection() -> OperationalError:
    return OperationalError("SELECT ...", {}, psycopg.OperationalError("server closed the connection unexpectedly"))


# --- re-execution and overlapping runs (worker processes) ----------------------------------------


@pytest.mark.slow
def test_reexecute_from_failure_runs_only_the_failed_partition(engine, database_url, tenants, tmp_path):
    absent = str(uuid.uuid4())  # registered as a partition, not (yet) in crm.tenant: its partition is refused
    period, every = "2025-06-02", sorted([*tenants, absent])
    keys = [f"{period}|{t}" for t in every]
    with DagsterInstance.from_config(str(tmp_path)) as instance:
        instance.add_dynamic_partitions("tenant", every)
    url = url_string(database_url)
    with run_worker.launch(url, tmp_path, REPORT, keys[0], keys[-1]) as first:
        first.wait(timeout=120)
    load_small_tenant(engine, 50, uuid.UUID(absent))  # the CRM caught up: re-execute from failure
    with DagsterInstance.from_config(str(tmp_path)) as instance:
        (parent,) = instance.get_runs(limit=1)
        assert parent.status == DagsterRunStatus.FAILURE
        with run_worker.launch(
            url, tmp_path, REPORT, keys[0], keys[-1], "--reexecute-from-failure", parent.run_id
        ) as w:
            w.wait(timeout=120)
        child = instance.get_runs(limit=1)[0]
        assert child.parent_run_id == parent.run_id and child.status == DagsterRunStatus.SUCCESS
        committed = {f"{period}|{h.tenant_id}": str(h.run_id) for h in headers_of(engine, parent.run_id)}
        assert [h.tenant_id for h in headers_of(engine, child.run_id)] == [uuid.UUID(absent)]  # the only one run
        both = [*headers_of(engine, parent.run_id), *headers_of(engine, child.run_id)]
        succeeded = Counter(f"{period}|{h.tenant_id}" for h in both if h.status == "SUCCEEDED")
        assert succeeded == Counter(keys)  # each partition computed once
        for key in keys:
            named = materialised_run_ids(instance, REPORT, key)
            if key.endswith(absent):
                assert named[:1] == [str(headers_of(engine, child.run_id)[0].run_id)]
            else:  # the re-execution's own materialisation names the parent's committed run
                assert named[:1] == [committed[key]], key
        assert_books_agree(engine, instance, child.run_id, REPORT, [f"{period}|{absent}"], one_header_each=True)


@pytest.mark.slow
def test_two_identical_runs_at_once_compute_each_partition_once(engine, database_url, tenants, tmp_path):
    period = "2025-06-09"
    keys = [f"{period}|{t}" for t in tenants]
    with DagsterInstance.from_config(str(tmp_path)) as instance:
        instance.add_dynamic_partitions("tenant", tenants)
    url = url_string(database_url)
    with engine.connect() as blocker, engine.connect() as watcher:  # both runs under way before either commits
        blocker.execute(text("SELECT 1 FROM reporting.report_type WHERE report_type = :r FOR UPDATE"), {"r": REPORT})
        watcher.execution_options(isolation_level="AUTOCOMMIT")
        with (
            run_worker.launch(url, tmp_path, REPORT, keys[0], keys[-1]) as one,
            run_worker.launch(url, tmp_path, REPORT, keys[0], keys[-1]) as other,
        ):
            try:
                deadline = time.monotonic() + 60
                while watcher.execute(WAITING).scalar_one() < 2:
                    assert one.poll() is None and other.poll() is None and time.monotonic() < deadline
                    time.sleep(0.02)
            finally:
                blocker.rollback()
            one.wait(timeout=120), other.wait(timeout=120)
    with DagsterInstance.from_config(str(tmp_path)) as instance:
        runs = instance.get_runs(limit=2)
        assert {r.status for r in runs} == {DagsterRunStatus.SUCCESS}
        both = [h for run in runs for h in headers_of(engine, run.run_id)]
        assert Counter(f"{period}|{h.tenant_id}" for h in both if h.status == "SUCCEEDED") == Counter(keys)
        for key in keys:  # both runs' materialisations name the one report run
            assert len(set(materialised_run_ids(instance, REPORT, key))) == 1, key


def test_overlapping_identical_requests_wait_for_each_other_and_compute_once(engine, tenants):
    with engine.connect() as conn:
        request = run_request.build_request(
            conn, REPORT, tenants[0], period_start="2025-04-07", period_end="2025-04-14"
        )
    since = datetime.now(UTC)
    results: list[executor.RunResult] = []

    def run(dagster_run_id: str) -> None:
        reuse = Reuse(frozenset({dagster_run_id}), since)
        results.append(executor.execute(engine, request, reuse=reuse))

    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as holder:
        lock = {"c": QUESTION_LOCK_CLASS, "k": question_key(request.fingerprint())}
        holder.execute(text("SELECT pg_advisory_lock(CAST(:c AS integer), CAST(:k AS integer))"), lock)
        threads = [threading.Thread(target=run, args=(f"dagster-{i}",)) for i in range(2)]
        for thread in threads:
            thread.start()
        deadline = time.monotonic() + 30
        while holder.execute(WAITING).scalar_one() < 2:  # both transactions wait for the question's lock
            assert all(t.is_alive() for t in threads) and time.monotonic() < deadline, "they never overlapped"
            time.sleep(0.01)
        holder.execute(text("SELECT pg_advisory_unlock(CAST(:c AS integer), CAST(:k AS integer))"), lock)
        for thread in threads:
            thread.join(timeout=30)
    computed, reused = sorted(results, key=lambda r: r.reused)
    assert computed.succeeded and not computed.reused and reused.succeeded and reused.reused
    assert reused.run_id == computed.run_id and reused.fact_rows == computed.fact_rows > 0
    assert reused.headline == computed.headline
    with engine.connect() as conn:
        runs = conn.execute(
            select(func.count()).where(report_run.c.input_fingerprint == request.fingerprint())
        ).scalar_one()
    assert runs == 1


def test_reuse_takes_a_family_members_run_or_a_newer_one_never_an_older_stranger(engine, tenants):
    with engine.connect() as conn:
        request = run_request.build_request(
            conn, REPORT, tenants[1], period_start="2025-03-03", period_end="2025-03-10"
        )
    older = executor.execute(engine, request)  # made before the request below was issued, by nobody of its family
    since = datetime.now(UTC)
    fresh = executor.execute(engine, request, reuse=Reuse(frozenset({"dagster-b"}), since))
    assert not fresh.reused and fresh.run_id != older.run_id
    by_family = executor.execute(engine, request, reuse=Reuse(frozenset({"dagster-x", "dagster-b"})))
    assert not by_family.reused  # the CLI run is nobody's family; dagster-b's run has no dagster_run_id either
    family_run = executor.execute(engine, run_request.RunRequest(**{**request.__dict__, "dagster_run_id": "dagster-c"}))
    again = executor.execute(engine, request, reuse=Reuse(frozenset({"dagster-c"})))
    assert again.reused and again.run_id == family_run.run_id


# --- a tenant gone -------------------------------------------------------------------------------


def test_a_tenant_deleted_after_validation_fails_its_run_inside_the_transaction(engine):
    gone = uuid.uuid4()
    with engine.begin() as conn:
        conn.execute(tenant.insert().values(tenant_id=gone, name="leaving"))
    with engine.connect() as conn:
        request = run_request.build_request(conn, REPORT, gone, period_start="2025-06-02", period_end="2025-06-09")
    with engine.begin() as conn:
        conn.execute(tenant.delete().where(tenant.c.tenant_id == gone))
    result = executor.execute(engine, request)
    assert result.status == "FAILED" and result.error_message == f"tenant {gone} is no longer in crm.tenant"
    with engine.connect() as conn:
        statuses = conn.execute(select(report_run.c.status).where(report_run.c.tenant_id == gone)).scalars().all()
        facts = conn.execute(
            select(func.count())
            .select_from(request.report.fact_table)
            .where(request.report.fact_table.c.tenant_id == gone)
        ).scalar_one()
    assert statuses == ["FAILED"] and facts == 0


# --- transient failures after commits (in-process) -----------------------------------------------


def test_a_check_query_failing_after_every_commit_fails_that_check_only(env, engine, tenants, monkeypatch):
    real_count, failures = checks._count, [lost_connection()]

    def count_once_failing(*args):
        if failures:
            raise failures.pop()
        return real_count(*args)

    monkeypatch.setattr(checks, "_count", count_once_failing)
    with instance_for_test() as instance:
        instance.add_dynamic_partitions("tenant", [tenants[2]])
        result = weeks_of(instance, tenants[2], report_resources(env))
    assert result.success and step_retries(result) == 0
    assert [h.status for h in headers_of(engine, result.run_id)] == ["SUCCEEDED"] * 4  # each week once
    evaluations = {e.check_name: e for e in result.get_asset_check_evaluations()}
    unevaluated = evaluations["facts_from_succeeded_runs"]
    assert not unevaluated.passed and unevaluated.severity.value == "WARN"
    assert unevaluated.description.startswith("could not be evaluated: server closed the connection")
    assert evaluations["metrics_not_negative"].passed


def test_metadata_failing_after_a_commit_is_read_again_the_partition_not_run_again(
    env, engine, tenants, monkeypatch, slept
):
    real, failures = io_manager.partition_metadata, [lost_connection()]

    def metadata_once_failing(*args, **kwargs):
        if failures:
            raise failures.pop()
        return real(*args, **kwargs)

    monkeypatch.setattr(io_manager, "partition_metadata", metadata_once_failing)
    with instance_for_test() as instance:
        instance.add_dynamic_partitions("tenant", [tenants[0]])
        result = weeks_of(instance, tenants[0], report_resources(env))
    assert result.success and slept == [0.5] and step_retries(result) == 0
    headers = headers_of(engine, result.run_id)
    assert [h.status for h in headers] == ["SUCCEEDED"] * 4
    mats = {m.partition: m.metadata["run_id"].value for m in result.asset_materializations_for_node(REPORT)}
    assert sorted(mats.values()) == sorted(str(h.run_id) for h in headers)


def test_a_commit_whose_answer_was_lost_is_found_not_computed_again(env, engine, tenants, monkeypatch, slept):
    real, lost = executor._run_in_transaction, [lost_connection()]

    def commit_then_lose_the_answer(*args):
        result = real(*args)
        if lost:
            raise lost.pop()  # as if the connection broke while COMMIT's answer was on its way
        return result

    monkeypatch.setattr(executor, "_run_in_transaction", commit_then_lose_the_answer)
    with instance_for_test() as instance:
        instance.add_dynamic_partitions("tenant", [tenants[1]])
        result = weeks_of(instance, tenants[1], report_resources(env))
    assert result.success and slept == [0.5]
    headers = headers_of(engine, result.run_id)
    assert [h.status for h in headers] == ["SUCCEEDED"] * 4  # the FAILED record of the lost answer did nothing
    mats = {m.partition: m.metadata["run_id"].value for m in result.asset_materializations_for_node(REPORT)}
    assert sorted(mats.values()) == sorted(str(h.run_id) for h in headers)


# --- the database taken away (a TCP proxy cut and restored) ---------------------------------------


def cut_after_first_partition(monkeypatch, proxy: TcpProxy, restore_after: float | None) -> Counter:
    """Cut `proxy` once the first partition is done (restored `restore_after` s later); count each week's runs."""
    real_step, real_execute, runs = io_manager._Progress.step, executor.execute, Counter()

    def step(self, partition_key, failed):
        real_step(self, partition_key, failed)
        if self.done == 1:
            proxy.cut()
            if restore_after is not None:
                threading.Timer(restore_after, proxy.restore).start()

    def execute(engine, request, **kwargs):
        runs[request.window.start.date().isoformat()] += 1
        return real_execute(engine, request, **kwargs)

    monkeypatch.setattr(io_manager._Progress, "step", step)
    monkeypatch.setattr(executor, "execute", execute)
    return runs


def proxied(database_url) -> tuple[TcpProxy, dict]:
    proxy = TcpProxy.for_database(database_url)
    proxy.start()
    return proxy, report_resources(url_string(proxy.url_for(database_url)))


def test_a_connection_cut_between_partitions_is_retried_for_the_next_partition_only(
    env, database_url, engine, monkeypatch, slept
):
    tenant_id = load_small_tenant(engine, 60)
    proxy, resources = proxied(database_url)
    runs = cut_after_first_partition(monkeypatch, proxy, restore_after=0.12)
    with proxy, instance_for_test() as instance:
        instance.add_dynamic_partitions("tenant", [tenant_id])
        result = weeks_of(instance, tenant_id, resources)
    assert result.success and step_retries(result) == 0 and slept[:1] == [0.5]
    assert runs[WEEKS[0]] == 1 and runs[WEEKS[1]] >= 2 and runs[WEEKS[2]] == runs[WEEKS[3]] == 1
    assert [h.status for h in headers_of(engine, result.run_id)] == ["SUCCEEDED"] * 4  # nothing FAILED, none twice
    mats = {m.partition: m.metadata["run_id"].value for m in result.asset_materializations_for_node(REPORT)}
    assert len(mats) == 4


def test_an_outage_longer_than_the_retries_fails_the_step_once_naming_the_database_and_what_is_left(
    env, database_url, engine, monkeypatch, slept
):
    tenant_id = load_small_tenant(engine, 70)
    proxy, resources = proxied(database_url)
    cut_after_first_partition(monkeypatch, proxy, restore_after=None)
    with proxy, instance_for_test() as instance:
        instance.add_dynamic_partitions("tenant", [tenant_id])
        result = weeks_of(instance, tenant_id, resources)
    assert not result.success and step_retries(result) == 0 and slept == list(retrying.RETRY_BACKOFF_SECONDS)
    (failure,) = [e for e in result.all_events if e.event_type == DagsterEventType.STEP_FAILURE]
    description = failure.step_failure_data.user_failure_data.description
    database = f"postgresql://{database_url.username}@127.0.0.1:{proxy.port}/{database_url.database}"
    left = ", ".join(f"{week}|{tenant_id}" for week in WEEKS[1:])
    assert description.startswith(f"the report database {database} is unreachable (6 attempts over 15.5 s)")
    assert description.endswith(
        f"3 partition(s) not done: {left}; the reconciliation records them once the database is back"
    )
    assert [h.status for h in headers_of(engine, result.run_id)] == ["SUCCEEDED"]  # nothing written while down
