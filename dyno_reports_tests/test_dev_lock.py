"""One `make dev` per Dagster home (subprocesses, no database: the refusal comes before anything starts, so
the database URL given points at nothing): a second one refuses at once naming the first's pid and URL, the
lock is free once its holder is SIGKILLed, and the `dagster dev` group a killed one left still blocks."""

import contextlib
import fcntl
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from dyno_reports.devtools import dev_lock

PROJECT = Path(__file__).resolve().parents[1]
NOWHERE = "postgresql://nobody@127.0.0.1:9/nothing"  # a `make dev` that got past the lock would fail on it
REFUSED_WITHIN = 5.0
# Takes the lock as `make dev` does; with "child", also starts a process group as `make dev` starts
# `dagster dev` (process_group.run_until_signalled) and records it. Prints the pid it recorded, or its own.
HOLDER = """
import os, pathlib, subprocess, sys
from dyno_reports.devtools import process_group
from dyno_reports.devtools import dev_lock

lock = dev_lock.acquire(pathlib.Path(sys.argv[1]), sys.argv[2])
def started(child):
    lock.record(child.pid)
    print(child.pid, flush=True)
if sys.argv[3] == "child":
    quiet = subprocess.DEVNULL  # not the test's pipes, which would then stay open after this one is killed
    process_group.run_until_signalled(["sleep", "120"], started=started, stdin=quiet, stdout=quiet)
else:
    print(os.getpid(), flush=True)
    os.read(0, 1)  # until the test ends (or kills it)
"""


def start_holder(home: Path, url: str, mode: str) -> tuple[subprocess.Popen, int]:
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(home), url, mode],
        cwd=PROJECT,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert holder.stdout is not None
    return holder, int(holder.stdout.readline())


def second_make_dev(data_dir: Path) -> tuple[subprocess.CompletedProcess, float]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DAGSTER_", "DYNO_"))}
    env.update(DYNO_DATA_DIR=str(data_dir), DYNO_DATABASE_URL=NOWHERE)
    began = time.monotonic()
    done = subprocess.run(
        [sys.executable, "-m", "dyno_reports.devtools.dev", "-p", "3999"],
        env=env,
        cwd=PROJECT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    return done, time.monotonic() - began


def lock_is_free(home: Path) -> bool:
    fd = os.open(home / dev_lock.LOCK_FILE, os.O_RDWR)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        return True
    except BlockingIOError:
        return False
    finally:
        os.close(fd)


def killed(holder: subprocess.Popen) -> None:
    holder.kill()
    holder.communicate(timeout=10)  # also closes its pipes


def test_a_second_make_dev_refuses_at_once_naming_the_first_and_the_lock_dies_with_it(tmp_path):
    home = tmp_path / "dagster_home"
    holder, pid = start_holder(home, "http://127.0.0.1:3999", "alone")
    try:
        done, took = second_make_dev(tmp_path)
        assert done.returncode == 1, done.stderr
        assert took < REFUSED_WITHIN
        assert done.stdout == ""
        assert done.stderr == (
            f"error: another `make dev` (pid {pid}) is running on this Dagster home ({home}), its UI at "
            f"http://127.0.0.1:3999: stop it first (Ctrl-C in its terminal, or kill {pid})\n"
        )
        assert not lock_is_free(home)
    finally:
        killed(holder)
    assert lock_is_free(home)  # SIGKILL: the kernel released it


def test_the_dagster_dev_a_killed_make_dev_left_blocks_but_holds_no_lock(tmp_path):
    home = tmp_path / "dagster_home"
    holder, group = start_holder(home, "http://127.0.0.1:3998", "child")
    try:
        killed(holder)
        assert lock_is_free(home)  # its `dagster dev` did not inherit the lock...
        done, took = second_make_dev(tmp_path)
        assert done.returncode == 1
        assert took < REFUSED_WITHIN
        assert f"a `dagster dev` (process group {group}) of a `make dev` that was killed (pid {holder.pid})" in (
            done.stderr
        )
        assert f"its UI at http://127.0.0.1:3998: stop it first (kill -- -{group})" in done.stderr  # ...but blocks
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(group, signal.SIGKILL)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:  # the group is gone once its process is reaped by init
        with contextlib.suppress(dev_lock.DevAlreadyRunning):
            os.close(dev_lock.acquire(home, "http://127.0.0.1:3000").fd)
            return
        time.sleep(0.1)
    pytest.fail("the lock stayed refused after the left group was killed")


@pytest.mark.parametrize(
    ("args", "url"),
    [
        (["-p", "3001"], "http://127.0.0.1:3001"),
        (["--port=3002", "--host", "0.0.0.0"], "http://0.0.0.0:3002"),
        (["-h127.0.0.2", "-p3003", "--log-level", "debug"], "http://127.0.0.2:3003"),
        (["--dagit-port", "3004", "-h", "::1"], "http://[::1]:3004"),
    ],
)
def test_the_url_comes_from_dagster_devs_host_and_port_arguments(args, url):
    assert dev_lock.webserver_args(args) == (args, url)


def test_without_a_port_the_one_the_webserver_would_take_is_given_explicitly():
    with socket.socket() as taken:  # 3000 in use (by this socket, or by something else already)
        with contextlib.suppress(OSError):
            taken.bind(("127.0.0.1", dev_lock.DEFAULT_PORT))
            taken.listen()
        args, url = dev_lock.webserver_args(["--log-level", "debug"])
    port = args[-1]
    assert args == ["--log-level", "debug", "--port", port]
    assert port != str(dev_lock.DEFAULT_PORT)
    assert url == f"http://127.0.0.1:{port}"
