"""Refresh stale runs: re-run the current run of each stale question through the one executor.

The CLI (`dyno-reports refresh`) and Dagster call this. Each stale run's question is asked again as it was
recorded: its tenant, report, window (the header's instants) and options (`input_params`), with the default
K (now minus the CRM's longest write). The new run answers the same question (same input fingerprint), so
the latest views move to it; the old run stays in report_run as it was. A window that has still not ended
is run so far again.

A stale run whose only reason is late rows recorded less than the CRM's longest write ago waits (not run):
the new run's default K would not see them, so it would answer as the old one did and be stale at once.
Given `as_known_at`, only rows recorded after it wait.

Every question is asked again with one K, so the stale periods of one tenant, report and options are computed
from one pass over its history where the report has a multi-period statement (engine/multi_period.py), each
still written as its own run.
"""

import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from uuid import UUID

from sqlalchemy import Connection, Engine

from dyno_reports.core.errors import DynoError
from dyno_reports.engine import executor, multi_period, run_request
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
    conn: Connection, stale: staleness.StaleRun, as_known_at: datetime | None = None, now: datetime | None = None
) -> run_request.RunRequest:
    """The stale run's question, asked again at `now` (default K, or `as_known_at`): validated as any run's inputs
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
        now=now,
    )
    if request.fingerprint() != stale.input_fingerprint:  # a changed canonical form would not move the views
        raise DynoError(
            f"run {stale.run_id}: its question asked again has another input fingerprint "
            f"({request.fingerprint()[:12]} vs {stale.input_fingerprint[:12]}); not refreshed"
        )
    return request


def _refresh_one(
    engine: Engine,
    conn: Connection,
    stale: staleness.StaleRun,
    request: run_request.RunRequest,
    computed: multi_period.Computed | None,
    run_id: UUID,
) -> Refreshed:
    """Run `request`, `stale`'s question asked again, on `conn` (no transaction open), with its facts `computed`
    by a shared pass if one did; diff the new run against the old one."""
    result = executor.execute(engine, request, run_id=run_id, connection=conn, computed=computed)
    if not result.succeeded:
        return Refreshed(stale, result)
    diff = run_diff.diff_runs(conn, request.report, stale.tenant_id, stale.run_id, result.run_id)
    conn.rollback()
    return Refreshed(stale, result, diff)


def _ask_again(
    conn: Connection, stale: staleness.StaleRun, as_known_at: datetime | None, now: datetime | None
) -> run_request.RunRequest | Refreshed:
    """The stale run's request, or its Refreshed when it waits or its question cannot be asked again."""
    if stale.waiting(as_known_at):
        return Refreshed(stale, None, waiting=stale.waiting_text())
    try:
        request = request_of(conn, stale, as_known_at, now)
    except DynoError as exc:  # InputError too: its question cannot be asked again as recorded
        return Refreshed(stale, None, refused=str(exc))
    finally:
        conn.rollback()  # validation only read: the run's own transaction starts later, on this connection
    return request


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
    every write up to it has committed (the demo's own import). The questions are all asked again first, with
    one K; the stale periods of one question are then computed in one pass (`multi_period.computed_passes`)."""
    done: list[Refreshed] = []
    with db.connect(engine) as conn:
        stale_runs = staleness.check(conn, tenant_ids=tenant_ids, report_types=report_types)
        now = datetime.now(UTC)
        asked = [_ask_again(conn, stale, as_known_at, now) for stale in stale_runs]
        requests = {n: a for n, a in enumerate(asked) if isinstance(a, run_request.RunRequest)}
        run_ids = {n: uuid.uuid4() for n in requests}
        computed = multi_period.computed_passes(engine, conn, list(requests.values()), list(run_ids.values()))
        by_stale = dict(zip(requests, (computed.get(i) for i in range(len(requests))), strict=True))
        for n, (stale, ask) in enumerate(zip(stale_runs, asked, strict=True)):
            refreshed = (
                ask if isinstance(ask, Refreshed) else _refresh_one(engine, conn, stale, ask, by_stale[n], run_ids[n])
            )
            done.append(refreshed)
            if progress is not None:
                progress(n + 1, len(stale_runs), refreshed)
    return done
