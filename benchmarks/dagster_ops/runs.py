"""Reading the instance (run phases, the worker's pid, materialisations) and the reporting side."""

import itertools
import time
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

from sqlalchemy import Engine, func, select

from benchmarks.dagster_ops.world import World
from dyno_reports.devtools import seed
from dyno_reports.engine import executor, run_request
from dyno_reports.storage.tables import report_run

TERMINAL_RUN = {"SUCCESS", "FAILURE", "CANCELED"}


@dataclass(frozen=True)
class RunTimes:
    """A run's life in epoch seconds: created, enqueued, launched (dequeued), started (RUN_START), ended."""

    run_id: str
    status: str
    created: float
    enqueued: float
    launched: float
    started: float
    ended: float


def run_times(world: World, run_ids: list[str] | None = None, tags: dict | None = None) -> list[RunTimes]:
    from dagster import RunsFilter

    records = world.instance.get_run_records(RunsFilter(run_ids=run_ids, tags=tags))
    times = []
    for record in records:
        stats = world.instance.get_run_stats(record.dagster_run.run_id)
        created = record.create_timestamp.timestamp()
        times.append(
            RunTimes(
                record.dagster_run.run_id,
                record.dagster_run.status.value,
                created,
                stats.enqueued_time or created,
                stats.launch_time or 0.0,
                stats.start_time or 0.0,
                stats.end_time or 0.0,
            )
        )
    return sorted(times, key=lambda t: t.created)


def runs_finished(world: World, run_ids: list[str]) -> list[RunTimes] | None:
    times = run_times(world, run_ids=run_ids)
    done = len(times) == len(run_ids) and all(t.status in TERMINAL_RUN for t in times)
    return times if done else None


def backfill_finished(world: World, backfill_id: str) -> Any:
    backfill = world.instance.get_backfill(backfill_id)
    return backfill if backfill.status.value not in {"REQUESTED", "CANCELING", "FAILING"} else None


def worker_pid(world: World, run_id: str) -> int | None:
    """The run worker's pid, from the engine event the code server's subprocess reports when it starts."""
    from dagster import DagsterEventType

    for entry in world.instance.all_logs(run_id, of_type=DagsterEventType.ENGINE_EVENT):
        event = entry.dagster_event
        if (event.message or "").startswith("Started process for run"):
            return int(event.event_specific_data.metadata["pid"].value)
    return None


def materialised_run_id(world: World, report_type: str, partition_key: str) -> str | None:
    """The report run_id in the metadata of the partition's latest materialisation ("?" if none in it)."""
    from dagster import AssetKey, AssetRecordsFilter

    records = world.instance.fetch_materializations(
        AssetRecordsFilter(asset_key=AssetKey(report_type), asset_partitions=[partition_key]), limit=1
    ).records
    if not records:
        return None
    metadata = records[0].asset_materialization.metadata
    return str(metadata["run_id"].value) if "run_id" in metadata else "?"


def step_seconds(world: World, run_id: str) -> dict[str, float]:
    return {s.step_key: (s.end_time or 0) - (s.start_time or 0) for s in world.instance.get_run_step_stats(run_id)}


def partition_log_gaps(world: World, run_id: str) -> list[float]:
    """Seconds between consecutive partition commits of one run (report_run.generated_at, in commit order)."""
    with world.engine.connect() as conn:
        stamps = sorted(
            conn.execute(
                select(report_run.c.generated_at).where(
                    report_run.c.dagster_run_id == run_id, report_run.c.status == "SUCCEEDED"
                )
            ).scalars()
        )
    return [(b - a).total_seconds() for a, b in itertools.pairwise(stamps)]


# --- the reporting side: seeds, direct executor runs, report_run headers ------------------------------


def seed_and_register(world: World, tenants: int, deals: int, random_seed: int) -> list[str]:
    """Seeded tenants in the default calendar (UTC weeks from Monday, as the SQL baseline reads them and as
    earlier figures ran: these scenarios measure Dagster's overhead, the scale scenario the zones), registered."""
    from dyno_reports.dagster_defs.tenants import sync_tenants
    from dyno_reports.storage.tables import tenant

    seeded = [
        t.tenant_id for t in seed.seed(world.engine, tenants=tenants, deals_per_tenant=deals, random_seed=random_seed)
    ]
    with world.engine.begin() as conn:
        default = {"time_zone": "UTC", "week_start": 1, "fiscal_year_start_month": 1, "fiscal_year_named_by": "end"}
        conn.execute(tenant.update().where(tenant.c.tenant_id.in_(seeded)).values(**default))
    sync_tenants(world.engine, world.instance)
    return [str(t) for t in seeded]


def week_start(week: date) -> datetime:
    return datetime(week.year, week.month, week.day, tzinfo=UTC)


def executor_seconds(engine: Engine, work: list[tuple[str, str, date]]) -> float:
    """Seconds to validate and run each (report, tenant, week) through the executor, one after the other."""
    total = 0.0
    for report_type, tenant_id, week in work:
        started = time.perf_counter()
        with engine.connect() as conn:
            request = run_request.build_request(
                conn,
                report_type,
                tenant_id,
                period_start=week_start(week),
                period_end=week_start(week) + timedelta(weeks=1),
            )
        result = executor.execute(engine, request)
        total += time.perf_counter() - started
        if not result.succeeded:
            raise RuntimeError(f"direct run of {report_type} for {tenant_id} failed: {result.error_message}")
    return total


def header_statuses(engine: Engine, run_ids: list[str]) -> dict[str, int]:
    with engine.connect() as conn:
        rows = conn.execute(
            select(report_run.c.status, func.count())
            .where(report_run.c.dagster_run_id.in_(run_ids))
            .group_by(report_run.c.status)
        ).all()
    return {status: count for status, count in rows}
