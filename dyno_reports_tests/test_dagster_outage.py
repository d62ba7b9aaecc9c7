"""The report database unreachable for longer than every retry under a running batch, then back.

Real PostgreSQL behind a TCP proxy the test cuts and restores
(`support/tcp_proxy.py`), a real run-worker process (`support/run_worker.py`) on
a Dagster instance in a temporary DAGSTER_HOME (its own storage stays up), and the
reconciliation sweep evaluated by the test as the daemon's ticks would evaluate
it (`build_sensor_context`). The worker runs a 5-tenant batch of
pipeline_overview; the cut lands inside the heavy tenant's transaction, after two
partitions committed, and lasts until the run has ended.
"""

import os
import subprocess
import sys
import time
import uuid
from datetime import timedelta
from pathlib import Path

import pytest
from dagster import DagsterInstance, DagsterRunStatus
from sqlalchemy import create_engine, func, select, text
from sqlalchemy.exc import OperationalError

from dyno_reports.dagster_defs.sweep import RECONCILED_TAG
from dyno_reports.devtools import seed
from dyno_reports.storage.tables import report_run
from dyno_reports_tests.conftest import url_string
from dyno_reports_tests.support.books import assert_books_agree, headers_by_partition, materialised_run_ids
from dyno_reports_tests.support.history import DEAL_IDS, PIPELINE_IDS, T0, TenantData, load
from dyno_reports_tests.support.reaper import sweep_once
from dyno_reports_tests.support.tcp_proxy import TcpProxy

REPORT = "pipeline_overview"
PERIOD = "2025-06-02"
HEAVY_DEALS = 15_000
PROJECT = Path(__file__).resolve().parents[1]
ACTIVE_FACT_INSERT = text(
    "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND state = 'active'"
    " AND pid <> pg_backend_pid() AND query LIKE '%INSERT INTO reporting.report_pipeline_overview_fact%'"
)


def small_tenant(engine, tenant_id: uuid.UUID) -> str:
    data = TenantData(tenant_id=tenant_id)
    lead, *_ = data.add_pipeline(PIPELINE_IDS[0], ["open", "won", "lost"])
    data.add_deal(DEAL_IDS[0], [(T0 - timedelta(days=3), lead, 10)])
    load(engine, data)
    return str(tenant_id)


@pytest.fixture(scope="module")
def tenants(engine) -> list[str]:
    """Two small tenants whose keys sort first, the heavy one, two sorting last: the order a run executes them."""
    heavy = str(seed.seed(engine, tenants=1, deals_per_tenant=HEAVY_DEALS, random_seed=11)[0].tenant_id)
    first = [small_tenant(engine, uuid.UUID(int=i)) for i in (1, 2)]
    last = [small_tenant(engine, uuid.UUID(int=(1 << 128) - i)) for i in (2, 1)]
    return [*first, heavy, *last]


@pytest.fixture(scope="module")
def home(tmp_path_factory, tenants) -> Path:
    folder = tmp_path_factory.mktemp("dagster_home")
    with DagsterInstance.from_config(str(folder)) as instance:
        instance.add_dynamic_partitions("tenant", tenants)
    return folder


@pytest.fixture
def proxy(database_url, monkeypatch):
    monkeypatch.setenv("DYNO_DAGSTER_START_DATE", "2025-01-01")
    with TcpProxy.for_database(database_url) as proxy:
        yield proxy


def succeeded(engine) -> int:
    with engine.connect() as conn:
        return conn.execute(
            select(func.count()).select_from(report_run).where(report_run.c.status == "SUCCEEDED")
        ).scalar_one()


def start_worker(database_url: str, home: Path, tenants: list[str]) -> subprocess.Popen:
    env = {
        **os.environ,
        "DYNO_DATABASE_URL": database_url,
        "DAGSTER_HOME": str(home),
        "DYNO_DAGSTER_START_DATE": "2025-01-01",
    }
    module = "dyno_reports_tests.support.run_worker"
    args = [sys.executable, "-m", module, REPORT, f"{PERIOD}|{tenants[0]}", f"{PERIOD}|{tenants[-1]}"]
    return subprocess.Popen(
        args, env=env, cwd=PROJECT, start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )


def cut_when(proxy: TcpProxy, worker: subprocess.Popen, ready, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not ready():
        assert worker.poll() is None, worker.stderr.read().decode()[-3000:]
        assert time.monotonic() < deadline, "the cut point was never reached"
        time.sleep(0.005)
    proxy.cut()


def test_the_proxy_refuses_and_closes_while_cut_then_serves_again(database_url, proxy):
    through = create_engine(proxy.url_for(database_url), pool_pre_ping=False)
    try:
        with through.connect() as conn:
            assert conn.execute(text("SELECT 1")).scalar_one() == 1
            proxy.cut()
            with pytest.raises(OperationalError):  # the open connection is closed under it
                conn.execute(text("SELECT 1"))
        with pytest.raises(OperationalError, match="refused"):
            through.connect()
        proxy.restore()
        with through.connect() as conn:
            assert conn.execute(text("SELECT 1")).scalar_one() == 1
    finally:
        through.dispose()


@pytest.mark.slow  # about a minute: the worker's start-up and every retry against the cut database
def test_an_outage_longer_than_every_retry_is_repaired_by_the_first_sweep_after_it(
    engine, database_url, home, tenants, proxy
):
    through = url_string(proxy.url_for(database_url))
    keys = [f"{PERIOD}|{t}" for t in tenants]
    with start_worker(through, home, tenants) as worker, engine.connect() as watch:
        watch.execution_options(isolation_level="AUTOCOMMIT")
        cut_when(proxy, worker, lambda: succeeded(engine) == 2 and watch.execute(ACTIVE_FACT_INSERT).scalar_one() > 0)
        worker.wait(timeout=300)  # the run ends while the database is still unreachable
        assert worker.returncode == 0, worker.stderr.read().decode()[-3000:]
    ended_at = time.monotonic()  # the run has ended; the database is still unreachable

    with DagsterInstance.from_config(str(home)) as instance:
        (run,) = instance.get_runs(limit=1)
        assert run.status == DagsterRunStatus.FAILURE
        before = headers_by_partition(engine, run.run_id, REPORT)
        # what the run could not record: partitions without a header, commits never materialised
        assert len(before) < len(tenants) and materialised_run_ids(instance, REPORT, keys[0]) == []

        down = sweep_once(instance, through)  # a tick while the database is still down: the run stays pending

        assert "1 run(s) still pending (1 report database unreachable: " in down and ", lag " in down, down
        assert instance.get_run_by_id(run.run_id).tags.get(RECONCILED_TAG) is None
        assert headers_by_partition(engine, run.run_id, REPORT) == before

        proxy.restore()
        repaired = sweep_once(instance, through)  # the first tick after the database is back

        assert repaired.startswith("1 run(s) reconciled (1 to be confirmed 120 s after their end), "), repaired
        assert_books_agree(engine, instance, run.run_id, REPORT, keys)
        assert len(headers_by_partition(engine, run.run_id, REPORT)) == len(tenants)
        print(f"books agreed {time.monotonic() - ended_at:.1f} s after the run ended (one tick down, one back)")
