"""The reconciliation sweep: bookkeeping of ended Dagster runs, retried until it succeeds.

Every 30 s the sensor `report_run_reconciliation_sweep` (on by default) lists the
Dagster runs that ended (SUCCESS, FAILURE, CANCELED) within the last
`DYNO_RECONCILE_LOOKBACK_HOURS` (24) and are not yet marked reconciled, oldest
end first, and calls `failures.reconcile_run` for each report each one targeted,
all in one pass (at most MAX_RUNS_PER_PASS runs and PASS_SECONDS seconds, under
Dagster's 60 s sensor timeout; the rest wait for the next tick).

Done is recorded on the run itself: the tag `dyno/reconciled` = the status it was
reconciled in, written with `dagster_private.add_run_tags` after a pass over it succeeded.
Chosen over the sensor cursor because it is per run (a run that failed, say the
report database down, stays pending while later ones are done, and is tried at
every tick until the lookback drops it), survives a cursor reset and a timed-out
tick (each tag is written as its run is done), is visible on the run's page, and a
run whose status changes after it (a CANCELED run that ends SUCCESS) no longer
carries a tag matching its status, so it is reconciled again. A run that ended
FAILURE or CANCELED is tagged only once it ended more than SETTLE_SECONDS ago: its
worker may still be alive (terminated with MARK_AS_CANCELED_IMMEDIATELY, or failed
by run monitoring) and commit a transaction in flight; until then each pass
reconciles it again (idempotent), so FAILED headers appear at the first tick.

SUCCESS runs are included because they can disagree too (a status that flipped,
a step retried after a commit whose materialisation was lost); a pass over one is
a handful of queries whatever its number of partitions (what it materialised
itself comes from one event-log query), and it is tagged at once.
"""

import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from dagster import (
    DagsterEventType,
    DagsterRun,
    DagsterRunStatus,
    DefaultSensorStatus,
    RunRecord,
    RunsFilter,
    SensorEvaluationContext,
    SkipReason,
    sensor,
)
from sqlalchemy import Engine, select
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError

from dyno_reports.core import config
from dyno_reports.core.errors import DatabaseUnavailable
from dyno_reports.dagster_defs.dagster_private import add_run_tags, run_event_records, run_ids
from dyno_reports.dagster_defs.failures import reconcile_run
from dyno_reports.dagster_defs.resources import ReportDatabase
from dyno_reports.dagster_defs.run_partitions import reports_of_run, run_options

RECONCILED_TAG = "dyno/reconciled"
ENDED = (DagsterRunStatus.SUCCESS, DagsterRunStatus.FAILURE, DagsterRunStatus.CANCELED)
MAX_RUNS_PER_PASS = 500
PASS_SECONDS = 40.0
SETTLE_SECONDS = 120.0
INTERVAL_SECONDS = 30


@dataclass
class SweepOutcome:
    """What one pass did; `pending` counts the runs left for a later pass, by reason."""

    ended: int = 0
    reconciled: int = 0
    settling: int = 0
    failed_headers: int = 0
    reported: int = 0
    pending: Counter[str] = field(default_factory=Counter)
    oldest_pending_end: float | None = None

    def leave_pending(self, record: RunRecord, reason: str) -> None:
        self.pending[reason] += 1
        end = ended_at(record)
        self.oldest_pending_end = end if self.oldest_pending_end is None else min(self.oldest_pending_end, end)

    def summary(self, now: float, lookback_hours: float) -> str:
        window = f"{self.ended} run(s) ended in the last {lookback_hours:g} h"
        if not self.reconciled and not self.pending:
            return f"nothing to reconcile ({window}, every one reconciled)"
        text = (
            f"{self.reconciled} run(s) reconciled ({self.settling} to be confirmed {SETTLE_SECONDS:.0f} s after "
            f"their end), {self.failed_headers} report_run header(s) marked FAILED, {self.reported} committed "
            f"partition(s) reported as materialised; {sum(self.pending.values())} run(s) still pending"
        )
        if self.pending:
            reasons = ", ".join(f"{n} {reason}" for reason, n in sorted(self.pending.items()))
            text += f" ({reasons}), lag {now - (self.oldest_pending_end or now):.0f} s"
        return f"{text}; {window}"


def ended_at(record: RunRecord) -> float:
    return record.end_time or record.update_timestamp.timestamp()


def pending_records(instance: Any, since: datetime) -> tuple[int, int, list[RunRecord]]:
    """(runs ended since `since`, how many of the untagged ones this pass leaves out, the records of the others
    oldest end first). Id-only queries: every ended run, then per status the ones tagged with it."""
    ended = run_ids(instance, RunsFilter(statuses=list(ENDED), updated_after=since))
    done: set[str] = set()
    for status in ENDED:
        filters = RunsFilter(statuses=[status], tags={RECONCILED_TAG: status.value}, updated_after=since)
        done.update(run_ids(instance, filters))
    pending = [run_id for run_id in ended if run_id not in done]  # newest first: the bound keeps the oldest
    chosen = pending[-MAX_RUNS_PER_PASS:]
    records = instance.get_run_records(RunsFilter(run_ids=chosen)) if chosen else []
    return len(ended), len(pending) - len(chosen), sorted(records, key=ended_at)


def end_message(instance: Any, run: DagsterRun) -> str:
    """The error a FAILED header of `run` records."""
    if run.status == DagsterRunStatus.CANCELED:
        return f"Dagster run {run.run_id} was canceled"
    if run.status == DagsterRunStatus.SUCCESS:
        return f"Dagster run {run.run_id} succeeded without recording this partition"
    failures = run_event_records(instance, run.run_id, DagsterEventType.RUN_FAILURE, limit=1)
    reason = failures[0].event_log_entry.message if failures else "unknown"
    return f"Dagster run {run.run_id} failed: {reason}"


def reconcile_dagster_run(engine: Engine, instance: Any, run: DagsterRun) -> tuple[int, int]:
    """`reconcile_run` for every report asset `run` targeted: (headers marked FAILED, materialisations reported)."""
    failed = reported = 0
    message = None
    for asset in reports_of_run(instance, run):
        message = message or end_message(instance, run)
        f, r = reconcile_run(engine, instance, run, asset, message, run_options(run.run_config, asset))
        failed, reported = failed + f, reported + r
    return failed, reported


def database_down(engine: Engine) -> str | None:
    """None when the report database answers, else why not (one round trip per pass)."""
    try:
        with engine.connect() as conn:
            conn.execute(select(1))
    except DBAPIError as exc:
        return "report database unreachable: " + " ".join(str(exc.orig or exc).split())[:200]
    return None


def sweep(engine: Engine, instance: Any, log: Any, now: float | None = None) -> SweepOutcome:
    """One pass; `now` (epoch seconds) is the clock the settle time is measured on (tests move it)."""
    now = time.time() if now is None else now
    since = datetime.fromtimestamp(now, UTC) - config.reconcile_lookback()
    outcome = SweepOutcome()
    outcome.ended, left_out, records = pending_records(instance, since)
    if left_out:
        outcome.pending[f"not reached (at most {MAX_RUNS_PER_PASS} runs per pass)"] = left_out
    down = database_down(engine) if records else None
    started = time.monotonic()
    for record in records:
        run = record.dagster_run
        if down or time.monotonic() - started > PASS_SECONDS:
            outcome.leave_pending(record, down or f"not reached (a pass stops after {PASS_SECONDS:.0f} s)")
            continue
        try:
            failed, reported = reconcile_dagster_run(engine, instance, run)
        except (OperationalError, InterfaceError, DatabaseUnavailable) as exc:  # a connection lost: stop the pass
            down = "database error: " + " ".join(str(getattr(exc, "orig", None) or exc).split())[:200]
            outcome.leave_pending(record, down)
            continue
        except Exception as exc:  # this run's fault (a statement refused, a bug): the others go on
            log.warning(f"reconciling Dagster run {run.run_id} failed: {exc!r}")
            outcome.leave_pending(record, f"error ({type(exc).__name__})")
            continue
        if failed or reported:
            log.info(
                f"Dagster run {run.run_id} ({run.status.value}): {failed} header(s) marked FAILED, "
                f"{reported} partition(s) reported as materialised"
            )
        outcome.reconciled += 1
        outcome.failed_headers, outcome.reported = outcome.failed_headers + failed, outcome.reported + reported
        if run.status != DagsterRunStatus.SUCCESS and now - ended_at(record) < SETTLE_SECONDS:
            outcome.settling += 1
            continue
        add_run_tags(instance, run.run_id, {RECONCILED_TAG: run.status.value})
    return outcome


@sensor(
    name="report_run_reconciliation_sweep",
    minimum_interval_seconds=INTERVAL_SECONDS,
    default_status=DefaultSensorStatus.RUNNING,
    description="Reconciles report_run with every Dagster run that ended in the last hours "
    "(DYNO_RECONCILE_LOOKBACK_HOURS), retrying each until it succeeds; tags done runs dyno/reconciled.",
)
def report_run_reconciliation_sweep(context: SensorEvaluationContext, dyno_db: ReportDatabase) -> SkipReason:
    now = time.time()
    outcome = sweep(dyno_db.engine(), context.instance, context.log, now)
    message = outcome.summary(now, config.reconcile_lookback().total_seconds() / 3600)
    context.log.info(message)
    return SkipReason(message)
