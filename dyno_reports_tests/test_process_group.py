"""`dyno_reports.devtools.process_group` on real processes (no database): a stubborn process tree is gone in time."""

import signal
import subprocess
import sys
import threading
import time

import pytest

from dyno_reports.devtools import process_group

# A parent that ignores `ignored` signals and starts a grandchild that does the same, then exits
# (the grandchild is orphaned, as a step process is when its run worker dies); both sleep.
TREE = """
import signal, subprocess, sys, time
for name in sys.argv[1].split(","):
    if name:
        signal.signal(getattr(signal, name), signal.SIG_IGN)
code = (
    "import signal, sys, time\\nfor n in sys.argv[1].split(','):\\n"
    "    n and signal.signal(getattr(signal, n), signal.SIG_IGN)\\nprint('ready', flush=True)\\ntime.sleep(60)"
)
subprocess.Popen([sys.executable, "-c", code, sys.argv[1]])
time.sleep(float(sys.argv[2]))
"""
QUICK = ((signal.SIGINT, 0.5), (signal.SIGTERM, 0.5), (signal.SIGKILL, 1.0))


def start_tree(ignored: str, parent_lives: float) -> subprocess.Popen:
    child = subprocess.Popen(
        [sys.executable, "-c", TREE, ignored, str(parent_lives)],
        start_new_session=True,
        stdout=subprocess.PIPE,
        text=True,
    )
    ready = child.stdout.readline().strip()
    child.stdout.close()  # the grandchild printed all it will print
    assert ready == "ready"
    return child


@pytest.mark.parametrize("ignored", ["", "SIGINT", "SIGINT,SIGTERM"])
def test_stop_group_escalates_until_the_whole_group_is_gone(ignored):
    child = start_tree(ignored, parent_lives=60)
    assert len(process_group.group_members(child.pid, child)) == 2

    started = time.monotonic()
    process_group.stop_group(child, QUICK)

    assert process_group.group_members(child.pid, child) == []
    # the escalation's own budget (2 s), with room for a loaded CI machine; the point is that it ends
    assert time.monotonic() - started < sum(wait for _, wait in QUICK) + 3
    assert child.returncode is not None


def test_orphans_left_in_the_group_are_stopped_too():
    child = start_tree("SIGINT", parent_lives=0)
    child.wait(timeout=10)
    (orphan,) = process_group.group_members(child.pid, child)
    assert orphan != child.pid

    process_group.stop_group(child, QUICK)

    assert process_group.group_members(child.pid) == []  # zombies do not count: whoever adopted it reaps it


def test_run_until_signalled_forwards_a_signal_and_reports_it():
    code = "import os, signal, sys, time; time.sleep(0.3); os.kill(os.getppid(), signal.SIGTERM); time.sleep(60)"
    status, received = process_group.run_until_signalled([sys.executable, "-c", code], steps=QUICK)
    assert received == signal.SIGTERM and status == -signal.SIGINT  # the child died of the forwarded SIGINT


def test_run_until_signalled_returns_the_status_of_a_command_that_ends():
    assert process_group.run_until_signalled([sys.executable, "-c", "raise SystemExit(3)"]) == (3, None)


def test_a_further_signal_skips_to_the_next_step():
    child = start_tree("SIGINT,SIGTERM", parent_lives=60)
    received: list[int] = []
    for delay in (0.2, 0.4):  # as a second and third Ctrl-C would
        threading.Timer(delay, received.append, [signal.SIGINT]).start()

    started = time.monotonic()
    process_group.stop_group(child, ((signal.SIGINT, 30), (signal.SIGTERM, 30), (signal.SIGKILL, 30)), received)

    assert process_group.group_members(child.pid, child) == []
    assert time.monotonic() - started < 5
