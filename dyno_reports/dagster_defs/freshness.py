"""The stale sensor: each interval, the stale check, and refresh runs for the stale partitions.

`stale_report_runs_sensor` (on by default; `DYNO_STALE_SENSOR_SECONDS`, default 300 s) runs the same check
as `dyno-reports runs stale` (`staleness.check`: the rows recorded since the previous check, the stage
digests, the report versions) and maps each stale run to the partition whose question it is
(`stale_partitions.py`). It requests, batched like the schedules (at most 100 partitions a run, a tenant's
periods together), the partitions whose period ended within the lookback (`DYNO_STALE_LOOKBACK_DAYS`,
default 90); older ones are listed in the tick's log, not run, unless `DYNO_STALE_REFRESH_ALL=1`. Each run
carries `dyno/reason=stale` and `dyno/stale_because` (late rows, stages, version); its partitions run as
any other, with the default K, so their materialisations name the run they replaced and the diff.

A stale run waits while its tenant has history rows dated before its end that were recorded less than the
CRM's longest write ago (10 minutes): a refresh now would know the CRM as of before them (its K is its start
minus that margin) and be stale again at once. Stale runs that are no partition's question (a custom window
from the CLI) are skipped with a log line: `dyno-reports refresh` re-runs them.

A tick does not ask twice for a refresh: the run key names the stale runs it replaces, and the cursor keeps
the keys of the current tick, so a refresh still pending is not requested again, and one that failed is not
retried until its stale runs change (re-run it with `dyno-reports refresh` or a backfill). Turn the sensor
off in the UI (Automation) or with `dagster sensor stop stale_report_runs_sensor`.
"""

import json
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

from dagster import DefaultSensorStatus, RunRequest, SensorDefinition, SensorEvaluationContext, SensorResult, sensor
from sqlalchemy import Connection, Engine, func, select

from dyno_reports.core import config
from dyno_reports.dagster_defs.partitions import TENANT
from dyno_reports.dagster_defs.resources import ReportDatabase
from dyno_reports.dagster_defs.slots import DEFAULT_CALENDAR, calendars_of
from dyno_reports.dagster_defs.stale_partitions import SKIPPED, StalePartition, refresh_requests, stale_partition
from dyno_reports.freshness import staleness
from dyno_reports.storage.tables import deal_history

SENSOR_NAME = "stale_report_runs_sensor"
LISTED = 20  # log lines per kind of stale run not refreshed; then a count


@dataclass
class StaleTick:
    """What one tick found: the refresh runs to request and what it leaves, and why."""

    requests: list[RunRequest] = field(default_factory=list)
    stale: int = 0
    refreshed: int = 0  # partitions in `requests`
    older: list[StalePartition] = field(default_factory=list)
    waiting: int = 0
    skipped: Counter = field(default_factory=Counter)
    lines: list[str] = field(default_factory=list)

    def summary(self, new: int) -> str:
        skipped = ", ".join(f"{self.skipped[k]} {text}" for k, text in SKIPPED.items() if self.skipped[k])
        return (
            f"{self.stale} stale run(s): {self.refreshed} partition(s) to refresh in {len(self.requests)} run(s) "
            f"({new} requested now, {len(self.requests) - new} already requested), "
            f"{len(self.older)} older than the lookback (listed, not run), {self.waiting} waiting for rows "
            f"recorded less than the CRM's longest write ago, {sum(self.skipped.values())} skipped"
            + (f" ({skipped})" if skipped else "")
        )


def recent_backdated(conn: Connection, tenant_ids: Iterable[UUID]) -> dict[UUID, datetime]:
    """tenant -> the earliest valid_from of its history rows recorded less than the CRM's longest write ago
    (a transaction may still be committing rows like them): one query on (tenant_id, recorded_at)."""
    wanted = sorted(set(tenant_ids))
    if not wanted:
        return {}
    since = func.now() - config.crm_max_write()
    rows = conn.execute(
        select(deal_history.c.tenant_id, func.min(deal_history.c.valid_from))
        .where(deal_history.c.tenant_id.in_(wanted), deal_history.c.recorded_at > since)
        .group_by(deal_history.c.tenant_id)
    )
    return {row[0]: row[1] for row in rows}


def stale_tick(engine: Engine, tenants: Sequence[str], start: str, now: datetime) -> StaleTick:
    """Run the stale check and sort its stale runs: refresh (batched), older, waiting, skipped."""
    with engine.connect() as conn:
        stale = staleness.check(conn)  # in its own transaction, committed
        calendars = calendars_of(conn, {str(run.tenant_id) for run in stale})
        recent = recent_backdated(conn, {run.tenant_id for run in stale})
    tick = StaleTick(stale=len(stale))
    registered, oldest = set(tenants), now - config.stale_lookback()
    refresh_all, due = config.stale_refresh_all(), []
    for run in stale:
        found = stale_partition(run, start, calendars.get(str(run.tenant_id), DEFAULT_CALENDAR), registered, now)
        if isinstance(found, str):
            tick.skipped[found] += 1
            _list(tick, sum(tick.skipped.values()), f"skipped: {_question(run)}: {SKIPPED[found]}")
        elif run.tenant_id in recent and recent[run.tenant_id] < run.period_end:
            tick.waiting += 1
        elif run.period_end < oldest and not refresh_all:
            tick.older.append(found)
            _list(tick, len(tick.older), f"not refreshed, older than the lookback: {_described(found)}")
        else:
            due.append(found)
    tick.requests = refresh_requests(due, tenants, start, now)
    tick.refreshed = len(due)
    return tick


def _question(run: staleness.StaleRun) -> str:
    window = f"[{run.period_start.isoformat() if run.period_start else ''}, {run.period_end.isoformat()})"
    return f"{run.report_type} run {run.run_id} of tenant {run.tenant_id} {window} ({'; '.join(run.reasons())})"


def _described(partition: StalePartition) -> str:
    return f"{partition.asset} {partition.key} ({'; '.join(partition.run.reasons())})"


def _list(tick: StaleTick, count: int, line: str) -> None:
    if count <= LISTED:
        tick.lines.append(line)
    elif count == LISTED + 1:
        tick.lines.append("... (more of the same kind: see the summary's counts)")


def _requested_before(cursor: str | None) -> set[str]:
    return set(json.loads(cursor)) if cursor else set()


def stale_runs_sensor(start: str, jobs: Sequence[Any]) -> SensorDefinition:
    """The sensor for assets whose periods begin at `start`, launching runs of the cadence `jobs`."""

    @sensor(
        name=SENSOR_NAME,
        minimum_interval_seconds=config.stale_sensor_interval(),
        default_status=DefaultSensorStatus.RUNNING,
        jobs=list(jobs),
        description="Runs the stale check and refreshes stale report partitions whose period ended within the "
        "lookback (DYNO_STALE_LOOKBACK_DAYS, 90 days), batched; lists older ones.",
    )
    def stale_report_runs_sensor(context: SensorEvaluationContext, dyno_db: ReportDatabase):
        tenants = context.instance.get_dynamic_partitions(TENANT)  # registration order: what ranges follow
        tick = stale_tick(dyno_db.engine(), tenants, start, datetime.now(UTC))
        before = _requested_before(context.cursor)
        new = [request for request in tick.requests if request.run_key not in before]
        summary = tick.summary(len(new))
        context.log.info(summary)
        for line in tick.lines:
            context.log.info(line)
        cursor = json.dumps(sorted(str(request.run_key) for request in tick.requests))
        if new:
            return SensorResult(run_requests=new, cursor=cursor)
        return SensorResult(cursor=cursor, skip_reason=summary)

    return stale_report_runs_sensor
