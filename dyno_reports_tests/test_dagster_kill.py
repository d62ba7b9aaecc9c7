"""Kills that leave one truth: a real run-worker process SIGKILLed mid-batch, on real PostgreSQL.

The worker (`support/run_worker.py`) runs a 6-tenant batch of pipeline_overview
with the definitions' executor in its own process group; only the worker is
killed, so a step subprocess (a multiprocess executor) would outlive it and fail
the test. It runs against a Dagster instance in a temporary DAGSTER_HOME.
Two heavy tenants make the kill land inside a running report transaction; a
third case dies right after the last commit, before Dagster records anything.
After the kill, run monitoring's part (marking the run failed) is done by hand
and the reconciliation sweep runs; then the invariant of `failures.py` must hold.
"""

import os
import signal
import subprocess
import sys
import time
from datetime import UTC, timedelta
from pathlib import Path

import pytest
from dagster import AssetKey, AssetRecordsFilter, DagsterInstance
from sqlalchemy import func, select, text

from dyno_reports.devtools import seed
from dyno_reports.storage.tables import report_run
from dyno_reports_tests.conftest import url_string
from dyno_reports_tests.support.history import DEAL_IDS, PIPELINE_IDS, T0, TenantData, load
from dyno_reports_tests.support.reaper import fail_and_reap

pytestmark = pytest.mark.slow
REPORT = "pipeline_overview"
HEAVY_DEALS = 15_000
PROJECT = Path(__file__).resolve().parents[1]
ACTIVE_FACT_INSERT = text(
    "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND state = 'active'"
    " AND pid <> pg_backend_pid() AND query LIKE '%INSERT INTO reporting.report_pipeline_overview_fact%'"
)  # a run's one statement inserts the header, then its facts, in data-modifying CTEs


@pytest.fixture(scope="module")
def tenants(engine) -> list[str]:
    """Registration order: heavy, small, small, heavy, small, small (a run executes them sorted by key)."""
    heavy = [str(t.tenant_id) for t in seed.seed(engine, tenants=2, deals_per_tenant=HEAVY_DEALS, random_seed=11)]
    small = []
    for amount in (10, 20, 30, 40):
        data = TenantData()
        lead, _proposal, _won, _lost = data.add_pipeline(PIPELINE_IDS[0], ["open", "open", "won", "lost"])
        data.add_deal(DEAL_IDS[0], [(T0 - timedelta(days=3), lead, amount)])
        load(engine, data)
        small.append(str(data.tenant_id))
    return [heavy[0], small[0], small[1], heavy[1], small[2], small[3]]


@pytest.fixture(scope="module")
def home(tmp_path_factory, tenants) -> Path:
    folder = tmp_path_factory.mktemp("dagster_home")
    with DagsterInstance.from_config(str(folder)) as instance:
        instance.add_dynamic_partitions("tenant", tenants)
    return folder


def succeeded(engine, period_start) -> int:
    """SUCCEEDED runs of the weekly slot starting `period_start`: each tenant's week of it, in its calendar
    (seeded tenants live in several zones and week starts), starts within 3 days of the UTC Monday."""
    near = report_run.c.period_start.between(period_start - timedelta(days=3), period_start + timedelta(days=3))
    with engine.connect() as conn:
        return conn.execute(
            select(func.count()).select_from(report_run).where(near, report_run.c.status == "SUCCEEDED")
        ).scalar_one()


def start_worker(database_url, home: Path, period: str, tenants: list[str], *flags: str) -> subprocess.Popen:
    env = {
        **os.environ,
        "DYNO_DATABASE_URL": url_string(database_url),
        "DAGSTER_HOME": str(home),
        "DYNO_DAGSTER_START_DATE": "2025-01-01",
    }
    args = [
        sys.executable,
        "-m",
        "dyno_reports_tests.support.run_worker",
        REPORT,
        f"{period}|{tenants[0]}",
        f"{period}|{tenants[-1]}",
        *flags,
    ]
    return subprocess.Popen(
        args, env=env, cwd=PROJECT, start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )


def kill_when(worker: subprocess.Popen, ready, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not ready():
        assert worker.poll() is None, worker.stderr.read().decode()[-3000:]
        assert time.monotonic() < deadline, "the kill point was never reached"
        time.sleep(0.005)
    os.kill(worker.pid, signal.SIGKILL)  # the worker only, as when its host kills it: children would survive


def group_gone(pgid: int, timeout: float = 5) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            os.killpg(pgid, 0)
        except ProcessLookupError:
            return True
        time.sleep(0.05)
    return False


def reap(instance: DagsterInstance, database_url) -> str:
    """What run monitoring and the failure sensor do for a run whose worker died."""
    (run,) = instance.get_runs(limit=1)
    fail_and_reap(instance, run, url_string(database_url))
    return run.run_id


def assert_one_truth(engine, instance: DagsterInstance, dagster_run_id: str, period: str, tenants: list[str]) -> None:
    with engine.connect() as conn:
        headers = conn.execute(select(report_run).where(report_run.c.dagster_run_id == dagster_run_id)).all()
        in_progress = conn.execute(
            select(func.count()).select_from(report_run).where(report_run.c.status == "IN_PROGRESS")
        ).scalar_one()
    assert in_progress == 0
    by_tenant = {str(h.tenant_id): h for h in headers}
    assert sorted(by_tenant) == sorted(tenants) and len(headers) == len(tenants)  # one header each
    for tenant_id, header in by_tenant.items():
        records = instance.fetch_materializations(
            AssetRecordsFilter(AssetKey(REPORT), [f"{period}|{tenant_id}"]), limit=10
        ).records
        run_ids = [r.asset_materialization.metadata["run_id"].value for r in records]
        if header.status == "SUCCEEDED":
            assert run_ids[:1] == [str(header.run_id)], tenant_id  # the latest materialisation is this run
        else:
            assert header.status == "FAILED" and str(header.run_id) not in run_ids


@pytest.mark.parametrize(
    "period, kill_point",
    [
        ("2025-06-02", "first heavy partition running"),
        ("2025-06-09", "second heavy partition running"),
        ("2025-06-16", "every partition committed, nothing materialised"),
    ],
)
def test_a_killed_run_worker_leaves_no_process_and_one_truth(engine, database_url, home, tenants, period, kill_point):
    from datetime import datetime

    period_start = datetime.fromisoformat(period).replace(tzinfo=UTC)
    heavy_positions = [i for i, t in enumerate(sorted(tenants)) if t in (tenants[0], tenants[3])]
    every = kill_point.startswith("every")
    done_before = len(tenants) if every else heavy_positions[0 if kill_point.startswith("first") else 1]
    flags = ("--die-after-commits",) if every else ()
    with start_worker(database_url, home, period, tenants, *flags) as worker, engine.connect() as conn:
        if every:
            worker.wait(timeout=120)
            assert worker.returncode == -signal.SIGKILL, worker.stderr.read().decode()[-3000:]
        else:
            conn.execution_options(isolation_level="AUTOCOMMIT")
            kill_when(
                worker,
                lambda: (
                    succeeded(engine, period_start) == done_before and conn.execute(ACTIVE_FACT_INSERT).scalar_one() > 0
                ),
            )
            worker.wait(timeout=10)
    assert group_gone(worker.pid), "a process of the killed run worker survived"
    assert succeeded(engine, period_start) == done_before  # the cut-off transaction never commits
    with DagsterInstance.from_config(str(home)) as instance:
        dagster_run_id = reap(instance, database_url)
        assert_one_truth(engine, instance, dagster_run_id, period, tenants)
