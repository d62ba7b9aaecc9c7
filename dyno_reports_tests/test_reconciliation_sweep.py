"""The reconciliation sweep: real PostgreSQL, a temporary Dagster instance, in-process.

Dagster runs are created in the instance and ended as run monitoring or a terminate
would end them (`report_run_failed`, `report_run_canceled`); what their worker had
committed before is written by the executor under their Dagster run id, as the IO
manager does. The sweep is evaluated as a tick (`build_sensor_context`), or called
with its clock moved past the settle time (`sweep.sweep(now=...)`).
"""

import logging
import threading
import time

import pytest
from dagster import AssetKey, DagsterEvent, DagsterEventType, DagsterRun
from sqlalchemy import func, select

from dyno_reports.core import config
from dyno_reports.core.errors import ConfigError
from dyno_reports.dagster_defs import sweep
from dyno_reports.dagster_defs.failures import RECONCILE_LOCK_CLASS
from dyno_reports.dagster_defs.run_partitions import RANGE_END_TAG, RANGE_START_TAG
from dyno_reports.storage.tables import report_run
from dyno_reports_tests.conftest import url_string
from dyno_reports_tests.support.books import assert_books_agree, headers_by_partition, materialised_run_ids
from dyno_reports_tests.support.dagster import instance_with_tenants
from dyno_reports_tests.support.reaper import sweep_once
from dyno_reports_tests.support.runs import REPORT, batch_run, commit, leave_in_progress, small_tenants, week

LOG = logging.getLogger(__name__)


@pytest.fixture(scope="module")
def tenants(engine) -> list[str]:
    """Three small tenants, in registration order."""
    return small_tenants(engine, 3)


@pytest.fixture
def url(database_url, monkeypatch) -> str:
    monkeypatch.setenv("DYNO_DAGSTER_START_DATE", "2025-01-01")
    monkeypatch.delenv("DYNO_RECONCILE_LOOKBACK_HOURS", raising=False)
    return url_string(database_url)


@pytest.fixture
def instance(tenants):
    with instance_with_tenants(*tenants) as instance:
        yield instance


def report_run_rows(engine) -> int:
    with engine.connect() as conn:
        return conn.execute(select(func.count()).select_from(report_run)).scalar_one()


def reconciled_tags(instance, runs: list[DagsterRun]) -> list[str | None]:
    return [instance.get_run_by_id(r.run_id).tags.get(sweep.RECONCILED_TAG) for r in runs]


def later() -> float:
    """A clock past the settle time of every run ended so far."""
    return time.time() + sweep.SETTLE_SECONDS + 1


@pytest.mark.slow  # about 20 s: 30 runs created and failed, three passes
def test_thirty_failed_batch_runs_are_reconciled_in_one_pass_and_the_next_pass_does_nothing(
    url, engine, tenants, instance
):
    """Each run's worker committed its first tenant, was cut off in the third's transaction, never ran the second."""
    runs = []
    for i in range(30):
        run = batch_run(instance, week(i), tenants)
        commit(engine, tenants[0], week(i), run.run_id)
        leave_in_progress(engine, tenants[2], week(i), run.run_id)
        instance.report_run_failed(run)  # as run monitoring does when the worker died
        runs.append(run)

    started = time.perf_counter()
    message = sweep_once(instance, url)
    print(f"one pass over 30 failed runs: {time.perf_counter() - started:.2f} s")

    assert message.startswith(
        "30 run(s) reconciled (30 to be confirmed 120 s after their end), 60 report_run header(s) marked FAILED, "
        "30 committed partition(s) reported as materialised; 0 run(s) still pending;"
    ), message
    for i, run in enumerate(runs):
        assert_books_agree(
            engine, instance, run.run_id, REPORT, [f"{week(i)}|{t}" for t in tenants], one_header_each=True
        )
    rows = report_run_rows(engine)
    materialised = [materialised_run_ids(instance, REPORT, f"{week(i)}|{tenants[0]}") for i in range(30)]

    again = sweep.sweep(engine, instance, LOG, now=later())  # nothing to repair; the runs have settled: confirmed

    assert (again.reconciled, again.settling, again.failed_headers, again.reported) == (30, 0, 0, 0)
    assert report_run_rows(engine) == rows
    assert [materialised_run_ids(instance, REPORT, f"{week(i)}|{tenants[0]}") for i in range(30)] == materialised
    assert reconciled_tags(instance, runs) == ["FAILURE"] * 30
    assert sweep_once(instance, url) == "nothing to reconcile (30 run(s) ended in the last 24 h, every one reconciled)"


def test_a_pass_is_bounded_and_takes_the_oldest_runs_first(url, engine, tenants, instance, monkeypatch):
    monkeypatch.setattr(sweep, "MAX_RUNS_PER_PASS", 2)
    runs = [batch_run(instance, week(40 + i), tenants) for i in range(3)]
    for run in runs:
        instance.report_run_failed(run)

    outcome = sweep.sweep(engine, instance, LOG, now=later())

    assert outcome.reconciled == 2 and dict(outcome.pending) == {"not reached (at most 2 runs per pass)": 1}
    assert reconciled_tags(instance, runs) == ["FAILURE", "FAILURE", None]
    assert sweep.sweep(engine, instance, LOG, now=later()).reconciled == 1  # the next pass takes it
    assert reconciled_tags(instance, runs) == ["FAILURE"] * 3


def test_a_canceled_run_that_commits_and_ends_success_afterwards_is_reconciled_again(url, engine, tenants, instance):
    """Terminated with MARK_AS_CANCELED_IMMEDIATELY, its worker went on: committed a partition, then the run ended
    SUCCESS (the flip of issue 21). Its tag names the status it was reconciled in, so the new status is swept."""
    period = week(45)
    run = batch_run(instance, period, tenants)
    instance.report_run_canceled(run)
    first = sweep.sweep(engine, instance, LOG, now=later())
    assert (first.failed_headers, reconciled_tags(instance, [run])) == (3, ["CANCELED"])

    committed = commit(engine, tenants[1], period, run.run_id)
    success = DagsterEvent(DagsterEventType.PIPELINE_SUCCESS.value, job_name=run.job_name, message="finished after all")
    instance.report_dagster_event(success, run_id=run.run_id)

    assert sweep_once(instance, url).startswith(
        "1 run(s) reconciled (0 to be confirmed 120 s after their end), 0 report_run header(s) marked FAILED, "
        "1 committed partition(s) reported as materialised; 0 run(s) still pending"
    )
    assert materialised_run_ids(instance, REPORT, f"{period}|{tenants[1]}") == [committed]
    assert reconciled_tags(instance, [run]) == ["SUCCESS"]  # a SUCCESS run has nothing in flight: confirmed at once
    assert_books_agree(engine, instance, run.run_id, REPORT, [f"{period}|{t}" for t in tenants])


def test_a_success_run_that_materialised_its_partitions_costs_no_query_per_partition(
    url, engine, tenants, instance, monkeypatch
):
    from dagster import materialize

    from dyno_reports.dagster_defs.assets import report_assets
    from dyno_reports_tests.support.dagster import report_resources

    period = week(44)
    tags = {RANGE_START_TAG: f"{period}|{tenants[0]}", RANGE_END_TAG: f"{period}|{tenants[-1]}"}
    asset = next(a for a in report_assets("2025-01-01") if a.key == AssetKey(REPORT))
    result = materialize([asset], instance=instance, resources=report_resources(url), tags=tags)
    assert result.success
    lookups = []
    fetch = instance.fetch_materializations
    monkeypatch.setattr(instance, "fetch_materializations", lambda *a, **k: lookups.append(a) or fetch(*a, **k))

    outcome = sweep.sweep(engine, instance, LOG)

    assert (outcome.reconciled, outcome.failed_headers, outcome.reported, lookups) == (1, 0, 0, [])
    assert reconciled_tags(instance, [instance.get_run_by_id(result.run_id)]) == ["SUCCESS"]
    assert_books_agree(engine, instance, result.run_id, REPORT, [f"{period}|{t}" for t in tenants])


def test_a_run_is_swept_again_until_it_settles(url, engine, tenants, instance):
    """A canceled run's worker may still commit the transaction in flight: no tag before SETTLE_SECONDS."""
    period = week(46)
    run = batch_run(instance, period, tenants)
    instance.report_run_canceled(run)
    assert sweep.sweep(engine, instance, LOG).settling == 1 and reconciled_tags(instance, [run]) == [None]

    committed = commit(engine, tenants[0], period, run.run_id)  # landed after the first pass's FAILED header
    assert sweep.sweep(engine, instance, LOG).reported == 1

    assert materialised_run_ids(instance, REPORT, f"{period}|{tenants[0]}") == [committed]
    assert sweep.sweep(engine, instance, LOG, now=later()).settling == 0
    assert reconciled_tags(instance, [run]) == ["CANCELED"]


def test_a_re_execution_does_not_fail_the_partitions_its_parent_committed(url, engine, tenants, instance):
    """Re-executed from failure, the run skips what its parent committed: those partitions have no header of its own
    and must not get a FAILED one."""
    period = week(47)
    parent = batch_run(instance, period, tenants)
    kept = [commit(engine, t, period, parent.run_id) for t in tenants[:2]]
    instance.report_run_failed(parent)
    sweep.sweep(engine, instance, LOG, now=later())
    family = {"parent_run_id": parent.run_id, "root_run_id": parent.run_id}
    child = batch_run(instance, period, tenants, **family)
    redone = commit(engine, tenants[2], period, child.run_id)
    instance.report_dagster_event(
        DagsterEvent(DagsterEventType.PIPELINE_SUCCESS.value, job_name=child.job_name), run_id=child.run_id
    )

    sweep.sweep(engine, instance, LOG, now=later())

    assert sorted(headers_by_partition(engine, child.run_id, REPORT)) == [f"{period}|{tenants[2]}"]
    assert [materialised_run_ids(instance, REPORT, f"{period}|{t}")[0] for t in tenants] == [*kept, redone]


def test_a_run_reconciled_after_its_retry_committed_does_not_fail_what_the_retry_did(url, engine, tenants, instance):
    """The worker crashed with the database down; run retries re-executed the run once the database was back, before
    the sweep reached the first run: the partitions its retry committed get no (later, hence "latest") FAILED header."""
    period = week(43)
    crashed = batch_run(instance, period, tenants)
    instance.report_run_failed(crashed)
    retry = batch_run(instance, period, tenants, parent_run_id=crashed.run_id, root_run_id=crashed.run_id)
    committed = [commit(engine, t, period, retry.run_id) for t in tenants]
    instance.report_dagster_event(
        DagsterEvent(DagsterEventType.PIPELINE_SUCCESS.value, job_name=retry.job_name), run_id=retry.run_id
    )

    sweep.sweep(engine, instance, LOG, now=later())

    assert headers_by_partition(engine, crashed.run_id, REPORT) == {}
    assert [materialised_run_ids(instance, REPORT, f"{period}|{t}") for t in tenants] == [[c] for c in committed]


def test_a_range_whose_first_tenant_was_removed_is_still_reconciled(url, engine, tenants, instance):
    """The tenant sensor removed the range's first tenant: the range no longer resolves, the run's plan does."""
    period = week(48)
    run = batch_run(instance, period, tenants)
    instance.report_run_failed(run)
    instance.delete_dynamic_partition("tenant", tenants[0])

    outcome = sweep.sweep(engine, instance, LOG, now=later())

    assert (outcome.reconciled, outcome.failed_headers, dict(outcome.pending)) == (1, 3, {})
    assert_books_agree(engine, instance, run.run_id, REPORT, [f"{period}|{t}" for t in tenants])


def test_two_reconciliations_of_one_run_take_turns(url, engine, tenants, instance):
    """The failure hook of a cancelled run's worker and a sweep tick may meet: the second waits, then adds nothing."""
    period = week(51)
    run = batch_run(instance, period, tenants)
    instance.report_run_canceled(run)
    second = threading.Thread(target=sweep.sweep, args=(engine, instance, LOG))
    with engine.begin() as conn:  # the first reconciliation, in progress
        conn.execute(select(func.pg_advisory_xact_lock(RECONCILE_LOCK_CLASS, func.hashtext(run.run_id))))
        second.start()
        second.join(timeout=1)
        assert second.is_alive() and headers_by_partition(engine, run.run_id, REPORT) == {}
    second.join(timeout=30)
    assert not second.is_alive()
    assert_books_agree(engine, instance, run.run_id, REPORT, [f"{period}|{t}" for t in tenants], one_header_each=True)


def test_runs_that_ended_before_the_lookback_are_left_alone(url, engine, tenants, instance, monkeypatch):
    run = batch_run(instance, week(49), tenants)
    instance.report_run_failed(run)
    monkeypatch.setenv("DYNO_RECONCILE_LOOKBACK_HOURS", "1")

    outcome = sweep.sweep(engine, instance, LOG, now=time.time() + 7200)

    assert (outcome.ended, outcome.reconciled) == (0, 0) and headers_by_partition(engine, run.run_id, REPORT) == {}
    assert (
        outcome.summary(time.time(), 1) == "nothing to reconcile (0 run(s) ended in the last 1 h, every one reconciled)"
    )


@pytest.mark.parametrize("raw", ["0", "-3", "a day", "nan", "1e9"])
def test_a_bad_lookback_is_one_clear_error(monkeypatch, raw):
    monkeypatch.setenv("DYNO_RECONCILE_LOOKBACK_HOURS", raw)
    with pytest.raises(ConfigError, match="DYNO_RECONCILE_LOOKBACK_HOURS must be"):
        config.reconcile_lookback()


def test_the_sweep_is_on_by_default_every_30_s_and_replaces_the_reapers():
    from dyno_reports.definitions import defs

    sensors = {s.name: s for s in defs.get_repository_def().sensor_defs}
    assert "report_run_failure_reaper" not in sensors and "report_run_cancel_reaper" not in sensors
    swept = sensors["report_run_reconciliation_sweep"]
    assert swept.default_status.value == "RUNNING" and swept.minimum_interval_seconds == 30
