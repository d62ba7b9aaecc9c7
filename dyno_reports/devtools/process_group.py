"""Run a command in a process group of its own and stop the whole group: SIGINT, then SIGTERM, then SIGKILL.

`make dev` uses it for `dagster dev`, whose webserver, daemon, code servers, run
workers and step processes all stay in the group it starts in, so stopping the
group stops every one of them, including step processes orphaned by a killed run
worker. POSIX only.
"""

import contextlib
import os
import signal
import subprocess
import time
from collections.abc import Callable, Sequence
from pathlib import Path

# (signal sent to the group, seconds to wait for the group to end before the next step)
STOP_STEPS: tuple[tuple[signal.Signals, float], ...] = (
    (signal.SIGINT, 3.0),
    (signal.SIGTERM, 2.5),
    (signal.SIGKILL, 2.0),
)
FORWARDED = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
POLL_SECONDS = 0.05


def run_until_signalled(
    args: Sequence[str],
    *,
    steps=STOP_STEPS,
    echo: Callable[[str], None] | None = None,
    started: Callable[[subprocess.Popen], None] | None = None,
    **popen_kwargs,
) -> tuple[int, int | None]:
    """Run `args` as a new session; on SIGINT, SIGTERM or SIGHUP (or when it exits) stop its whole group.

    Returns (the command's exit status, the signal received or None). While the
    group is being stopped, a further signal skips to the next step. `started` is
    called with the child once it runs (its pid is its group's id).
    """
    received: list[int] = []
    # Installing handlers before the child starts also matters for the child:
    # a handled signal is reset to the default in it, while an ignored one
    # (SIGINT in a background job of a non-interactive shell) would stay
    # ignored, and Python (dagster dev) would then ignore SIGINT and SIGTERM.
    previous = {sig: signal.signal(sig, lambda signum, _frame: received.append(signum)) for sig in FORWARDED}
    try:
        child = subprocess.Popen(list(args), start_new_session=True, **popen_kwargs)
        if started is not None:
            started(child)
        while child.poll() is None and not received:
            time.sleep(POLL_SECONDS)
        stop_group(child, steps, received, echo)
        return child.wait(), (received[0] if received else None)
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def stop_group(
    child: subprocess.Popen,
    steps=STOP_STEPS,
    received: list[int] | None = None,
    echo: Callable[[str], None] | None = None,
) -> None:
    """Signal `child`'s process group step by step until no live process is left in it."""
    received = received if received is not None else []
    group = child.pid
    for sig, grace in steps:
        members = group_members(group, child)
        if not members:
            return
        _say(echo, f"{sig.name} to {len(members)} process(es) of group {group}")
        try:
            os.killpg(group, sig)
        except ProcessLookupError:
            return
        signals_so_far = len(received)
        deadline = time.monotonic() + grace
        while time.monotonic() < deadline and len(received) == signals_so_far:
            if not group_members(group, child):
                return
            time.sleep(POLL_SECONDS)


def _say(echo: Callable[[str], None] | None, line: str) -> None:
    """Report a step; a reader that went away (Ctrl-C also ends `make dev | tee`) must not stop the stopping."""
    if echo is None:
        return
    with contextlib.suppress(OSError):
        echo(line)


def group_members(group: int, child: subprocess.Popen | None = None) -> list[int]:
    """Live (not zombie) processes of process group `group`; reaps `child` if it has exited."""
    if child is not None:
        child.poll()
    proc = Path("/proc")
    if not (proc / "self" / "stat").exists():  # no procfs: ask the kernel whether the group has anyone
        try:
            os.killpg(group, 0)
        except (ProcessLookupError, PermissionError):
            return []
        return [group]
    members = []
    for stat in proc.glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):  # the process ended while we looked
            continue
        state, pgrp = fields[0], int(fields[2])
        if pgrp == group and state not in ("Z", "X"):
            members.append(int(stat.parent.name))
    return members
