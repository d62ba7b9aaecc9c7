"""The kill scenario: the run worker of a backfill SIGKILLed mid-way, then Dagster vs report_run.

Since issue 21 a crashed worker's run is re-executed from failure once (`run_retries` in dagster.yaml), and
that re-execution skips the partitions its family committed: agreement is read over the run family and holds
once the re-execution has ended and the sweep has reconciled.
"""

import os
import signal
import time
import uuid
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path

from sqlalchemy import func, select

from benchmarks.dagster_ops.graphql import launch_backfill
from benchmarks.dagster_ops.runs import RunTimes, materialised_run_id, run_times, week_start, worker_pid
from benchmarks.dagster_ops.table import Table
from benchmarks.dagster_ops.world import WAIT_SECONDS, World, alive, descendants, wait_for
from dyno_reports.storage.tables import report_run

KILL_FROM = date(2024, 7, 8)  # kill scenario: 26 other weeks, never materialised before


@dataclass(frozen=True)
class Agreement:
    materialised: int  # SUCCEEDED header, and Dagster's latest materialisation carries its run_id
    failed: int  # FAILED header only, no materialisation
    disagreeing: list[str]  # anything else (IN_PROGRESS, no header, materialised without a SUCCEEDED header, ...)
    unfinished: int  # runs of the family not ended yet (the run_retries re-execution, queued or running)

    @property
    def holds(self) -> bool:
        return not self.disagreeing and not self.unfinished


def run_family(world: World, run_id: str) -> list[RunTimes]:
    """The run and its re-executions (`run_retries` after a crash: tag dagster/root_run_id)."""
    return run_times(world, run_ids=[run_id]) + run_times(world, tags={"dagster/root_run_id": run_id})


def agreement(world: World, run_id: str, report_type: str, weeks: dict[str, date], tenant: str) -> Agreement:
    """Dagster vs report_run, for every partition a Dagster run targeted (all of one tenant), over its run family:
    a partition the re-execution committed counts for the killed run too (issue 21: no work redone)."""
    family = run_family(world, run_id)
    with world.engine.connect() as conn:
        headers = conn.execute(
            select(report_run.c.period_start, report_run.c.status, report_run.c.run_id, report_run.c.generated_at)
            .where(
                report_run.c.dagster_run_id.in_([r.run_id for r in family]),
                report_run.c.report_type == report_type,
                report_run.c.tenant_id == uuid.UUID(tenant),
            )
            .order_by(report_run.c.generated_at.desc())
        ).all()
    materialised, failed, disagreeing = 0, 0, []
    for key, week in weeks.items():
        mine = [h for h in headers if h.period_start == week_start(week)]
        statuses = {h.status for h in mine}
        succeeded = [str(h.run_id) for h in mine if h.status == "SUCCEEDED"]  # newest first
        shown = materialised_run_id(world, report_type, key)
        if "IN_PROGRESS" not in statuses and succeeded and shown == succeeded[0]:
            materialised += 1
        elif statuses == {"FAILED"} and shown is None:
            failed += 1
        else:
            disagreeing.append(f"{key}: headers {sorted(statuses) or 'none'}, materialised run_id {shown}")
    unfinished = sum(r.status not in {"SUCCESS", "FAILURE", "CANCELED"} for r in family)
    return Agreement(materialised, failed, disagreeing, unfinished)


def committed(world: World, run_id: str) -> int:
    with world.engine.connect() as conn:
        return conn.execute(
            select(func.count()).where(report_run.c.dagster_run_id == run_id, report_run.c.status == "SUCCEEDED")
        ).scalar_one()


def started_run(world: World, backfill_id: str) -> RunTimes | None:
    times = [t for t in run_times(world, tags={"dagster/backfill": backfill_id}) if t.status in {"STARTED", "SUCCESS"}]
    return times[0] if times else None


def kill_worker(world: World, run_id: str, after_partitions: int) -> tuple[float, int, list[int]]:
    """SIGKILL the run worker once `after_partitions` partitions committed: (when, committed then, its family)."""
    pid = wait_for(lambda: worker_pid(world, run_id), 120, "the run worker's pid", every=0.05)
    if f"DAGSTER_HOME={world.home}".encode() not in Path(f"/proc/{pid}/environ").read_bytes().split(b"\0"):
        raise RuntimeError(f"pid {pid} is not a process of this benchmark")
    wait_for(lambda: committed(world, run_id) >= after_partitions, 300, "partitions to commit", every=0.02)
    family = [pid, *descendants(pid)]
    os.kill(pid, signal.SIGKILL)
    return time.time(), committed(world, run_id), family


def kill_scenario(world: World, tenant: str, weeks: int, table: Table) -> None:
    name = f"kill the run worker of a {weeks}-week backfill"
    days = {f"{d.isoformat()}|{tenant}": d for d in (KILL_FROM + timedelta(weeks=i) for i in range(weeks))}
    backfill_id = launch_backfill(world, "pipeline_overview", list(days))
    run = wait_for(lambda: started_run(world, backfill_id), WAIT_SECONDS, "the backfill's run to start", every=0.1)
    killed_at, done_then, family = kill_worker(world, run.run_id, max(2, weeks // 3))
    time.sleep(2)
    survivors = [pid for pid in family if alive(pid)]
    failed = wait_for(
        lambda: _status_time(world, run.run_id, {"FAILURE", "CANCELED", "SUCCESS"}),
        WAIT_SECONDS,
        "the killed run to be marked failed",
    )
    agreed = wait_for(
        lambda: agreement(world, run.run_id, "pipeline_overview", days, tenant).holds and time.time(),
        WAIT_SECONDS,
        "Dagster and report_run to agree",
        every=1.0,
    )
    final = agreement(world, run.run_id, "pipeline_overview", days, tenant)
    table.add(name, "partitions committed when killed", f"{done_then} of {weeks}")
    table.add(name, "surviving processes of the run", f"{len(survivors)} of {len(family)}", "0", not survivors)
    table.add(name, "kill -> run marked failed", f"{failed[1] - killed_at:.1f} s (status {failed[0]})")
    table.add(name, "kill -> Dagster and report_run agree", f"{agreed - killed_at:.1f} s")
    retries = run_family(world, run.run_id)[1:]
    table.add(
        name,
        "run_retries re-execution",
        ", ".join(f"{r.status}" for r in retries) or "none",
    )
    table.add(
        name,
        "agreement per partition",
        f"{final.materialised} materialised = SUCCEEDED, {final.failed} FAILED, {len(final.disagreeing)} disagreeing",
        "0 disagreeing",
        final.holds,
    )
    table.add(name, "failure recorded by Dagster", _failure_message(world, run.run_id))


def _status_time(world: World, run_id: str, statuses: set[str]) -> tuple[str, float] | None:
    (times,) = run_times(world, run_ids=[run_id])
    return (times.status, times.ended or time.time()) if times.status in statuses else None


def _failure_message(world: World, run_id: str) -> str:
    """Who failed the run: the code server's orphan check says why the worker died; else the RUN_FAILURE text."""
    from dagster import DagsterEventType

    messages = [
        e.dagster_event.message or "" for e in world.instance.all_logs(run_id, of_type=DagsterEventType.ENGINE_EVENT)
    ]
    crash = [m for m in messages if "Run execution process for" in m]  # "[DagsterApiServer] Run execution ..."
    failures = world.instance.all_logs(run_id, of_type=DagsterEventType.RUN_FAILURE)
    message = crash[-1] if crash else (failures[-1].dagster_event.message if failures else "(no RUN_FAILURE event)")
    return " ".join(message.replace(run_id, "<run>").split())[:88]
