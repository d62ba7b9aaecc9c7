"""Load and fault tests: concurrent runs and upgrades, killed and interrupted clients, transient
connection failures (docs/reliability.md lists the figures).

Sized for 2 cores: each test stays under about 15 s. The interrupted-client tests need a report
query that computes for several seconds: the reports take under 1 s even on a 30 000-deal tenant,
so they run `stage_conversion` on a 3 000-deal tenant with hash and merge joins and index scans
switched off for the client's sessions (PGOPTIONS), which makes the same INSERT ... SELECT compute
for about 8 s here (statement_timeout 60 s bounds it if a test goes wrong).
"""

import os
import signal
import subprocess
import sys
import threading
import time
import uuid
import warnings
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor

import psycopg
import pytest
from dagster import AssetKey, DagsterEventType, instance_for_test, materialize
from sqlalchemy import Engine, create_engine, event, func, select, text
from sqlalchemy.engine import URL
from sqlalchemy.exc import OperationalError

from dyno_reports.core.errors import DatabaseUnavailable, RunCancelled
from dyno_reports.dagster_defs import retrying
from dyno_reports.dagster_defs.io_manager import ReportRunIOManager
from dyno_reports.dagster_defs.resources import ReportDatabase
from dyno_reports.devtools import seed
from dyno_reports.engine import executor, run_request
from dyno_reports.reports import registry
from dyno_reports.storage import db, migrate
from dyno_reports.storage.tables import report_run
from dyno_reports_tests.conftest import url_string
from dyno_reports_tests.support.dagster import report_asset_of

SLOW_PLANS = (
    "-c enable_hashjoin=off -c enable_mergejoin=off -c enable_indexscan=off -c enable_bitmapscan=off"
    " -c enable_indexonlyscan=off -c max_parallel_workers_per_gather=0 -c statement_timeout=60s"
)
SLOW_REPORT = "stage_conversion"
WEEKS = ["2025-01-06", "2025-02-03", "2025-03-03", "2025-04-07", "2025-05-05"]
MONTHS = ["2024-10-01", "2024-12-01", "2025-02-01", "2025-04-01", "2025-06-01"]


def dyno_command(*args: str) -> list[str]:
    return [sys.executable, "-m", "dyno_reports.cli.main", *args]


@pytest.fixture(scope="module")
def tenants(engine) -> list[str]:
    return [str(t.tenant_id) for t in seed.seed(engine, tenants=2, deals_per_tenant=300)]


@pytest.fixture(scope="module")
def wide_engine(database_url: URL) -> Iterator[Engine]:
    engine = create_engine(database_url, pool_size=8, max_overflow=0)
    yield engine
    engine.dispose()


def window_of(report_type: str, index: int) -> tuple[str, str]:
    if registry()[report_type].cadence == "week":
        start = WEEKS[index % len(WEEKS)]
        y, m, d = (int(p) for p in start.split("-"))
        from datetime import date, timedelta

        return start, (date(y, m, d) + timedelta(days=7)).isoformat()
    start = MONTHS[index % len(MONTHS)]
    y, m = int(start[:4]), int(start[5:7])
    return start, f"{y + m // 12}-{m % 12 + 1:02d}-01"


def request_for(engine: Engine, report_type: str, tenant: str, index: int = 0) -> run_request.RunRequest:
    start, end = window_of(report_type, index)
    with engine.connect() as conn:
        return run_request.build_request(conn, report_type, tenant, period_start=start, period_end=end)


def facts_of(engine: Engine, report_type: str, run_id: uuid.UUID) -> list[tuple]:
    report = registry()[report_type]
    table = report.fact_table
    columns = [table.c[name] for name in report.fact_columns]
    with engine.connect() as conn:
        return [tuple(r) for r in conn.execute(select(*columns).where(table.c.run_id == run_id).order_by(*columns))]


# --- load -----------------------------------------------------------------------------------------


def test_eight_identical_concurrent_runs_give_identical_facts_and_fingerprints(wide_engine, tenants):
    request = request_for(wide_engine, "weighted_pipeline", tenants[0])
    barrier = threading.Barrier(8)

    def run(_: int) -> executor.RunResult:
        barrier.wait()
        return executor.execute(wide_engine, request)

    started = time.monotonic()
    with ThreadPoolExecutor(8) as pool:
        results = list(pool.map(run, range(8)))
    elapsed = time.monotonic() - started
    assert all(r.succeeded for r in results), [r.error_message for r in results]
    facts = [facts_of(wide_engine, "weighted_pipeline", r.run_id) for r in results]
    assert facts[0] and all(f == facts[0] for f in facts)
    assert len({r.fact_rows for r in results}) == 1 and {str(r.headline) for r in results} == {str(results[0].headline)}
    with wide_engine.connect() as conn:
        headers = conn.execute(
            select(report_run.c.status, report_run.c.input_fingerprint).where(
                report_run.c.run_id.in_([r.run_id for r in results])
            )
        ).all()
    assert len(headers) == 8 and {h.status for h in headers} == {"SUCCEEDED"}
    assert {h.input_fingerprint for h in headers} == {request.fingerprint()}
    print(f"\n8 identical concurrent runs: {elapsed:.2f} s")


@pytest.mark.slow
def test_four_workers_times_25_mixed_runs_lose_nothing(wide_engine, tenants):
    work = [(report_type, tenants[i % 2], i) for i, report_type in enumerate(sorted(registry()) * 20)]
    requests = [request_for(wide_engine, report_type, tenant, i // 10) for report_type, tenant, i in work]
    started = time.monotonic()
    with ThreadPoolExecutor(4) as pool:
        results = list(pool.map(lambda r: executor.execute(wide_engine, r), requests))
    elapsed = time.monotonic() - started
    assert len(results) == len(work) and all(r.succeeded for r in results), [r.error_message for r in results]
    with wide_engine.connect() as conn:
        headers = conn.execute(
            select(report_run.c.run_id, report_run.c.status, func.count().over(partition_by=report_run.c.run_id)).where(
                report_run.c.run_id.in_([r.run_id for r in results])
            )
        ).all()
    assert len(headers) == len(work) and {(h.status, h[2]) for h in headers} == {("SUCCEEDED", 1)}
    for result in results:
        assert result.fact_rows > 0
        assert len(facts_of(wide_engine, result.request.report.report_type, result.run_id)) == result.fact_rows
    print(f"\n4 workers x 25 mixed runs: {elapsed:.2f} s")


@pytest.mark.slow
def test_concurrent_db_upgrades_on_a_fresh_database_converge_at_head(database_factory):
    url = url_string(database_factory("upgrade_race"))
    env = {**os.environ, "DYNO_DATABASE_URL": url}
    started = time.monotonic()
    processes = [
        subprocess.Popen(dyno_command("db", "upgrade"), env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        for _ in range(4)
    ]
    outputs = [p.communicate(timeout=60) for p in processes]
    outcomes = [(p.returncode, out.decode(), err.decode()) for p, (out, err) in zip(processes, outputs, strict=True)]
    elapsed = time.monotonic() - started
    head = migrate.head_revision()
    assert [o[0] for o in outcomes] == [0] * 4, outcomes
    assert all(o[1].strip() == f"database at revision {head}" for o in outcomes), outcomes
    engine = create_engine(url)
    try:
        assert migrate.current_revision(engine) == head
    finally:
        engine.dispose()
    print(f"\n4 concurrent db upgrade: {elapsed:.2f} s")


def test_a_database_another_session_created_meanwhile_is_taken_as_it_is(server_url):
    """Two processes creating the same database at once (parallel test workers, two commands on a fresh embedded
    server): the one whose CREATE DATABASE comes second, after its look found none, goes on with the other's."""
    name = f"dyno_test_meanwhile_{uuid.uuid4().hex[:8]}"
    admin = create_engine(server_url, isolation_level="AUTOCOMMIT")
    created_first: list[str] = []

    def create_it_first(conn, cursor, statement, parameters, context, executemany):
        if statement.startswith("CREATE DATABASE") and not created_first:
            created_first.append(name)
            with admin.connect() as other:
                other.exec_driver_sql(f'CREATE DATABASE "{name}"')

    event.listen(Engine, "before_cursor_execute", create_it_first)  # ensure_database makes an engine of its own
    try:
        db.ensure_database(server_url, name)
        with pytest.raises(Exception, match="SyntaxError"):  # any other failure still raises
            db.ensure_database(server_url, 'not"a name')
    finally:
        event.remove(Engine, "before_cursor_execute", create_it_first)
        with admin.connect() as conn:
            exists = conn.exec_driver_sql("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).scalar()
            conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}"')
        admin.dispose()
    assert created_first == [name] and exists == 1


# --- killed and interrupted clients ---------------------------------------------------------------


@pytest.fixture(scope="module")
def slow_tenant(database_factory) -> tuple[URL, str]:
    url = database_factory("faults_slow")
    engine = create_engine(url)
    try:
        migrate.upgrade(engine)
        (seeded,) = seed.seed(engine, tenants=1, deals_per_tenant=3000)
    finally:
        engine.dispose()
    return url, str(seeded.tenant_id)


@pytest.fixture(scope="module")
def admin(server_url: URL) -> Iterator[Engine]:
    engine = create_engine(server_url, isolation_level="AUTOCOMMIT")
    yield engine
    engine.dispose()


def report_backends(admin: Engine, database: str) -> list[int]:
    """Backends of `database` executing the slow report's INSERT ... SELECT (in the run's one statement)."""
    with admin.connect() as conn:
        return list(
            conn.execute(
                text(
                    "SELECT pid FROM pg_stat_activity WHERE datname = :db AND state = 'active'"
                    " AND query LIKE '%INSERT INTO reporting.report_stage_conversion_fact%'"
                ),
                {"db": database},
            ).scalars()
        )


def start_slow_run(url: URL, tenant: str) -> subprocess.Popen:
    env = {**os.environ, "DYNO_DATABASE_URL": url_string(url), "PGOPTIONS": SLOW_PLANS}
    env.pop("DYNO_DEBUG", None)
    args = ("run", SLOW_REPORT, "--tenant", tenant, "--period-start", "1900-01-01", "--period-end", "2026-01-01")
    return subprocess.Popen(dyno_command(*args), env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def wait_until(condition: Callable[[], bool], timeout: float, step: float = 0.02) -> float | None:
    """Seconds until `condition()` held, or None after `timeout`."""
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        if condition():
            return time.monotonic() - started
        time.sleep(step)
    return None


def computing(proc: subprocess.Popen, admin: Engine, database: str) -> None:
    assert wait_until(lambda: bool(report_backends(admin, database)) or proc.poll() is not None, 30) is not None
    assert proc.poll() is None, proc.communicate()
    time.sleep(0.3)  # well inside the query (it computes for seconds)


def runs_of(url: URL, tenant: str) -> list:
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            return conn.execute(
                select(report_run.c.run_id, report_run.c.status, report_run.c.error_message).where(
                    report_run.c.tenant_id == uuid.UUID(tenant)
                )
            ).all()
    finally:
        engine.dispose()


def fact_count(url: URL) -> int:
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            return conn.execute(select(func.count()).select_from(registry()[SLOW_REPORT].fact_table)).scalar_one()
    finally:
        engine.dispose()


@pytest.mark.slow
def test_a_killed_clients_query_stops_within_seconds_and_leaves_nothing(slow_tenant, admin):
    url, tenant = slow_tenant
    before = runs_of(url, tenant)
    proc = start_slow_run(url, tenant)
    computing(proc, admin, url.database)
    proc.kill()
    proc.wait(timeout=10)
    proc.communicate()
    stopped = wait_until(lambda: not report_backends(admin, url.database), 3.0)
    assert stopped is not None, "the killed client's query still runs 3 s after SIGKILL"
    print(f"\nSIGKILL: the backend's query stopped {stopped:.2f} s after the client died")
    assert runs_of(url, tenant) == before  # the run's transaction rolled back: no IN_PROGRESS header, no trace
    assert fact_count(url) == 0


@pytest.mark.slow
@pytest.mark.parametrize(("sig", "status"), [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_sigint_and_sigterm_cancel_the_query_and_record_failed(slow_tenant, admin, sig, status):
    url, tenant = slow_tenant
    before = {r.run_id for r in runs_of(url, tenant)}
    proc = start_slow_run(url, tenant)
    computing(proc, admin, url.database)
    started = time.monotonic()
    proc.send_signal(sig)
    stdout, stderr = proc.communicate(timeout=20)
    elapsed = time.monotonic() - started
    assert proc.returncode == status, (stdout, stderr)
    lines = stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: report run "), stderr  # no log warning, no traceback
    assert f"cancelled ({sig.name}): rolled back, recorded FAILED" in lines[0]
    assert report_backends(admin, url.database) == []  # psycopg cancelled it before the process exited
    (new,) = [r for r in runs_of(url, tenant) if r.run_id not in before]
    assert new.status == "FAILED" and new.error_message == f"cancelled ({sig.name})"
    assert str(new.run_id) in lines[0]
    assert fact_count(url) == 0
    print(f"\n{sig.name}: exit {proc.returncode} {elapsed:.2f} s after the signal")


@pytest.mark.slow
def test_cancelled_run_rolls_back_then_records_failed_in_a_new_transaction(slow_tenant, admin):
    """In-process: RunCancelled raised from a signal handler mid-query (as the CLI's handler does)."""
    url, tenant = slow_tenant
    engine = create_engine(url, connect_args={"options": SLOW_PLANS})
    events: list[str] = []
    event.listen(engine, "commit", lambda conn: events.append("commit"))
    event.listen(engine, "rollback", lambda conn: events.append("rollback"))

    def handler(signum, frame):
        raise RunCancelled("cancelled (SIGALRM)")

    previous = signal.signal(signal.SIGALRM, handler)
    try:
        with engine.connect() as conn:
            request = run_request.build_request(
                conn, SLOW_REPORT, tenant, period_start="1900-01-01", period_end="2026-01-01"
            )
        events.clear()
        run_id = uuid.uuid4()
        signal.setitimer(signal.ITIMER_REAL, 1.5)
        with pytest.raises(RunCancelled):
            executor.execute(engine, request, run_id=run_id)
        assert report_backends(admin, url.database) == []
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
        engine.dispose()
    # the run's transaction rolled back (its connection invalidated), then the FAILED header committed on its own
    assert events[-1] == "commit" and "commit" not in events[:-1], events
    (header,) = [r for r in runs_of(url, tenant) if r.run_id == run_id]
    assert header.status == "FAILED" and header.error_message == "cancelled (SIGALRM)"
    assert fact_count(url) == 0


def test_the_run_transaction_checks_for_a_dead_client_every_second(engine, tenants, monkeypatch):
    seen: list[str] = []
    real = executor.headline_of  # called inside the run's transaction, after its facts statement

    def spy(conn, *args):
        seen.append(conn.exec_driver_sql("SHOW client_connection_check_interval").scalar_one())
        return real(conn, *args)

    monkeypatch.setattr(executor, "headline_of", spy)
    assert executor.execute(engine, request_for(engine, "win_loss", tenants[0])).succeeded
    assert seen == ["1s"]
    with engine.connect() as conn:  # transaction-local: nothing stays on the pooled connection
        assert conn.exec_driver_sql("SHOW client_connection_check_interval").scalar_one() == "0"


def test_a_run_that_fails_in_the_database_prints_one_error_line(slow_tenant):
    url, tenant = slow_tenant
    env = {**os.environ, "DYNO_DATABASE_URL": url_string(url), "PGOPTIONS": SLOW_PLANS + " -c statement_timeout=1s"}
    env.pop("DYNO_DEBUG", None)
    args = ("run", SLOW_REPORT, "--tenant", tenant, "--period-start", "1900-01-01", "--period-end", "2026-01-01")
    done = subprocess.run(dyno_command(*args), env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 1
    assert done.stderr.splitlines() == [done.stderr.strip()] and done.stderr.startswith(
        "error: report run failed: QueryCanceled: canceling statement due to statement timeout"
    ), done.stderr


# --- transient connection failures ----------------------------------------------------------------


class FlakyEngine:
    """Fails `connect()` with the given errors first, then connects for real."""

    def __init__(self, engine: Engine, errors: list[BaseException]) -> None:
        self.engine, self.errors, self.attempts = engine, list(errors), 0

    def connect(self):
        self.attempts += 1
        if self.errors:
            raise OperationalError("connect", {}, self.errors.pop(0))
        return self.engine.connect()


@pytest.fixture
def sleeps(monkeypatch) -> list[float]:
    slept: list[float] = []
    monkeypatch.setattr(db, "_sleep", slept.append)
    return slept


def test_transient_connect_failures_are_retried_with_backoff(engine, sleeps):
    flaky = FlakyEngine(engine, [psycopg.errors.TooManyConnections("too many"), psycopg.errors.CannotConnectNow("up")])
    with db.connect(flaky) as conn:  # type: ignore[arg-type]
        assert conn.exec_driver_sql("SELECT 1").scalar_one() == 1
    assert flaky.attempts == 3 and sleeps == [0.5, 1.0]


def test_a_run_survives_a_restarting_server_before_it_starts(engine, tenants, sleeps):
    flaky = FlakyEngine(engine, [psycopg.OperationalError("connection refused")])
    request = request_for(engine, "pipeline_overview", tenants[1])
    result = executor.execute(flaky, request)  # type: ignore[arg-type]
    assert result.succeeded and flaky.attempts == 2 and sleeps == [0.5]


def test_connect_gives_up_after_three_attempts_and_writes_nothing(engine, tenants, sleeps):
    flaky = FlakyEngine(engine, [psycopg.OperationalError("refused")] * 3)
    request = request_for(engine, "pipeline_overview", tenants[1], 1)
    with engine.connect() as conn:
        runs = conn.execute(select(func.count()).select_from(report_run)).scalar_one()
    with pytest.raises(DatabaseUnavailable, match=r"cannot connect to the database \(3 attempts\): refused"):
        executor.execute(flaky, request)  # type: ignore[arg-type]
    with engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(report_run)).scalar_one() == runs
    assert sleeps == [0.5, 1.0]


def test_a_refused_login_is_not_retried(engine, sleeps):
    flaky = FlakyEngine(engine, [psycopg.errors.InvalidPassword("password authentication failed")])
    with pytest.raises(OperationalError):
        db.connect(flaky)  # type: ignore[arg-type]
    assert flaky.attempts == 1 and sleeps == []


def test_cli_against_an_unreachable_server_is_one_line_after_three_attempts(tmp_path):
    env = {**os.environ, "DYNO_DATABASE_URL": "postgresql://postgres@127.0.0.1:1/none"}
    tenant = str(uuid.uuid4())
    started = time.monotonic()
    done = subprocess.run(
        dyno_command("run", "win_loss", "--tenant", tenant), env=env, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 1
    assert (
        done.stderr.startswith("error: cannot connect to the database (3 attempts): ")
        and len(done.stderr.splitlines()) == 1
    ), done.stderr
    assert time.monotonic() - started >= 1.5  # waited 0.5 s and 1 s between the attempts


def dagster_retries(result) -> int:
    return sum(1 for e in result.all_events if e.event_type == DagsterEventType.STEP_UP_FOR_RETRY)


def test_a_step_that_cannot_reach_the_database_retries_its_connection_then_fails_once(tenants, monkeypatch):
    slept: list[float] = []
    monkeypatch.setattr(retrying, "_sleep", slept.append)
    monkeypatch.setenv("DYNO_DAGSTER_START_DATE", "2025-01-01")
    dead = "postgresql+psycopg://postgres@127.0.0.1:1/none"
    with instance_for_test() as instance:
        instance.add_dynamic_partitions("tenant", [tenants[0]])
        result = materialize(
            [report_asset_of("win_loss")],
            partition_key=f"2025-03-01|{tenants[0]}",
            instance=instance,
            resources={"dyno_db": ReportDatabase(database_url=dead), "report_io_manager": ReportRunIOManager()},
            raise_on_error=False,
        )
    assert not result.success and dagster_retries(result) == 0  # no step retry: it retried its connection
    assert slept == list(retrying.RETRY_BACKOFF_SECONDS)
    (failure,) = [e for e in result.all_events if e.event_type == DagsterEventType.STEP_FAILURE]
    description = failure.step_failure_data.user_failure_data.description
    assert description.startswith(
        "win_loss: the report database postgresql://postgres@127.0.0.1:1/none is unreachable (6 attempts over 15.5 s)"
    ) and description.endswith("no partition ran"), description


def test_dagster_does_not_retry_a_failed_run(database_url, engine, tenants, monkeypatch):
    url = url_string(database_url)
    monkeypatch.setenv("DYNO_DAGSTER_START_DATE", "2025-01-01")
    monkeypatch.setattr(executor, "headline_of", lambda *a: 1 / 0)
    asset = report_asset_of("win_loss")
    assert asset.key == AssetKey("win_loss")
    with instance_for_test() as instance:
        instance.add_dynamic_partitions("tenant", [tenants[0]])
        result = materialize(
            [asset],
            partition_key=f"2025-04-01|{tenants[0]}",
            instance=instance,
            resources={
                "dyno_db": ReportDatabase(database_url=url),
                "report_io_manager": ReportRunIOManager(database_url=url),
            },
            raise_on_error=False,
        )
    assert not result.success and dagster_retries(result) == 0
    with engine.connect() as conn:
        statuses = conn.execute(select(report_run.c.status).where(report_run.c.dagster_run_id == result.run_id)).all()
    assert [s.status for s in statuses] == ["FAILED"]


def test_an_engine_pushed_out_of_the_cache_closes_its_connections(database_url):
    """More URLs than db.MAX_ENGINES: the least recently used engine is disposed, not dropped with open
    connections (psycopg's ResourceWarning at garbage collection, an error in this suite)."""
    import gc

    base = url_string(database_url)
    # update_query_dict: the embedded server's URL already has a query (?host=<socket dir>)
    urls = [
        url_string(database_url.update_query_dict({"application_name": f"dyno_engine_cache_{i}"}))
        for i in range(db.MAX_ENGINES + 1)
    ]
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        for url in urls:
            with db.engine_for(url).connect() as conn:  # leaves one pooled connection behind
                conn.execute(text("SELECT 1"))
        gc.collect()
    assert [str(w.message) for w in caught if issubclass(w.category, ResourceWarning)] == []
    with db.engine_for(base).connect() as conn:
        opened = conn.execute(
            text("SELECT count(*) FROM pg_stat_activity WHERE application_name LIKE 'dyno_engine_cache_%'")
        ).scalar_one()
    assert opened == db.MAX_ENGINES - 1  # the first URL's connection closed; the newest one's pushed out by `base`
