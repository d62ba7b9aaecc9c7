"""Stop means stop: a report run stops between partitions once Dagster asks, and commits nothing after that.

How a stop reaches a run (Dagster 1.13): *terminate* (SAFE_TERMINATE) marks the run CANCELING and asks the
code server to cancel it; the run worker's termination thread then sends SIGINT to its own process, which
interrupts the main thread wherever it is. MARK_AS_CANCELED_IMMEDIATELY marks the run CANCELED and may leave
the worker running. A backfill's cancel marks the backfill CANCELING; its daemon cancels the runs at its next
pass (up to 30 s later) while the queue may still start some. Hence, while a report step executes partitions:

- `signals_cancel_runs`: SIGINT (and SIGTERM) raise `RunCancelled`, a KeyboardInterrupt, rather than
  Dagster's own DagsterExecutionInterruptedError, which psycopg does not treat as an interrupt: on a
  KeyboardInterrupt psycopg cancels the running statement on the server, the transaction rolls back, and the
  executor records that partition FAILED ("cancelled") before the exception goes on;
- `RunWatch.check`, before each partition and each retry: at most once per STATUS_POLL_SECONDS, the run's
  status (CANCELING or CANCELED) and its backfill's (CANCELING or CANCELED) in the instance; either raises
  `RunCancelled` (a cancelled backfill first marks the run CANCELING).

Dagster treats the exception as an interrupt: no step retry, no failure hook, and the run ends CANCELED (or
stays CANCELED). Headers of the partitions that never ran are the reconciliation's to write.
"""

import contextlib
import signal
import threading
import time
from collections.abc import Iterator
from typing import Any

from dagster import DagsterRun, DagsterRunStatus

from dyno_reports.core.errors import RunCancelled
from dyno_reports.dagster_defs.dagster_private import backfill_status, mark_run_canceling

STATUS_POLL_SECONDS = 1.0
BACKFILL_TAG = "dagster/backfill"
STOPPED_RUN = (DagsterRunStatus.CANCELING, DagsterRunStatus.CANCELED)
STOPPED_BACKFILL = ("CANCELING", "CANCELED")  # BulkActionStatus values (the enum is not public API)


def cancelled_backfill(instance: Any, run: DagsterRun) -> str | None:
    """The id of the backfill `run` belongs to, when that backfill's cancel was requested."""
    backfill_id = run.tags.get(BACKFILL_TAG)
    if backfill_id is None:
        return None
    return backfill_id if backfill_status(instance, backfill_id) in STOPPED_BACKFILL else None


def stop_for_backfill(instance: Any, run: DagsterRun, backfill_id: str, what: str) -> RunCancelled:
    """Mark `run` CANCELING (so it ends CANCELED, as its backfill) and give the exception that stops it."""
    reason = f"backfill {backfill_id} was cancelled: {what}"
    mark_run_canceling(instance, run, reason)
    return RunCancelled(reason)


class RunWatch:
    """Whether the Dagster run `run_id` was asked to stop: by a signal (`signals_cancel_runs`), or as the
    instance says (read at most once a second; no instance: signals only)."""

    def __init__(self, instance: Any, run_id: str) -> None:
        self.instance, self.run_id = instance, run_id
        self.last_poll = -STATUS_POLL_SECONDS
        self.signalled: str | None = None  # the reason, once a signal stopped the run

    def check(self, before: str) -> None:
        """Raise RunCancelled if the run or its backfill was asked to stop; `before` names what would start."""
        if self.signalled is not None:  # e.g. the FAILED record of the cancelled partition failed: stop anyway
            raise RunCancelled(self.signalled)
        now = time.monotonic()
        if self.instance is None or now - self.last_poll < STATUS_POLL_SECONDS:
            return
        self.last_poll = now
        run = self.instance.get_run_by_id(self.run_id)
        if run is None:
            return
        if run.status in STOPPED_RUN:
            raise RunCancelled(f"Dagster run {self.run_id} is {run.status.value}: stopped before {before}")
        backfill_id = cancelled_backfill(self.instance, run)
        if backfill_id is not None:
            raise stop_for_backfill(self.instance, run, backfill_id, f"stopped before {before}")


@contextlib.contextmanager
def signals_cancel_runs(watch: RunWatch) -> Iterator[None]:
    """SIGINT and SIGTERM raise RunCancelled while the block runs (main thread only; the first signal: later
    ones are ignored, and `watch.check` raises it again); the previous handlers (Dagster's) come back after."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def cancel(signum: int, _frame: object) -> None:
        if watch.signalled is None:
            watch.signalled = f"cancelled (Dagster run {watch.run_id} terminated: {signal.Signals(signum).name})"
            raise RunCancelled(watch.signalled)

    previous = {sig: signal.signal(sig, cancel) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            if handler is not None:  # None: a handler not set from Python, which cannot be put back
                signal.signal(sig, handler)
