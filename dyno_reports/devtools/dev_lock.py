"""One `make dev` per Dagster home: an exclusive `flock` on `<DAGSTER_HOME>/make_dev.lock` for the life of
the `make dev` process, taken before anything starts.

The file says who holds it (one JSON line: the pid, the UI's URL and, once started, the process group of its
`dagster dev`), so a second `make dev` refuses at once naming them. The kernel releases the lock when its
holder dies, even by SIGKILL: no stale lock. The descriptor is close-on-exec and not passed to `dagster dev`,
so nothing else holds the lock. A `make dev` killed by SIGKILL leaves its `dagster dev` group (webserver,
daemon) running and its lock free: the next `make dev` reads that group from the file and refuses while it
has live processes, since two daemons on one Dagster home fight over its heartbeats.
"""

import contextlib
import errno
import fcntl
import json
import os
import socket
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from dyno_reports.core.errors import DynoError
from dyno_reports.devtools import process_group

LOCK_FILE = "make_dev.lock"
# dagster dev's webserver: 127.0.0.1, port 3000 or, when 3000 is in use, any free port.
DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 3000
HOST_OPTIONS = ("-h", "--host", "--dagit-host")
PORT_OPTIONS = ("-p", "--port", "--dagit-port")
HOLDER_WAIT_SECONDS = 1.0  # a holder writes the file just after taking the lock


class DevAlreadyRunning(DynoError):
    """Another `make dev` (or the `dagster dev` a killed one left) runs on this Dagster home."""


@dataclass(frozen=True)
class DevLock:
    """The lock held: its file's descriptor stays open (and locked) until the process ends."""

    path: Path
    fd: int
    url: str

    def record(self, dagster_dev_group: int | None = None) -> None:
        """Write who holds the lock: this process, the UI's URL, the group of its `dagster dev` once started."""
        holder = {"pid": os.getpid(), "url": self.url, "dagster_dev_group": dagster_dev_group}
        os.ftruncate(self.fd, 0)
        os.pwrite(self.fd, (json.dumps(holder) + "\n").encode(), 0)


def acquire(home: Path, url: str) -> DevLock:
    """Take the lock of the Dagster home `home` without waiting; DevAlreadyRunning when another has it."""
    home.mkdir(parents=True, exist_ok=True)
    path = home / LOCK_FILE
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        holder = _holder(fd, wait=HOLDER_WAIT_SECONDS)
        os.close(fd)
        raise DevAlreadyRunning(_running_message(holder, home, path)) from None
    left = _holder(fd)  # what the previous holder wrote
    group = left.get("dagster_dev_group")
    if isinstance(group, int) and group > 1 and process_group.group_members(group):
        os.close(fd)
        raise DevAlreadyRunning(
            f"a `dagster dev` (process group {group}) of a `make dev` that was killed (pid {left.get('pid')}) "
            f"still runs on this Dagster home ({home}), its UI at {left.get('url')}: stop it first (kill -- -{group})"
        )
    lock = DevLock(path, fd, url)
    lock.record()
    return lock


def _holder(fd: int, wait: float = 0.0) -> dict[str, Any]:
    """The JSON the holder wrote; {} when there is none (yet: waits up to `wait` seconds for it)."""
    deadline = time.monotonic() + wait
    while True:
        with contextlib.suppress(ValueError, OSError):
            holder = json.loads(os.pread(fd, 4096, 0))
            if isinstance(holder, dict):
                return holder
        if time.monotonic() >= deadline:
            return {}
        time.sleep(0.05)


def _running_message(holder: dict[str, Any], home: Path, path: Path) -> str:
    pid = holder.get("pid")
    if not isinstance(pid, int):
        return f"another `make dev` is running on this Dagster home ({home}): it holds {path}; stop it first"
    return (
        f"another `make dev` (pid {pid}) is running on this Dagster home ({home}), its UI at {holder.get('url')}: "
        f"stop it first (Ctrl-C in its terminal, or kill {pid})"
    )


def webserver_args(args: list[str]) -> tuple[list[str], str]:
    """`dagster dev` arguments with the webserver's port made explicit, and the UI's URL.

    Without a port the webserver takes 3000, or any free port when 3000 is in use: the same choice is made
    here (as `--port`), so the URL written in the lock file is the one the UI gets."""
    host = option_value(args, HOST_OPTIONS) or DEFAULT_HOST
    port = option_value(args, PORT_OPTIONS)
    if port is None:
        port = str(DEFAULT_PORT if not _port_in_use(host, DEFAULT_PORT) else _free_port())
        args = [*args, "--port", port]
    return args, f"http://{f'[{host}]' if ':' in host else host}:{port}"


def option_value(args: list[str], names: tuple[str, ...]) -> str | None:
    """The value given last to any of `names` in click's forms: `-p 3001`, `-p3001`, `--port 3001`, `--port=3001`."""
    value = None
    for i, arg in enumerate(args):
        for name in names:
            if arg == name and i + 1 < len(args):
                value = args[i + 1]
            elif name.startswith("--") and arg.startswith(name + "="):
                value = arg[len(name) + 1 :]
            elif not name.startswith("--") and not arg.startswith("--") and arg.startswith(name) and arg != name:
                value = arg[len(name) :]
    return value


def _port_in_use(host: str, port: int) -> bool:
    """As dagster's webserver decides it: binding fails with EADDRINUSE."""
    with socket.socket(family=socket.AF_INET) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError as exc:
            return exc.errno == errno.EADDRINUSE
        return False


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("", 0))
        return sock.getsockname()[1]
