"""The throwaway world: databases, DAGSTER_HOME, `dagster dev` start/stop, the GraphQL helper."""

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, text
from sqlalchemy.engine import URL

from dyno_reports.storage import db, migrate

PROJECT = Path(__file__).resolve().parents[2]
START_DATE = "2024-07-01"
WAIT_SECONDS = 600


@dataclass
class World:
    server: URL
    report_db: str
    dagster_db: str
    home: Path
    port: int
    engine: Engine | None = None
    dev: subprocess.Popen | None = None
    instance: Any = None

    @property
    def report_url(self) -> URL:
        return db.sqlalchemy_url(self.server).set(database=self.report_db)

    def graphql(self, query: str, variables: dict[str, Any]) -> dict[str, Any]:
        body = json.dumps({"query": query, "variables": variables}).encode()
        request = urllib.request.Request(
            f"http://127.0.0.1:{self.port}/graphql", body, {"Content-Type": "application/json"}
        )
        with urllib.request.urlopen(request, timeout=300) as response:
            payload = json.load(response)
        if payload.get("errors"):
            raise RuntimeError(f"GraphQL errors: {payload['errors']}")
        return payload["data"]


def new_world(server_url: str) -> World:
    suffix = uuid.uuid4().hex[:10]
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    home = Path(tempfile.mkdtemp(prefix="dagster_bench_home_"))
    return World(db.sqlalchemy_url(server_url), f"dyno_bench_{suffix}", f"dagster_bench_{suffix}", home, port)


def environment(world: World) -> dict[str, str]:
    """What the daemon, webserver, code servers and run workers see (and this process, for its instance)."""
    return {
        "DAGSTER_HOME": str(world.home),
        "DAGSTER_POSTGRES_URL": db.psycopg2_url(world.server.set(database=world.dagster_db)).render_as_string(
            hide_password=False
        ),
        "DYNO_DATABASE_URL": world.report_url.render_as_string(hide_password=False),
        "DYNO_DAGSTER_START_DATE": START_DATE,
    }


def create_databases(world: World) -> None:
    for name in (world.report_db, world.dagster_db):
        db.ensure_database(world.server, name)
    shutil.copyfile(PROJECT / "dagster.yaml", world.home / "dagster.yaml")
    os.environ.update(environment(world))
    world.engine = create_engine(world.report_url)
    migrate.upgrade(world.engine)
    from dagster import DagsterInstance

    world.instance = DagsterInstance.get()  # the bench instance: same dagster.yaml, same storage


def drop_databases(world: World) -> None:
    if world.instance is not None:
        world.instance.dispose()
    if world.engine is not None:
        world.engine.dispose()
    admin = create_engine(world.server, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            for name in (world.report_db, world.dagster_db):  # identifiers we generated: quoted, not bound
                conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    finally:
        admin.dispose()


def start_dagster(world: World) -> None:
    """`dagster dev` in a session of its own (its children inherit it), output to a log in DAGSTER_HOME."""
    dagster = Path(sys.executable).with_name("dagster")
    log = open(world.home / "dagster_dev.log", "wb")  # noqa: SIM115 (open for the life of the subprocess)
    world.dev = subprocess.Popen(
        [str(dagster), "dev", "-w", str(PROJECT / "workspace.yaml"), "-h", "127.0.0.1", "-p", str(world.port)],
        env={**os.environ, **environment(world)},
        cwd=world.home,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    log.close()
    wait_for(lambda: location_loaded(world), 240, "the webserver and the code location")
    required = set(world.instance.get_required_daemon_types())
    wait_for(lambda: required <= set(world.instance.get_daemon_heartbeats()), 240, "daemon heartbeats")


def location_loaded(world: World) -> bool:
    if world.dev is not None and world.dev.poll() is not None:
        raise RuntimeError(f"dagster dev exited ({world.dev.returncode}); see {world.home / 'dagster_dev.log'}")
    try:
        data = world.graphql(
            "{ workspaceOrError { ... on Workspace { locationEntries { loadStatus "
            "locationOrLoadError { __typename } } } } }",
            {},
        )
    except OSError:
        return False
    entries = data["workspaceOrError"].get("locationEntries") or []
    return (
        bool(entries)
        and all(e["loadStatus"] == "LOADED" for e in entries)
        and all(e["locationOrLoadError"]["__typename"] == "RepositoryLocation" for e in entries)
    )


def our_processes(world: World) -> list[int]:
    """Pids in `dagster dev`'s session, or with this world's DAGSTER_HOME in their environment."""
    marker = f"DAGSTER_HOME={world.home}".encode()
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            session = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[3])
            mine = world.dev is not None and session == world.dev.pid
            if mine or marker in (entry / "environ").read_bytes().split(b"\0"):
                pids.append(int(entry.name))
        except (OSError, IndexError, ValueError):
            continue  # gone, or not ours to read
    return pids


def stop_dagster(world: World) -> list[str]:
    """SIGINT to `dagster dev` (it stops its children), then SIGKILL, pid by pid, whatever is left.

    Returns the command lines of the processes still running once `dagster dev` exited (or after 30 s).
    """
    if world.dev is None:
        return []
    if world.dev.poll() is None:
        world.dev.send_signal(signal.SIGINT)
        with contextlib.suppress(subprocess.TimeoutExpired):
            world.dev.wait(30)
    leftover = {pid: command_line(pid) for pid in our_processes(world) if alive(pid)}
    for pid in leftover:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    if world.dev.poll() is None:
        world.dev.kill()
    world.dev.wait()
    return list(leftover.values())


def command_line(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()[:70]
    except OSError:
        return "?"


def alive(pid: int) -> bool:
    """Running (a zombie waiting for its parent to reap it counts as dead)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def wait_for(condition: Callable[[], Any], seconds: float, what: str, every: float = 0.25) -> Any:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(every)
    raise TimeoutError(f"gave up after {seconds:.0f} s waiting for {what}")


def descendants(pid: int) -> list[int]:
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            parent = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        children.setdefault(parent, []).append(int(entry.name))
    found, todo = [], list(children.get(pid, []))
    while todo:
        child = todo.pop()
        found.append(child)
        todo.extend(children.get(child, []))
    return found
