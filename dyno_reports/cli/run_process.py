"""What `dyno-reports run` does to its own process: the cyclic GC paused while the run path loads, and
SIGINT/SIGTERM turned into a cancelled run (rolled back, recorded FAILED, exit 130/143)."""

import contextlib
import gc
import signal
import sys
import threading
import uuid
from collections.abc import Iterator

from dyno_reports.core.errors import Cancelled, RunCancelled


@contextlib.contextmanager
def imports_without_gc() -> Iterator[None]:
    """The run's imports (SQLAlchemy, psycopg, the tables) allocate about 100k objects that live as long as
    the process, and the cyclic GC passes over all of them several times while they load and in every full
    collection after (60-100 ms of CPU each, measured): collection pauses while they load, and on the first
    load they are frozen (gc.freeze: collections skip them). Later loads in the same process (tests) freeze
    nothing, so no garbage of theirs is frozen."""
    first = "dyno_reports.engine.executor" not in sys.modules
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if first:
            gc.freeze()
        if enabled:
            gc.enable()


class Cancellation:
    """State of `signals_cancel`: the first SIGINT or SIGTERM while armed raises RunCancelled."""

    def __init__(self) -> None:
        self.armed = True
        self.run_started = False
        self.signal: signal.Signals | None = None

    def handle(self, signum: int, _frame: object) -> None:
        if not self.armed:  # a second signal, or one after the run ended: the first one is being handled
            return
        self.armed = False
        self.signal = signal.Signals(signum)
        raise RunCancelled(f"cancelled ({self.signal.name})")


@contextlib.contextmanager
def signals_cancel(run_id: uuid.UUID) -> Iterator[Cancellation]:
    """SIGINT and SIGTERM stop `dyno-reports run`: psycopg cancels the running statement, the run's
    transaction rolls back, executor.execute records the run FAILED "cancelled (SIGINT)" in a new
    transaction, and the command exits 128 + the signal (130, 143) with one `error:` line."""
    cancellation = Cancellation()
    if threading.current_thread() is not threading.main_thread():  # signal handlers: main thread only
        yield cancellation
        return
    signals = (signal.SIGINT, signal.SIGTERM)
    previous = {sig: signal.signal(sig, cancellation.handle) for sig in signals}
    try:
        yield cancellation
    except RunCancelled as exc:
        status = 128 + (cancellation.signal or signal.SIGINT)
        if cancellation.run_started:
            raise Cancelled(f"report run {run_id} {exc.reason}: rolled back, recorded FAILED", status) from None
        raise Cancelled(f"{exc.reason} before the run started: nothing was written", status) from None
    finally:
        cancellation.armed = False
        for sig, handler in previous.items():
            signal.signal(sig, handler)
