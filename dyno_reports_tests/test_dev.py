"""`make dev`'s process (real PostgreSQL, subprocesses: `dagster dev` and its webserver on loopback):
SIGTERM stops it and every process it started within 10 seconds; on an empty database it seeds the demo's
tenants and its partitions start at their history's first month (its lock: test_dev_lock.py)."""

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests
from sqlalchemy import create_engine, select

from dyno_reports.core import periods
from dyno_reports.devtools import demo, process_group
from dyno_reports.storage.tables import tenant
from dyno_reports_tests.conftest import url_string
from dyno_reports_tests.support.history import PIPELINE_IDS, TenantData, load

PROJECT = Path(__file__).resolve().parents[1]
STOPPED_WITHIN = 10.0


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def descendants(pid: int) -> set[int]:
    """Live processes below `pid` (from /proc: parent links)."""
    parents: dict[int, int] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            state, ppid = stat.read_text().rsplit(")", 1)[1].split()[:2]
        except (OSError, ValueError):
            continue
        if state not in ("Z", "X"):
            parents[int(stat.parent.name)] = int(ppid)
    found, frontier = set(), {pid}
    while frontier:
        frontier = {child for child, parent in parents.items() if parent in frontier} - found
        found |= frontier
    return found


def alive(pids: set[int]) -> set[int]:
    live = set()
    for pid in pids:
        try:
            state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except (OSError, IndexError):
            continue
        if state not in ("Z", "X"):
            live.add(pid)
    return live


def wait_for_webserver(dev: subprocess.Popen, port: int, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert dev.poll() is None, f"make dev ended early ({dev.returncode})"
        try:
            if requests.get(f"http://127.0.0.1:{port}/server_info", timeout=2).ok:
                return
        except requests.ConnectionError:
            pass
        time.sleep(0.3)
    raise AssertionError(f"no webserver on port {port} after {timeout} s")


@pytest.mark.slow
def test_sigterm_stops_dagster_dev_and_every_process_it_started(engine, database_url, database_factory, tmp_path):
    data = TenantData()
    data.add_pipeline(PIPELINE_IDS[0], ["open", "won", "lost"])
    load(engine, data)  # a tenant already: make dev does not seed
    dagster_db = database_factory("dev_dagster").database
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DAGSTER_", "DYNO_"))}
    env.update(
        DYNO_DATABASE_URL=url_string(database_url),
        DYNO_DATA_DIR=str(tmp_path / "dyno"),
        DYNO_DAGSTER_DATABASE=dagster_db,
        DAGSTER_HOME=str(tmp_path / "unused"),
    )
    port = free_port()
    log = (tmp_path / "dev.log").open("w+")
    dev = subprocess.Popen(
        [sys.executable, "-m", "dyno_reports.devtools.dev", "-p", str(port), "-h", "127.0.0.1"],
        env=env,
        cwd=PROJECT,
        stdout=log,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    try:
        wait_for_webserver(dev, port, timeout=40)
        started = descendants(dev.pid)
        assert len(started) >= 4  # dagster dev, its webserver, daemon, code server(s)
        groups = {os.getpgid(pid) for pid in started} - {os.getpgrp()}
        assert (tmp_path / "dyno" / "dagster_home" / "dagster.yaml").exists()

        signalled = time.monotonic()
        dev.send_signal(signal.SIGTERM)
        dev.wait(timeout=STOPPED_WITHIN)
        while alive(started) and time.monotonic() - signalled < STOPPED_WITHIN:
            time.sleep(0.1)

        assert alive(started) == set(), "still running after 10 s"
        assert time.monotonic() - signalled < STOPPED_WITHIN
        assert all(process_group.group_members(group) == [] for group in groups)  # also processes started later
        assert dev.returncode == -signal.SIGTERM
        log.seek(0)
        assert "dagster dev stopped (SIGTERM)" in log.read()
    finally:  # a failed test leaves nothing running
        for pid in alive(descendants(dev.pid)) | {dev.pid}:
            try:
                if os.getpgid(pid) != os.getpgrp():
                    os.killpg(os.getpgid(pid), signal.SIGKILL)
            except ProcessLookupError:
                pass
        dev.wait(timeout=10)
        log.close()


PREPARE = """
from dyno_reports.devtools import dev
env = dev.prepare()
print("START=" + env["DYNO_DAGSTER_START_DATE"])
"""


def test_make_dev_seeds_the_demos_tenants_and_its_partitions_cover_their_history(database_factory, tmp_path):
    empty = database_factory("dev_empty")  # not migrated: prepare() upgrades it
    dagster_db = database_factory("dev_prepare_dagster").database
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DAGSTER_", "DYNO_"))}
    env.update(DYNO_DATABASE_URL=url_string(empty), DYNO_DATA_DIR=str(tmp_path), DYNO_DAGSTER_DATABASE=dagster_db)

    def prepare(**extra: str) -> str:
        done = subprocess.run(
            [sys.executable, "-c", PREPARE], env={**env, **extra}, cwd=PROJECT, capture_output=True, text=True
        )
        assert done.returncode == 0, done.stderr
        return done.stdout

    history_start = periods.start_of_today() - demo.HISTORY
    first_month = history_start.date().replace(day=1).isoformat()
    printed = prepare()
    assert "no tenants yet: seeding the demo's tenants" in printed
    assert f"partitions from {first_month}: the month of the earliest" in printed
    assert printed.endswith(f"START={first_month}\n")
    engine = create_engine(empty)
    try:
        with engine.connect() as conn:
            created = conn.execute(select(tenant.c.created_at)).scalars().all()
    finally:
        engine.dispose()
    assert created == [history_start] * demo.DEMO_TENANTS  # the demo's tenants, history ending today

    printed = prepare(DYNO_DAGSTER_START_DATE="2020-01-01")  # the user's start wins; tenants exist: no seeding
    assert "seeding" not in printed and "partitions from" not in printed
    assert printed.endswith("START=2020-01-01\n")
