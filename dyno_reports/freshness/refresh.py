"""Refresh stale runs: re-run the current run of each stale question through the one executor.

The CLI (`dyno-reports refresh`) and Dagster call this. Each stale run's question is asked again as it was
recorded: its tenant, report, window (the header's instants) and options (`input_params`), with the default
K (now minus the CRM's longest write). The new run answers the same question (same input fingerprint), so
the latest views move to it; the old run stays in report_run as it was. A window that has still not ended
is run so far again.

A stale run whose only reason is late rows recorded less than the CRM's longest write ago waits (not run):
the new run's default K would not see them, so it would answer as the old one did and be stale at once.
Given `as_known_at`, only rows recorded after it wait.
"""

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from uuid import UUID

from sqlalchemy import Connection, Engine

from dyno_reports.core.errors import DynoError
from dyno_reports.engine import executor, run_request
from dyno_reports.freshness import staleness
from dyno_reports.read import run_diff
from dyno_reports.storage import db


@dataclass(frozen=True)
class Refreshed:
    """A stale run and its refresh: the new run's outcome and, when it SUCCEEDED, what changed; or why its
    question could not be asked again (`refused`: e.g. a pipeline of its options is gone), or why it waits
    (`waiting`: its late rows are not known yet at a refresh's K), nothing run."""

    stale: staleness.StaleRun
    result: executor.RunResult | None
    diff: run_diff.RunDiff | None = None
    refused: str | None = None
    waiting: str | None = None

    @property
    def failed(self) -> bool:
        """Not refreshed for another reason than waiting: refused, or the new run failed."""
        return self.waiting is None and (self.result is None or not self.result.succeeded)

    def summary(self) -> str:
        """One line: the diff's counts, the wait, or the failure."""
        if self.waiting is not None:
            return self.waiting
        if self.result is None:
            return f"not refreshed: {self.refused}"
        if self.diff is None:
            return f"FAILED: {self.result.error_message}"
        return run_diff.summary_line(self.result.request.report, self.diff)


def request_of(
    conn: Connection, stale: staleness.StaleRun, as_known_at: datetime | None = None
) -> run_request.RunRequest:
    """The stale run's question, asked again now (default K, or `as_known_at`): validated as any run's inputs
    are."""
    request = run_request.build_request(
        conn,
        stale.report_type,
        stale.tenant_id,
        period_start=stale.period_start,
        period_end=stale.period_end,
        options=stale.input_params.get("options") or None,
        so_far=True,  # a window that has not ended yet is run so far again; an ended one makes a final run
        as_known_at=as_known_at,
    )
    if request.fingerprint() != stale.input_fingerprint:  # a changed canonical form would not move the views
        raise DynoError(
            f"run {stale.run_id}: its question asked again has another input fingerprint "
            f"({request.fingerprint()[:12]} vs {stale.input_fingerprint[:12]}); not refreshed"
        )
    return request


def refresh_one(
    engine: Engine, conn: Connection, stale: staleness.StaleRun, as_known_at: datetime | None = None
) -> Refreshed:
    """Re-run `stale`'s question on `conn` (no transaction open); diff the new run against the old one."""
    try:
        request = request_of(conn, stale, as_known_at)
    except DynoError as exc:  # InputError too: its question cannot be asked again as recorded
        conn.rollback()
        return Refreshed(stale, None, refused=str(exc))
    conn.rollback()  # validation only read: the run's own transaction starts next, on this connection
    result = executor.execute(engine, request, connection=conn)
    if not result.succeeded:
        return Refreshed(stale, result)
    diff = run_diff.diff_runs(conn, request.report, stale.tenant_id, stale.run_id, result.run_id)
    conn.rollback()
    return Refreshed(stale, result, diff)


def refresh(
    engine: Engine,
    *,
    tenant_ids: Sequence[UUID] | None = None,
    report_types: Sequence[str] | None = None,
    progress: Callable[[int, int, Refreshed], None] | None = None,
    as_known_at: datetime | None = None,
) -> list[Refreshed]:
    """Run the stale check, then refresh every stale current run it lists, one after the other, except those
    waiting for late rows the new run would not see yet; `progress(n, total, refreshed)` after each.
    `as_known_at`: K of the new runs (default: now minus the CRM's longest write), for a caller that knows
    every write up to it has committed (the demo's own import)."""
    done: list[Refreshed] = []
    with db.connect(engine) as conn:
        stale_runs = staleness.check(conn, tenant_ids=tenant_ids, report_types=report_types)
        for n, stale in enumerate(stale_runs, start=1):
            if stale.waiting(as_known_at):
                refreshed = Refreshed(stale, None, waiting=stale.waiting_text())
            else:
                refreshed = refresh_one(engine, conn, stale, as_known_at)
            done.append(refreshed)
            if progress is not None:
                progress(n, len(stale_runs), refreshed)
    return done
