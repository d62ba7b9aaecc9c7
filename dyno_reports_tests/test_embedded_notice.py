"""The embedded PostgreSQL's new-cluster notices (subprocesses, a real embedded server in a scratch DYNO_DATA_DIR,
stopped at the end): a first start says it creates a cluster; two commands starting at once on a fresh folder
make one cluster and say so once; a data directory deleted under a running server is said to be gone, naming the
server's pid, before the new, empty cluster replaces it."""

import contextlib
import os
import shutil
import subprocess
import sys
from pathlib import Path

import psutil  # type: ignore[import-untyped]
import pytest

PROJECT = Path(__file__).resolve().parents[1]


def dyno(data_dir: Path, *args: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith("DYNO_")}
    env["DYNO_DATA_DIR"] = str(data_dir)
    return subprocess.run(
        [sys.executable, "-m", "dyno_reports.cli.main", *args],
        env=env,
        cwd=PROJECT,
        capture_output=True,
        text=True,
        timeout=120,
    )


def servers_of(pgdata: Path) -> list[psutil.Process]:
    return [
        proc
        for proc in psutil.process_iter(attrs=["name", "cmdline"])
        if proc.info["name"] == "postgres" and str(pgdata) in (proc.info["cmdline"] or ())
    ]


@pytest.fixture
def data_dir(tmp_path: Path):
    """A scratch data folder; every server started on it is stopped at the end."""
    folder = tmp_path / "dyno"
    yield folder
    dyno(folder, "db", "stop")
    for proc in servers_of(folder / "pgdata"):
        with contextlib.suppress(psutil.NoSuchProcess):
            proc.kill()


def test_a_data_directory_deleted_under_its_server_is_said_to_be_gone(data_dir: Path):
    pgdata = data_dir / "pgdata"
    first = dyno(data_dir, "db", "url")
    assert first.returncode == 0, first.stderr
    assert first.stderr == f"embedded PostgreSQL: creating a new cluster in {pgdata} (first use)\n"
    server_pid = int((pgdata / "postmaster.pid").read_text().split()[0])

    shutil.rmtree(pgdata)
    again = dyno(data_dir, "db", "url")

    assert again.returncode == 0, again.stderr
    assert again.stderr == (
        f"embedded PostgreSQL: its data directory {pgdata} is gone (deleted while its server, pid {server_pid}, "
        f"was running); that server is stopped and a new, empty cluster is created in {pgdata}: its data is lost\n"
    )
    assert not psutil.pid_exists(server_pid) or psutil.Process(server_pid).status() == psutil.STATUS_ZOMBIE
    quiet = dyno(data_dir, "db", "url")  # the new cluster is used from then on, without a word
    assert quiet.returncode == 0 and quiet.stderr == ""


def test_two_commands_starting_at_once_on_a_fresh_folder_make_one_cluster_and_say_so_once(data_dir: Path):
    """Parallel test workers, or two commands on a fresh checkout: one looks, creates and starts at a time."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("DYNO_")} | {"DYNO_DATA_DIR": str(data_dir)}
    command = [sys.executable, "-m", "dyno_reports.cli.main", "db", "url"]
    both = [
        subprocess.Popen(command, env=env, cwd=PROJECT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for _ in range(2)
    ]
    outcomes = [(p.wait(timeout=120), *p.communicate()) for p in both]

    assert [code for code, _, _ in outcomes] == [0, 0], outcomes
    assert outcomes[0][1] == outcomes[1][1], outcomes  # the same server
    notice = f"embedded PostgreSQL: creating a new cluster in {data_dir / 'pgdata'} (first use)\n"
    assert sorted(err for _, _, err in outcomes) == ["", notice], outcomes
    assert len(servers_of(data_dir / "pgdata")) == 1
