"""Stop means stop: a report run terminated mid-batch commits nothing more and stays CANCELED (real PostgreSQL,
a real run-worker process in a temporary DAGSTER_HOME; the backfill and config cases in-process).

The partition in flight is held inside its facts statement: the test locks the report's
`reporting.report_type` row (FOR UPDATE), which the header's foreign key check must
share. Then the run is stopped as Dagster's two terminate policies do it:
SAFE_TERMINATE marks it CANCELING and the worker's termination thread sends SIGINT
to its own process; MARK_AS_CANCELED_IMMEDIATELY marks it CANCELED and leaves the
worker alone. The reconciliation's part (`failures.reconcile_run`) is done by hand.
"""

import os
import shutil
import signal
import subprocess
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import pytest
from dagster import DagsterEventType, DagsterInstance, DagsterRunStatus, instance_for_test, materialize
from dagster._core.execution.backfill import BulkActionStatus, PartitionBackfill
from sqlalchemy import Connection, Engine, select, text

from dyno_reports.dagster_defs import io_manager, stopping
from dyno_reports.dagster_defs.failures import reconcile_run
from dyno_reports.storage.tables import report_run
from dyno_reports_tests.conftest import url_string
from dyno_reports_tests.support import run_worker
from dyno_reports_tests.support.books import assert_books_agree
from dyno_reports_tests.support.dagster import report_asset_of, report_resources
from dyno_reports_tests.support.history import load_small_tenant

REPORT = "pipeline_overview"
PROJECT = Path(__file__).resolve().parents[1]
FACTS_STATEMENT = "%INSERT INTO reporting.report_pipeline_overview_fact%"
WAITING_FACTS = text(
    "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()"
    " AND state = 'active' AND wait_event_type = 'Lock' AND query LIKE :facts"
)
ACTIVE_FACTS = text(
    "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()"
    " AND state = 'active' AND query LIKE :facts"
)


@pytest.fixture(scope="module")
def tenants(engine) -> list[str]:
    """Four small tenants, sorted (the order a batch run executes them in)."""
    return sorted(load_small_tenant(engine, amount) for amount in (10, 20, 30, 40))


@pytest.fixture(scope="module")
def home(tmp_path_factory, tenants) -> Path:
    folder = tmp_path_factory.mktemp("dagster_home")
    with DagsterInstance.from_config(str(folder)) as instance:
        instance.add_dynamic_partitions("tenant", tenants)
    return folder


def hold_report_inserts(conn: Connection) -> None:
    """Until `conn` rolls back, a report_run row of REPORT cannot be inserted (its foreign key check waits)."""
    conn.execute(text("SELECT 1 FROM reporting.report_type WHERE report_type = :r FOR UPDATE"), {"r": REPORT})


def count(engine: Engine, query, **params) -> int:
    with engine.connect() as conn:
        return conn.execute(query, params).scalar_one()


def wait_until(condition: Callable[[], bool], worker: subprocess.Popen, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert worker.poll() is None, worker.stderr.read().decode()[-3000:] if worker.stderr else ""
        assert time.monotonic() < deadline, "never reached"
        time.sleep(0.02)


def headers(engine: Engine, dagster_run_id: str) -> dict[str, tuple[str, str | None]]:
    """Partition key -> (status, error message) of the run's report_run headers."""
    with engine.connect() as conn:
        rows = conn.execute(select(report_run).where(report_run.c.dagster_run_id == dagster_run_id)).all()
    return {f"{r.period_start.date().isoformat()}|{r.tenant_id}": (r.status, r.error_message) for r in rows}


def step_retries(instance: DagsterInstance, run_id: str) -> int:
    return len(instance.all_logs(run_id, of_type=DagsterEventType.STEP_UP_FOR_RETRY))


def stop_mid_batch(engine, database_url, home, tenants, period, stop: Callable) -> tuple[str, list[str]]:
    """Run the batch of `period`, hold its first partition in its facts statement, `stop(instance, run, worker)`,
    then let the database go; returns the Dagster run id and the partition keys once the worker has exited."""
    keys = [f"{period}|{t}" for t in tenants]
    with engine.connect() as blocker:
        hold_report_inserts(blocker)
        with run_worker.launch(url_string(database_url), home, REPORT, keys[0], keys[-1]) as worker:
            try:
                wait_until(lambda: count(engine, WAITING_FACTS, facts=FACTS_STATEMENT) == 1, worker)
                with DagsterInstance.from_config(str(home)) as instance:
                    (run,) = instance.get_runs(limit=1)
                    stop(instance, run, worker)
            finally:
                blocker.rollback()
            worker.wait(timeout=90)
    return run.run_id, keys


def assert_stays_canceled_after_reconciliation(engine, home, dagster_run_id: str, keys: list[str]) -> None:
    with DagsterInstance.from_config(str(home)) as instance:
        assert step_retries(instance, dagster_run_id) == 0
        time.sleep(1.5)  # a retry (RetryPolicy delay) or a worker that carried on would show by now
        run = instance.get_run_by_id(dagster_run_id)
        assert run is not None and run.status == DagsterRunStatus.CANCELED
        reconcile_run(engine, instance, run, REPORT, f"Dagster run {dagster_run_id} was canceled")
        assert_books_agree(engine, instance, dagster_run_id, REPORT, keys, one_header_each=True)


@pytest.mark.slow
def test_safe_terminate_rolls_back_the_partition_in_flight_and_starts_no_other(engine, database_url, home, tenants):
    def terminate(instance: DagsterInstance, run, worker: subprocess.Popen) -> None:
        instance.report_run_canceling(run)  # DefaultRunLauncher.terminate, then the code server's cancel:
        os.kill(worker.pid, signal.SIGINT)  # the run worker's termination thread interrupts its main thread
        wait_until(lambda: count(engine, ACTIVE_FACTS, facts=FACTS_STATEMENT) == 0, worker, timeout=5)

    dagster_run_id, keys = stop_mid_batch(engine, database_url, home, tenants, "2025-06-02", terminate)
    recorded = headers(engine, dagster_run_id)
    assert list(recorded) == [keys[0]]  # nothing started after the request
    status, message = recorded[keys[0]]
    assert status == "FAILED" and message == f"cancelled (Dagster run {dagster_run_id} terminated: SIGINT)"
    assert_stays_canceled_after_reconciliation(engine, home, dagster_run_id, keys)


@pytest.mark.slow
def test_mark_as_canceled_immediately_lets_the_partition_in_flight_commit_and_starts_no_other(
    engine, database_url, home, tenants
):
    def mark_canceled(instance: DagsterInstance, run, _worker: subprocess.Popen) -> None:
        instance.report_run_canceled(run, message="forcibly marked as canceled")  # no signal reaches the worker
        time.sleep(stopping.STATUS_POLL_SECONDS + 0.3)  # the run's next status poll is due once this commits

    dagster_run_id, keys = stop_mid_batch(engine, database_url, home, tenants, "2025-06-09", mark_canceled)
    assert headers(engine, dagster_run_id) == {keys[0]: ("SUCCEEDED", None)}  # the transaction in flight only
    assert_stays_canceled_after_reconciliation(engine, home, dagster_run_id, keys)


def test_a_run_of_a_cancelled_backfill_ends_canceled_without_running_a_partition(
    engine, database_url, tenants, monkeypatch
):
    monkeypatch.setenv("DYNO_DAGSTER_START_DATE", "2025-01-01")
    backfill_id = f"bf{uuid.uuid4().hex[:6]}"
    with instance_for_test() as instance:
        instance.add_dynamic_partitions("tenant", tenants)
        backfill = PartitionBackfill(backfill_id, BulkActionStatus.CANCELING, False, {}, time.time())
        instance.add_backfill(backfill)
        result = materialize(
            [report_asset_of(REPORT)],
            partition_key=f"2025-06-16|{tenants[0]}",
            instance=instance,
            resources=report_resources(url_string(database_url)),
            tags={stopping.BACKFILL_TAG: backfill_id},
            raise_on_error=False,
        )
        run = instance.get_run_by_id(result.run_id)
        assert run is not None and run.status == DagsterRunStatus.CANCELED
        (canceling,) = instance.all_logs(result.run_id, of_type=DagsterEventType.RUN_CANCELING)
        assert canceling.message == f"backfill {backfill_id} was cancelled: this run does no work"
    assert headers(engine, result.run_id) == {}


def test_a_backfill_cancelled_mid_run_stops_its_run_before_the_next_partition(
    engine, database_url, tenants, monkeypatch
):
    monkeypatch.setenv("DYNO_DAGSTER_START_DATE", "2025-01-01")
    monkeypatch.setattr(stopping, "STATUS_POLL_SECONDS", 0.0)  # poll before every partition
    backfill_id, weeks = f"bf{uuid.uuid4().hex[:6]}", ["2025-05-05", "2025-05-12", "2025-05-19"]
    real_step = io_manager._Progress.step

    def cancel_after_the_first(self, partition_key, failed):
        real_step(self, partition_key, failed)
        if self.done == 1:  # the operator cancels the backfill now
            instance.update_backfill(instance.get_backfill(backfill_id).with_status(BulkActionStatus.CANCELING))

    monkeypatch.setattr(io_manager._Progress, "step", cancel_after_the_first)
    with instance_for_test() as instance:
        instance.add_dynamic_partitions("tenant", [tenants[1]])
        instance.add_backfill(PartitionBackfill(backfill_id, BulkActionStatus.REQUESTED, False, {}, time.time()))
        result = materialize(
            [report_asset_of(REPORT)],
            instance=instance,
            resources=report_resources(url_string(database_url)),
            tags={
                stopping.BACKFILL_TAG: backfill_id,
                "dagster/asset_partition_range_start": f"{weeks[0]}|{tenants[1]}",
                "dagster/asset_partition_range_end": f"{weeks[-1]}|{tenants[1]}",
            },
            raise_on_error=False,
        )
        run = instance.get_run_by_id(result.run_id)
        assert run is not None and run.status == DagsterRunStatus.CANCELED
        (canceling,) = instance.all_logs(result.run_id, of_type=DagsterEventType.RUN_CANCELING)
        stopped = f"backfill {backfill_id} was cancelled: stopped before partition {weeks[1]}|{tenants[1]}"
        assert canceling.message == stopped
    assert headers(engine, result.run_id) == {f"{weeks[0]}|{tenants[1]}": ("SUCCEEDED", None)}


def test_dagster_yaml_retries_crashed_runs_once_and_never_step_failures(tmp_path, database_factory, monkeypatch):
    from dyno_reports.storage import db

    storage_url = db.psycopg2_url(database_factory("dagster_storage"))
    monkeypatch.setenv("DAGSTER_POSTGRES_URL", storage_url.render_as_string(hide_password=False))
    shutil.copyfile(PROJECT / "dagster.yaml", tmp_path / "dagster.yaml")
    with DagsterInstance.from_config(str(tmp_path)) as instance:
        assert instance.run_retries_enabled and instance.run_retries_max_retries == 1
        assert instance.run_retries_retry_on_asset_or_op_failure is False
