"""Several periods of one question from one pass: the report's multi-period statement computes every window's
facts at once; the executor then writes each window as its own run (header, facts, transaction), exactly as a
single-period run would (`executor.execute(..., computed=...)`).

`shared_passes` says which requests one pass can answer: the same report (one with a `multi_period_sql`),
tenant, options and K, in groups of disjoint windows (reports/multi_period.py), two or more each. `compute`
runs one such pass in a transaction of its own (read only: nothing is written) under the report's settings, and
reads the scope digest on the same snapshot, so every window's header records the stages its facts were
computed with. A failed pass fails every run it covered with the same error (`PassFailed`); a run it does not
cover is run alone, as before. `computed_passes` runs every pass a set of requests shares: the one loop of
the CLI's backfill, the Dagster IO manager's range runs and the refresh of stale runs.
"""

import contextlib
import functools
import json
import time
from collections import defaultdict
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Any
from uuid import UUID

from sqlalchemy import Connection, Engine, TextClause, text
from sqlalchemy.dialects import postgresql

from dyno_reports.core import config
from dyno_reports.core.errors import RunCancelled
from dyno_reports.engine.run_records import record_failure, run_settings, setting_values
from dyno_reports.engine.run_request import RunRequest
from dyno_reports.reports.base import ReportDefinition
from dyno_reports.reports.multi_period import disjoint_passes, window_params
from dyno_reports.reports.scope_digest import SCOPE_DIGEST


@dataclass(frozen=True)
class ComputedFacts:
    """One window's facts as the pass computed them (fact columns by name) and the scope they were read in."""

    rows: tuple[dict[str, Any], ...]
    scope_digest: str

    def rows_json(self) -> str:
        """The rows as JSON for `given_rows_sql`, every value that is not None as text (exact numerics, uuids,
        dates in ISO form)."""
        return json.dumps([{k: None if v is None else str(v) for k, v in row.items()} for row in self.rows])


@dataclass(frozen=True)
class PassFailed:
    """The pass that was to compute this window failed: the window's run fails with the same error."""

    error: Exception


Computed = ComputedFacts | PassFailed
# Called after each pass with the requests' indexes it covered, their facts and its seconds; it may raise (the
# IO manager retries a pass cut by a lost connection).
PassDone = Callable[[list[int], list[Computed], float], None]


def shared_passes(requests: Sequence[RunRequest]) -> list[list[int]]:
    """Indexes of `requests` in groups that one pass answers (two or more each); the rest run alone."""
    by_question: dict[tuple, list[int]] = defaultdict(list)
    for index, request in enumerate(requests):
        if request.report.multi_period_sql is not None and request.known_at is not None:
            options = json.dumps(request.options.canonical(), sort_keys=True)
            by_question[(request.report.report_type, request.tenant_id, options, request.known_at)].append(index)
    groups = []
    for indexes in by_question.values():
        windows = [(requests[i].window.start, requests[i].window.end) for i in indexes]
        groups += [[indexes[j] for j in part] for part in disjoint_passes(windows) if len(part) > 1]
    return groups


def compute(conn: Connection, requests: Sequence[RunRequest]) -> list[Computed]:
    """One pass for `requests` (one group of `shared_passes`, no transaction open on `conn`): each request's
    facts, in order; `PassFailed` for each when the pass fails (a KeyboardInterrupt, e.g. a cancel, propagates)."""
    report, first = requests[0].report, requests[0]
    params = {name: value for name, value in first.sql_params().items() if name not in ("period_start", "period_end")}
    params |= window_params([(r.window.start, r.window.end) for r in requests])
    settings = report.multi_period_transaction_settings()
    try:
        with conn.begin() as transaction:
            role = config.executor_role()
            conn.execute(
                run_settings(role, check_interval=True, report_settings=settings),
                setting_values(first.tenant_id, role, settings),
            )
            rows = conn.execute(_pass_statement(report), params).mappings().all()
            transaction.rollback()  # read only
    except Exception as exc:  # every run of the pass fails with it; the caller records each
        return [PassFailed(exc)] * len(requests)
    by_window: dict[int, list[dict[str, Any]]] = defaultdict(list)
    for row in rows:
        if row["window_index"] is not None:
            by_window[row["window_index"]].append({name: row[name] for name in report.fact_columns})
    digest = rows[0]["scope_digest"]
    return [ComputedFacts(tuple(by_window[index]), digest) for index in range(1, len(requests) + 1)]


# Wraps the work of one run, named by its id (the CLI's signal handling: `cli/run_process.signals_cancel`).
Guard = Callable[[UUID], AbstractContextManager[Any]]


def guarded(guard: Guard | None, run_id: UUID | None) -> AbstractContextManager[Any]:
    """`guard(run_id)`, or nothing to wrap with when there is no guard or no run id."""
    return guard(run_id) if guard is not None and run_id is not None else contextlib.nullcontext()


def computed_passes(
    engine: Engine,
    conn: Connection,
    requests: Sequence[RunRequest],
    run_ids: Sequence[UUID] | None = None,
    *,
    guard: Guard | None = None,
    announce: Callable[[str], None] | None = None,
    done: PassDone | None = None,
) -> dict[int, Computed]:
    """Each request's facts, by index, from the passes `shared_passes` finds (`conn`: no transaction open).
    `guard(run_id)` wraps each pass (the CLI's signal handling), named by its first run; `announce(line)` before
    and after each pass; `done` after each. A cancelled pass (RunCancelled) records every run it covered FAILED
    with the reason (given `run_ids`), then re-raises."""
    computed: dict[int, Computed] = {}
    for group in shared_passes(requests):
        started = time.monotonic()
        if announce is not None:
            announce(f"reading the tenant's history once for {len(group)} periods ...")
        covered = [] if run_ids is None else [run_ids[i] for i in group]
        with guarded(guard, covered[0] if covered else None):
            try:
                facts = compute(conn, [requests[i] for i in group])
            except RunCancelled as exc:
                for index, run_id in zip(group, covered, strict=False):  # no run ids: nothing to record
                    record_failure(engine, requests[index], run_id, exc.reason)
                raise
        seconds = time.monotonic() - started
        if done is not None:
            done(group, facts, seconds)
        computed |= dict(zip(group, facts, strict=True))
        if announce is not None:
            failed = any(isinstance(f, PassFailed) for f in facts)
            outcome = "failed: every period it covered fails with its error" if failed else "done"
            announce(f"... {outcome} ({seconds:.1f} s)")
    return computed


def given_rows_sql(report: ReportDefinition) -> str:
    """SELECT the report's fact columns from `:computed_rows` (`ComputedFacts.rows_json()`), each as its fact
    table's type: what the executor writes instead of running the report's statement."""
    columns, dialect = report.fact_table.c, postgresql.dialect()
    typed = ", ".join(f"{name} {columns[name].type.compile(dialect=dialect)}" for name in report.fact_columns)
    names = ", ".join(f"r.{name}" for name in report.fact_columns)
    return f"SELECT {names} FROM jsonb_to_recordset(CAST(:computed_rows AS jsonb)) AS r({typed})"


@functools.cache
def _pass_statement(report: ReportDefinition) -> TextClause:
    """The report's multi-period statement beside the scope digest, read on the same snapshot; at least one row
    (window_index NULL when no window has facts). Built once per report."""
    return text(
        f"SELECT scope.scope_digest, computed.*\nFROM ({SCOPE_DIGEST}) scope(scope_digest)\n"
        f"LEFT JOIN (\n{report.multi_period_sql}\n) computed ON true"
    )
