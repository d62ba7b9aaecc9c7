"""Stale runs (docs/definitions.md, "As known at"): the current runs whose answer could now differ.

A SUCCEEDED run is stale when a history row of its tenant has `valid_from < period_end` and
`recorded_at > known_at` (a backdated row), when the pipelines and stages in its scope changed since
(`scope_digest` differs now; names excluded), or when its report's version is newer than the run's.
`check` finds them without rescanning histories (migration 0012):

- It locks the cursor `reporting.stale_check` (concurrent checks run one after the other), reads the history
  rows recorded after the previous check's transaction time minus the CRM's longest write
  (`config.crm_max_write`: a transaction may commit that long after its `recorded_at`, so the windows
  overlap), tenant by tenant down `(tenant_id, recorded_at)`, joins them to the SUCCEEDED runs they are
  late for and upserts `reporting.report_run_stale`. Rows recorded up to the check's time minus that longest
  write are settled (counted once); the rest are read again by the next check, so findings never double.
- Runs made since the previous check with an older K (`--as-known-at`) are checked directly: the rows of
  their tenant recorded between their K and the window.
- Scopes and versions are compared where they changed: `reporting.stale_scope` keeps the digest seen per
  (tenant, pipeline selection) of the runs. Each check digests every tenant's pipelines and stages in one pass
  (stage rows, not history, not runs); only for a tenant whose digest differs are its scopes digested again,
  and only the runs of a scope whose digest changed are compared with it (a digest changed back clears
  their flag). `reporting.stale_version` does the same for report versions. The runs made since the
  previous check are compared with the digests and versions now. So a check costs the new rows, the new
  runs and the changed scopes, plus the fleet's stage rows.
- Late rows recorded less than the CRM's longest write ago (not settled) are listed, but a refresh with the
  default K would not see them yet: `StaleRun.waiting` says so, and `known_from` when a refresh will.
- The first check ever (no `checked_to`) starts from the earliest K of the SUCCEEDED runs: one catch-up
  reading the rows recorded since then (0011 gave old rows `recorded_at = valid_from` and old runs
  `known_at = generated_at`, so old runs are not stale on unchanged data).

Only current runs are listed (`reporting.report_run_latest`): a refreshed question's new run replaces the
stale one, which stays in report_run with its findings. The check runs as a role that sees every tenant
(it is fleet-wide by design: one cursor for all of them).
"""

from collections.abc import Sequence
from contextlib import nullcontext
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

from sqlalchemy import Connection, text

from dyno_reports.core import config
from dyno_reports.freshness import staleness_sql as sql


@dataclass(frozen=True)
class StaleRun:
    """A current run (the latest SUCCEEDED run of its question) that is stale, and why."""

    run_id: UUID
    tenant_id: UUID
    report_type: str
    period_start: datetime | None
    period_end: datetime
    period_grain: str
    input_params: dict[str, Any]
    input_fingerprint: str
    known_at: datetime
    dagster_run_id: str | None
    late_rows: int  # history rows of its tenant with valid_from < E and recorded_at > K found so far
    earliest_valid_from: datetime | None  # the earliest valid_from among them
    settled_rows: int  # of them, those recorded at or before the check's time minus the CRM's longest write
    unsettled_to: datetime | None  # the latest recorded_at of the others (None when all are settled)
    known_from: datetime | None  # unsettled_to plus the longest write: a refresh with the default K sees them
    scope_changed: bool  # its scope's stages/pipelines changed (digest differs now)
    version: int  # report_version of the run
    current_version: int  # report_version of the report now

    def reasons(self) -> list[str]:
        """Why, in words: late rows (with the earliest valid_from), stages changed, report version old -> new."""
        reasons = []
        if self.late_rows:
            earliest = self.earliest_valid_from.isoformat() if self.earliest_valid_from else "?"
            reasons.append(f"{self.late_rows} late row{'s' if self.late_rows != 1 else ''} from {earliest}")
        if self.scope_changed:
            reasons.append("stages changed")
        if self.version != self.current_version:
            reasons.append(f"report version {self.version} -> {self.current_version}")
        return reasons

    def waiting(self, as_known_at: datetime | None = None) -> bool:
        """Its only reason is late rows a refresh would not see yet: recorded after the check's time minus the
        CRM's longest write (a refresh's default K), or after `as_known_at` when one is given."""
        if self.settled_rows or self.scope_changed or self.version != self.current_version or not self.unsettled_to:
            return False
        return as_known_at is None or self.unsettled_to > as_known_at

    def waiting_text(self) -> str:
        """`waiting: rows recorded in the last 10 minutes; refresh from <time>`."""
        minutes = config.crm_max_write().total_seconds() / 60
        since = f"{minutes:g} minute{'' if minutes == 1 else 's'}"
        known_from = "?" if self.known_from is None else f"{self.known_from.astimezone(UTC):%Y-%m-%d %H:%M:%S} UTC"
        return f"waiting: rows recorded in the last {since}; refresh from {known_from}"

    def as_json(self) -> dict[str, Any]:
        """The run, its question and why, as `runs stale --json` prints it."""
        return {
            "run_id": str(self.run_id),
            "tenant_id": str(self.tenant_id),
            "report_type": self.report_type,
            "period_start": _iso(self.period_start),
            "period_end": self.period_end.isoformat(),
            "period_grain": self.period_grain,
            "options": self.input_params.get("options", {}),
            "input_fingerprint": self.input_fingerprint,
            "known_at": self.known_at.isoformat(),
            "dagster_run_id": self.dagster_run_id,
            "late_rows": self.late_rows,
            "earliest_valid_from": _iso(self.earliest_valid_from),
            "settled_rows": self.settled_rows,
            "known_from": _iso(self.known_from),
            "waiting": self.waiting(),
            "scope_changed": self.scope_changed,
            "report_version": self.version,
            "current_version": self.current_version,
            "reasons": self.reasons(),
        }


def check(
    conn: Connection, *, tenant_ids: Sequence[UUID] | None = None, report_types: Sequence[str] | None = None
) -> list[StaleRun]:
    """Advance the check (read rows recorded since the previous check), record what it found, and return
    the current runs that are stale (filtered by tenant/report), ordered by tenant, report, period_end.

    Runs in its own transaction, committed, when `conn` has none open; else in the caller's (which then
    commits or rolls back, e.g. a dry run; the cursor row stays locked until then)."""
    from dyno_reports.reports import registry  # read at each check: the versions of the reports as they are now

    versions = {name: report.report_version for name, report in registry().items()}
    with conn.begin() if not conn.in_transaction() else nullcontext():
        cursor = conn.execute(text(sql.LOCK_CURSOR), {"max_write": config.crm_max_write()}).one()
        bounds = {
            "since": cursor.since,
            "settle_to": cursor.settle_to,
            "runs_since": cursor.runs_since,
            "checked_at": cursor.checked_at,
        }
        conn.execute(text(sql.DIRECT), bounds)
        conn.execute(text(sql.WINDOW), bounds)
        compare_scopes_and_versions(conn, bounds, versions)
        conn.execute(text(sql.ADVANCE_CURSOR), {"checked_at": cursor.checked_at})
        rows = conn.execute(
            text(sql.LISTING),
            {
                "tenant_ids": None if tenant_ids is None else list(tenant_ids),
                "only_reports": None if report_types is None else list(report_types),
            },
        ).all()
    return [_stale_run(row, versions, config.crm_max_write()) for row in rows]


def compare_scopes_and_versions(conn: Connection, bounds: dict[str, Any], versions: dict[str, int]) -> None:
    """Flag (and clear) the runs whose scope digest or report version changed since the previous check, and
    the runs made since then whose digest or version is not the current one."""
    conn.execute(text(sql.SCOPES), bounds)
    conn.execute(text(sql.VERSIONS), {**bounds, "report_types": list(versions), "versions": list(versions.values())})


def last_checked(conn: Connection) -> datetime | None:
    """When the last check ran (its transaction time), None before the first."""
    return conn.execute(text("SELECT checked_to FROM reporting.stale_check WHERE only_row")).scalar()


def _iso(moment: datetime | None) -> str | None:
    return None if moment is None else moment.isoformat()


def _stale_run(row: Any, versions: dict[str, int], max_write: timedelta) -> StaleRun:
    return StaleRun(
        run_id=row.run_id,
        tenant_id=row.tenant_id,
        report_type=row.report_type,
        period_start=row.period_start,
        period_end=row.period_end,
        period_grain=row.period_grain,
        input_params=row.input_params or {},
        input_fingerprint=row.input_fingerprint,
        known_at=row.known_at,
        dagster_run_id=row.dagster_run_id,
        late_rows=row.late_rows,
        earliest_valid_from=row.earliest_valid_from,
        settled_rows=row.settled_rows,
        unsettled_to=row.unsettled_to,
        known_from=None if row.unsettled_to is None else row.unsettled_to + max_write,
        scope_changed=row.scope_changed,
        version=row.report_version,
        current_version=row.current_version or versions.get(row.report_type, row.report_version),
    )
