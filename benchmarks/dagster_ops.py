"""Dagster in operation: a backfill, schedule ticks and a killed run, against a real daemon and webserver.

    python -m benchmarks.dagster_ops [--quick] [--no-kill]

Sets up a throwaway world on one PostgreSQL server (the server of
DYNO_DATABASE_URL, else postgres@127.0.0.1:5432): a reporting database
`dyno_bench_<hex>` (migrated, seeded) and a Dagster storage database
`dagster_bench_<hex>`, a temporary DAGSTER_HOME holding the project's
dagster.yaml, the tenants registered as partitions, then `dagster dev -w
workspace.yaml` (webserver, daemon, code servers) as a subprocess with
DYNO_DAGSTER_START_DATE=2024-07-01. The scenarios, in the order they run:

- tick: a weekly tick for 200 small tenants end to end. The code server
  evaluates `weekly_reports_schedule` for Monday 2025-06-30 02:00 UTC (GraphQL
  `scheduleDryRun`, the UI's "Evaluate tick"), and its run requests are launched
  with `launchMultipleRuns` (the UI's "Launch all runs") carrying the tags the
  scheduler daemon adds (`dagster/schedule_name`, `dagster/run_key`); the run
  queue daemon then dequeues and launches them as it would a real tick's runs.
- backfill: one large tenant, 26 weeks of pipeline_overview, launched over
  GraphQL as the UI does (`launchPartitionBackfill`), through the backfill daemon.
- kill (unless --no-kill): another 26-week backfill of that tenant; its run
  worker is SIGKILLed mid-way (its pid comes from the run's "Started process for
  run" engine event; the worker is a multiprocessing child of the code server,
  with no run id on its command line). Reported: surviving processes, seconds
  until the run is failed and until Dagster and report_run agree again (the
  report_run_failure_reaper sensor's work).
- 2,000 tenants: fake tenant partitions are added up to 2,000 (last, as they
  would swell the other scenarios) and the weekly tick is evaluated in-process
  (`build_schedule_context` on the bench instance) and through the code server
  (GraphQL `scheduleDryRun`, the daemon's path: gRPC to the code server).

"SQL seconds" are measured by running the very same report requests directly
through the shared executor (`build_request` + `execute`, what the asset body
and the IO manager do per partition), one after the other in this process, right
after Dagster's runs. Both databases are dropped and every process started here
is ended, in a finally. Numbers are wall-clock on a shared machine: noisy.
"""

import argparse
import contextlib
import itertools
import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, func, select, text
from sqlalchemy.engine import URL

from dyno_reports import db, executor, seed
from dyno_reports.storage import migrate
from dyno_reports.storage.tables import report_run

PROJECT = Path(__file__).resolve().parents[1]
DEFAULT_SERVER = "postgresql://postgres@127.0.0.1:5432/postgres"
START_DATE = "2024-07-01"
LOCATION = {"repositoryLocationName": "dyno_reports", "repositoryName": "__repository__"}
BACKFILL_FROM = date(2025, 1, 6)  # backfill scenario: 26 weeks up to 2025-06-30
KILL_FROM = date(2024, 7, 8)  # kill scenario: 26 other weeks, never materialised before
WEEKLY_TICK = datetime(2025, 6, 30, 2, 0, tzinfo=UTC)  # requests the week of 2025-06-23
WEEKLY_SCHEDULE = "weekly_reports_schedule"
WEEKLY_REPORTS = ("pipeline_overview", "stage_conversion")
TERMINAL_RUN = {"SUCCESS", "FAILURE", "CANCELED"}
WAIT_SECONDS = 600


@dataclass(frozen=True)
class Sizes:
    big_deals: int = 20_000
    weeks: int = 26
    small_tenants: int = 200
    small_deals: int = 300
    tick_tenants: int = 2_000
    repeats: int = 3


QUICK = Sizes(big_deals=4_000, weeks=8, small_tenants=20, small_deals=100, repeats=2)


@dataclass
class Table:
    """The printed figures: (scenario, figure, value, goal, verdict) rows."""

    rows: list[tuple[str, str, str, str, str]] = field(default_factory=list)

    def add(self, scenario: str, figure: str, value: str, goal: str = "", ok: bool | None = None) -> None:
        self.rows.append((scenario, figure, value, goal, "" if ok is None else ("ok" if ok else "MISSED")))

    def print(self) -> None:
        widths = [max(len(r[i]) for r in self.rows) for i in range(5)]
        last = ""
        for row in self.rows:
            shown = ("" if row[0] == last else row[0], *row[1:])
            last = row[0]
            print("  ".join(cell.ljust(w) for cell, w in zip(shown, widths, strict=True)).rstrip(), flush=True)
        print(
            "*   outside steps: run time not in any step (waits for dyno_source_db pool slots, run set-up)\n"
            "**  median gap between the IO manager's per-partition log lines; executor: mean direct run\n"
            "*** per-run launchMultipleRuns time of the weekly tick scenario (runs not launched here)",
            flush=True,
        )


# --- the throwaway world: databases, DAGSTER_HOME, `dagster dev` -------------------------------------


@dataclass
class World:
    server: URL
    report_db: str
    dagster_db: str
    home: Path
    port: int
    engine: Engine | None = None
    dev: subprocess.Popen | None = None
    instance: Any = None

    @property
    def report_url(self) -> URL:
        return db.sqlalchemy_url(self.server).set(database=self.report_db)

    def graphql(self, query: str, variables: dict[str, Any]) -> dict[str, Any]:
        body = json.dumps({"query": query, "variables": variables}).encode()
        request = urllib.request.Request(
            f"http://127.0.0.1:{self.port}/graphql", body, {"Content-Type": "application/json"}
        )
        with urllib.request.urlopen(request, timeout=300) as response:
            payload = json.load(response)
        if payload.get("errors"):
            raise RuntimeError(f"GraphQL errors: {payload['errors']}")
        return payload["data"]


def new_world(server_url: str) -> World:
    suffix = uuid.uuid4().hex[:10]
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    home = Path(tempfile.mkdtemp(prefix="dagster_bench_home_"))
    return World(db.sqlalchemy_url(server_url), f"dyno_bench_{suffix}", f"dagster_bench_{suffix}", home, port)


def environment(world: World) -> dict[str, str]:
    """What the daemon, webserver, code servers and run workers see (and this process, for its instance)."""
    return {
        "DAGSTER_HOME": str(world.home),
        "DAGSTER_POSTGRES_URL": db.psycopg2_url(world.server.set(database=world.dagster_db)).render_as_string(
            hide_password=False
        ),
        "DYNO_DATABASE_URL": world.report_url.render_as_string(hide_password=False),
        "DYNO_DAGSTER_START_DATE": START_DATE,
    }


def create_databases(world: World) -> None:
    for name in (world.report_db, world.dagster_db):
        db.ensure_database(world.server, name)
    shutil.copyfile(PROJECT / "dagster.yaml", world.home / "dagster.yaml")
    os.environ.update(environment(world))
    world.engine = create_engine(world.report_url)
    migrate.upgrade(world.engine)
    from dagster import DagsterInstance

    world.instance = DagsterInstance.get()  # the bench instance: same dagster.yaml, same storage


def drop_databases(world: World) -> None:
    if world.instance is not None:
        world.instance.dispose()
    if world.engine is not None:
        world.engine.dispose()
    admin = create_engine(world.server, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            for name in (world.report_db, world.dagster_db):  # identifiers we generated: quoted, not bound
                conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    finally:
        admin.dispose()


def start_dagster(world: World) -> None:
    """`dagster dev` in a session of its own (its children inherit it), output to a log in DAGSTER_HOME."""
    dagster = Path(sys.executable).with_name("dagster")
    log = open(world.home / "dagster_dev.log", "wb")  # noqa: SIM115 (open for the life of the subprocess)
    world.dev = subprocess.Popen(
        [str(dagster), "dev", "-w", str(PROJECT / "workspace.yaml"), "-h", "127.0.0.1", "-p", str(world.port)],
        env={**os.environ, **environment(world)},
        cwd=world.home,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    log.close()
    wait_for(lambda: location_loaded(world), 240, "the webserver and the code location")
    required = set(world.instance.get_required_daemon_types())
    wait_for(lambda: required <= set(world.instance.get_daemon_heartbeats()), 240, "daemon heartbeats")


def location_loaded(world: World) -> bool:
    if world.dev is not None and world.dev.poll() is not None:
        raise RuntimeError(f"dagster dev exited ({world.dev.returncode}); see {world.home / 'dagster_dev.log'}")
    try:
        data = world.graphql(
            "{ workspaceOrError { ... on Workspace { locationEntries { loadStatus "
            "locationOrLoadError { __typename } } } } }",
            {},
        )
    except OSError:
        return False
    entries = data["workspaceOrError"].get("locationEntries") or []
    return (
        bool(entries)
        and all(e["loadStatus"] == "LOADED" for e in entries)
        and all(e["locationOrLoadError"]["__typename"] == "RepositoryLocation" for e in entries)
    )


def our_processes(world: World) -> list[int]:
    """Pids in `dagster dev`'s session, or with this world's DAGSTER_HOME in their environment."""
    marker = f"DAGSTER_HOME={world.home}".encode()
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            session = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[3])
            mine = world.dev is not None and session == world.dev.pid
            if mine or marker in (entry / "environ").read_bytes().split(b"\0"):
                pids.append(int(entry.name))
        except (OSError, IndexError, ValueError):
            continue  # gone, or not ours to read
    return pids


def stop_dagster(world: World) -> list[str]:
    """SIGINT to `dagster dev` (it stops its children), then SIGKILL, pid by pid, whatever is left.

    Returns the command lines of the processes still running once `dagster dev` exited (or after 30 s).
    """
    if world.dev is None:
        return []
    if world.dev.poll() is None:
        world.dev.send_signal(signal.SIGINT)
        with contextlib.suppress(subprocess.TimeoutExpired):
            world.dev.wait(30)
    leftover = {pid: command_line(pid) for pid in our_processes(world) if alive(pid)}
    for pid in leftover:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    if world.dev.poll() is None:
        world.dev.kill()
    world.dev.wait()
    return list(leftover.values())


def command_line(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()[:70]
    except OSError:
        return "?"


def alive(pid: int) -> bool:
    """Running (a zombie waiting for its parent to reap it counts as dead)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def wait_for(condition: Callable[[], Any], seconds: float, what: str, every: float = 0.25) -> Any:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(every)
    raise TimeoutError(f"gave up after {seconds:.0f} s waiting for {what}")


def descendants(pid: int) -> list[int]:
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            parent = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        children.setdefault(parent, []).append(int(entry.name))
    found, todo = [], list(children.get(pid, []))
    while todo:
        child = todo.pop()
        found.append(child)
        todo.extend(children.get(child, []))
    return found


# --- GraphQL, as the UI sends it ----------------------------------------------------------------------

LAUNCH_BACKFILL = """
mutation LaunchPartitionBackfill($backfillParams: LaunchBackfillParams!) {
  launchPartitionBackfill(backfillParams: $backfillParams) {
    __typename
    ... on LaunchBackfillSuccess { backfillId }
    ... on Error { message }
  }
}"""

SCHEDULE_DRY_RUN = """
mutation ScheduleDryRunMutation($selectorData: ScheduleSelector!, $timestamp: Float) {
  scheduleDryRun(selectorData: $selectorData, timestamp: $timestamp) {
    __typename
    ... on DryRunInstigationTick {
      evaluationResult {
        skipReason
        error { message }
        runRequests { runKey jobName runConfigYaml tags { key value } assetSelection { path } }
      }
    }
    ... on Error { message }
  }
}"""

LAUNCH_MULTIPLE_RUNS = """
mutation LaunchMultipleRuns($executionParamsList: [ExecutionParams!]!) {
  launchMultipleRuns(executionParamsList: $executionParamsList) {
    __typename
    ... on LaunchMultipleRunsResult {
      launchMultipleRunsResult { __typename ... on LaunchRunSuccess { run { runId } } ... on Error { message } }
    }
    ... on Error { message }
  }
}"""


def launch_backfill(world: World, report_type: str, partition_keys: list[str]) -> str:
    params = {
        "assetSelection": [{"path": [report_type]}],
        "partitionNames": partition_keys,
        "fromFailure": False,
        "tags": [],
    }
    result = world.graphql(LAUNCH_BACKFILL, {"backfillParams": params})["launchPartitionBackfill"]
    if result["__typename"] != "LaunchBackfillSuccess":
        raise RuntimeError(f"launchPartitionBackfill: {result}")
    return result["backfillId"]


def evaluate_tick(world: World, schedule: str, tick: datetime) -> tuple[list[dict], float]:
    """The code server evaluates the tick (what the scheduler daemon asks it); returns run requests, seconds."""
    started = time.perf_counter()
    result = world.graphql(
        SCHEDULE_DRY_RUN, {"selectorData": {**LOCATION, "scheduleName": schedule}, "timestamp": tick.timestamp()}
    )["scheduleDryRun"]
    seconds = time.perf_counter() - started
    evaluation = result.get("evaluationResult") or {}
    if result["__typename"] != "DryRunInstigationTick" or evaluation.get("error"):
        raise RuntimeError(f"scheduleDryRun: {result}")
    return evaluation["runRequests"] or [], seconds


def execution_params(request: dict, schedule: str, job_name: str) -> dict[str, Any]:
    """The UI's "Launch all runs" params, plus the tags the scheduler daemon adds to a tick's runs.

    `assetCheckSelection` is left out (the UI sends `[]`): with no asset selection
    either, the whole job runs, checks included, as for the daemon's own runs.
    """
    tags = [{"key": t["key"], "value": t["value"]} for t in request["tags"]]
    tags += [
        {"key": "dagster/schedule_name", "value": schedule},
        {"key": "dagster/run_key", "value": request["runKey"]},
    ]
    selector = {
        **LOCATION,
        "jobName": request["jobName"] or job_name,
        "assetSelection": [{"path": key["path"]} for key in request["assetSelection"] or []],
    }
    return {
        "runConfigData": request["runConfigYaml"],
        "selector": selector,
        "mode": "default",
        "executionMetadata": {"tags": tags},
    }


def launch_runs(world: World, params: list[dict[str, Any]]) -> list[str]:
    result = world.graphql(LAUNCH_MULTIPLE_RUNS, {"executionParamsList": params})["launchMultipleRuns"]
    launched = result.get("launchMultipleRunsResult") or []
    if result["__typename"] != "LaunchMultipleRunsResult" or any(
        r["__typename"] != "LaunchRunSuccess" for r in launched
    ):
        raise RuntimeError(f"launchMultipleRuns: {result}")
    return [r["run"]["runId"] for r in launched]


# --- reading the instance: run phases, the worker's pid, materialisations -----------------------------


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
    from dyno_reports.dagster_defs.tenants import sync_tenants

    seeded = seed.seed(world.engine, tenants=tenants, deals_per_tenant=deals, random_seed=random_seed)
    sync_tenants(world.engine, world.instance)
    return [str(t.tenant_id) for t in seeded]


def week_start(week: date) -> datetime:
    return datetime(week.year, week.month, week.day, tzinfo=UTC)


def executor_seconds(engine: Engine, work: list[tuple[str, str, date]]) -> float:
    """Seconds to validate and run each (report, tenant, week) through the executor, one after the other."""
    total = 0.0
    for report_type, tenant_id, week in work:
        started = time.perf_counter()
        with engine.connect() as conn:
            request = executor.build_request(
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


# --- the scenarios --------------------------------------------------------------------------------------


def spread(values: list[float]) -> str:
    return f"median {statistics.median(values):.2f} s, max {max(values):.2f} s" if values else "-"


def add_run_phases(table: Table, scenario: str, times: list[RunTimes]) -> None:
    table.add(scenario, "run queue (enqueued -> launched)", spread([t.launched - t.enqueued for t in times]))
    table.add(scenario, "worker start-up (launched -> RUN_START)", spread([t.started - t.launched for t in times]))
    table.add(scenario, "run (RUN_START -> RUN_SUCCESS)", spread([t.ended - t.started for t in times]))


def add_step_split(table: Table, scenario: str, world: World, times: list[RunTimes]) -> None:
    """Per run: seconds in the report steps and in the asset check steps (medians over the runs)."""
    reports, checks, outside = [], [], []
    for t in times:
        seconds = step_seconds(world, t.run_id)
        reports.append(sum(v for k, v in seconds.items() if k in WEEKLY_REPORTS))
        checks.append(sum(v for k, v in seconds.items() if k not in WEEKLY_REPORTS))
        outside.append(t.ended - t.started - sum(seconds.values()))
    table.add(
        scenario,
        "  of which report / check steps / outside steps*",
        f"{statistics.median(reports):.1f} / "
        f"{statistics.median(checks):.1f} / {statistics.median(outside):.1f} s (medians per run)",
    )


def tick_scenario(world: World, tenants: list[str], table: Table) -> float:
    """Returns the seconds launchMultipleRuns took per run (creating and enqueueing it)."""
    name = f"weekly tick, {len(tenants)} tenants"
    requests, evaluation = evaluate_tick(world, WEEKLY_SCHEDULE, WEEKLY_TICK)
    params = [execution_params(r, WEEKLY_SCHEDULE, "weekly_reports") for r in requests]
    launched_at = time.time()
    run_ids = launch_runs(world, params)
    launching = time.time() - launched_at
    times = wait_for(lambda: runs_finished(world, run_ids), WAIT_SECONDS, "the tick's runs", every=0.5)
    end_to_end = max(t.ended for t in times) - launched_at
    week = date.fromisoformat(next(t["value"] for t in requests[0]["tags"] if t["key"] == "dyno/period"))
    sql = executor_seconds(world.engine, [(rt, tenant, week) for tenant in tenants for rt in WEEKLY_REPORTS])
    pickup = min(t.launched - t.enqueued for t in times)
    # The daemon's own tick latency: what passes before any report SQL can start, whatever the tenants'
    # work: evaluating the tick, creating and enqueueing its runs, the queue's pick-up, a worker's start.
    latency = evaluation + min(t.started for t in times) - launched_at
    budget = 3 * sql + latency
    table.add(
        name,
        "end to end (first launch -> last run ended)",
        f"{end_to_end:.1f} s",
        f"<= 3 x SQL + tick latency = {budget:.1f} s",
        end_to_end <= budget,
    )
    statuses = ", ".join(f"{k} {v}" for k, v in sorted(header_statuses(world.engine, run_ids).items()))
    table.add(
        name,
        "runs / report_run headers",
        f"{len(times)} ({_statuses(times)}) / {statuses}",
        f"{2 * len(tenants)} SUCCEEDED",
    )
    table.add(name, "SQL: the same report runs via the executor", f"{sql:.2f} s ({2 * len(tenants)} runs, sequential)")
    table.add(name, "ratio end to end / SQL", f"{end_to_end / sql:.1f}")
    table.add(
        name,
        "tick latency: evaluation + until the first run started",
        f"{evaluation:.2f} s + {latency - evaluation:.2f} s (of which queue pick-up {pickup:.2f} s)",
    )
    table.add(name, "launchMultipleRuns (create + enqueue)", f"{launching:.2f} s for {len(run_ids)} runs")
    add_run_phases(table, name, times)
    add_step_split(table, name, world, times)
    return launching / len(run_ids)


def _statuses(times: list[RunTimes]) -> str:
    counts: dict[str, int] = {}
    for t in times:
        counts[t.status] = counts.get(t.status, 0) + 1
    return ", ".join(f"{k} {v}" for k, v in sorted(counts.items()))


BACKFILL_REPEATS = 3


def backfill_scenario(world: World, tenant: str, deals: int, weeks: int, table: Table) -> None:
    """The same 26-week backfill BACKFILL_REPEATS times, each followed by its SQL through the executor: medians."""
    name = f"backfill, {weeks} weeks x 1 tenant ({deals:,} deals)"
    days = [BACKFILL_FROM + timedelta(weeks=i) for i in range(weeks)]
    runs_s, sqls = [], []
    for _ in range(BACKFILL_REPEATS):
        launched_at = time.time()
        backfill_id = launch_backfill(world, "pipeline_overview", [f"{d.isoformat()}|{tenant}" for d in days])
        backfill = wait_for(
            lambda bid=backfill_id: backfill_finished(world, bid), WAIT_SECONDS, "the backfill", every=0.5
        )
        finished_at = backfill.backfill_end_timestamp or time.time()
        times = run_times(world, tags={"dagster/backfill": backfill_id})
        runs_s.append(sum(t.ended - t.started for t in times))
        sqls.append(executor_seconds(world.engine, [("pipeline_overview", tenant, d) for d in days]))
    run_seconds, sql = statistics.median(runs_s), statistics.median(sqls)
    overhead = statistics.median(r - q for r, q in zip(runs_s, sqls, strict=True))
    table.add(
        name,
        "end to end (launch -> backfill completed), last",
        f"{finished_at - launched_at:.1f} s ({backfill.status.value})",
    )
    statuses = ", ".join(
        f"{k} {v}" for k, v in sorted(header_statuses(world.engine, [t.run_id for t in times]).items())
    )
    table.add(
        name, "runs / report_run headers, last", f"{len(times)} ({_statuses(times)}) / {statuses}", f"{weeks} SUCCEEDED"
    )
    table.add(
        name,
        f"Dagster run time - SQL time, median of {BACKFILL_REPEATS}",
        f"{overhead:.2f} s (runs {' / '.join(f'{r:.2f}' for r in runs_s)} s)",
        "<= 1 s",
        overhead <= 1,
    )
    table.add(name, "Dagster run time (RUN_START -> RUN_SUCCESS), median", f"{run_seconds:.2f} s")
    table.add(
        name,
        "SQL: the same report runs via the executor, median",
        f"{sql:.2f} s ({weeks} runs; {' / '.join(f'{q:.2f}' for q in sqls)} s)",
    )
    table.add(name, "backfill daemon (launch -> run created)", f"{min(t.created for t in times) - launched_at:.1f} s")
    add_run_phases(table, name, times)
    seconds = step_seconds(world, times[0].run_id)
    report_step = seconds.get("pipeline_overview", 0)
    table.add(
        name,
        "  of which report / check steps / outside steps*",
        f"{report_step:.1f} / "
        f"{sum(seconds.values()) - report_step:.1f} / "
        f"{times[0].ended - times[0].started - sum(seconds.values()):.1f} s",
    )
    gaps = partition_log_gaps(world, times[0].run_id)
    table.add(
        name,
        "  per partition: IO manager** vs executor",
        f"{statistics.median(gaps) * 1000:.0f} ms vs {sql / weeks * 1000:.0f} ms",
    )
    table.add(
        name, "backfill daemon (last run ended -> completed)", f"{finished_at - max(t.ended for t in times):.1f} s"
    )


@dataclass(frozen=True)
class Agreement:
    materialised: int  # SUCCEEDED header, and Dagster's latest materialisation carries its run_id
    failed: int  # FAILED header only, no materialisation
    disagreeing: list[str]  # anything else (IN_PROGRESS, no header, materialised without a SUCCEEDED header, ...)

    @property
    def holds(self) -> bool:
        return not self.disagreeing


def agreement(world: World, run_id: str, report_type: str, weeks: dict[str, date], tenant: str) -> Agreement:
    """Dagster vs report_run, for every partition a Dagster run targeted (all of one tenant)."""
    with world.engine.connect() as conn:
        headers = conn.execute(
            select(report_run.c.period_start, report_run.c.status, report_run.c.run_id).where(
                report_run.c.dagster_run_id == run_id,
                report_run.c.report_type == report_type,
                report_run.c.tenant_id == uuid.UUID(tenant),
            )
        ).all()
    materialised, failed, disagreeing = 0, 0, []
    for key, week in weeks.items():
        mine = [h for h in headers if h.period_start == week_start(week)]
        statuses = {h.status for h in mine}
        succeeded = [str(h.run_id) for h in mine if h.status == "SUCCEEDED"]
        shown = materialised_run_id(world, report_type, key)
        if "IN_PROGRESS" not in statuses and succeeded and shown == succeeded[0]:
            materialised += 1
        elif statuses == {"FAILED"} and shown is None:
            failed += 1
        else:
            disagreeing.append(f"{key}: headers {sorted(statuses) or 'none'}, materialised run_id {shown}")
    return Agreement(materialised, failed, disagreeing)


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


def scale_scenario(world: World, tenants: int, repeats: int, creation: float, table: Table) -> None:
    """The weekly tick at `tenants` tenant partitions: in-process and through the code server, medians."""
    from dagster import build_schedule_context

    from dyno_reports.dagster_defs.partitions import TENANT
    from dyno_reports.definitions import defs

    name = f"weekly tick at {tenants:,} tenants"
    known = world.instance.get_dynamic_partitions(TENANT)
    world.instance.add_dynamic_partitions(TENANT, [str(uuid.uuid4()) for _ in range(tenants - len(known))])
    schedule, repository = defs.get_schedule_def(WEEKLY_SCHEDULE), defs.get_repository_def()
    in_process, requested = [], 0
    for _ in range(repeats):
        context = build_schedule_context(
            instance=world.instance, scheduled_execution_time=WEEKLY_TICK, repository_def=repository
        )
        started = time.perf_counter()
        requested = len(schedule.evaluate_tick(context).run_requests or [])
        in_process.append(time.perf_counter() - started)
    served = [evaluate_tick(world, WEEKLY_SCHEDULE, WEEKLY_TICK) for _ in range(repeats)]
    through = statistics.median(seconds for _, seconds in served)
    table.add(
        name,
        "runs requested",
        f"{requested} (code server: {len(served[0][0])})",
        "<= 40",
        requested <= 40 and len(served[0][0]) <= 40,
    )
    table.add(
        name,
        "evaluation in-process (build_schedule_context)",
        f"{statistics.median(in_process):.2f} s (median of {repeats})",
        "<= 10 s",
        statistics.median(in_process) <= 10,
    )
    table.add(
        name,
        "evaluation by the code server (scheduleDryRun)",
        f"{through:.2f} s (median of {repeats})",
        "<= 10 s",
        through <= 10,
    )
    table.add(name, "creating its runs (estimate***)", f"{requested} x {creation:.2f} s = {requested * creation:.0f} s")


# --- main -----------------------------------------------------------------------------------------------


def run_scenarios(world: World, sizes: Sizes, kill: bool, table: Table) -> None:
    started = time.perf_counter()
    small = seed_and_register(world, sizes.small_tenants, sizes.small_deals, random_seed=3)
    print(
        f"seeded {len(small)} tenants of {sizes.small_deals} deals in {time.perf_counter() - started:.1f} s", flush=True
    )
    started = time.perf_counter()
    start_dagster(world)
    print(
        f"dagster dev up (webserver :{world.port}, daemon, code location) in {time.perf_counter() - started:.1f} s",
        flush=True,
    )
    creation = tick_scenario(world, small, table)
    print("tick scenario done", flush=True)
    started = time.perf_counter()
    (big,) = seed_and_register(world, 1, sizes.big_deals, random_seed=sizes.big_deals)
    print(f"seeded 1 tenant of {sizes.big_deals:,} deals in {time.perf_counter() - started:.1f} s", flush=True)
    backfill_scenario(world, big, sizes.big_deals, sizes.weeks, table)
    print("backfill scenario done", flush=True)
    if kill:
        kill_scenario(world, big, sizes.weeks, table)
        print("kill scenario done", flush=True)
    scale_scenario(world, sizes.tick_tenants, sizes.repeats, creation, table)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sizes (a smoke run of every scenario)")
    parser.add_argument("--no-kill", action="store_true", help="skip the kill scenario (waits on run monitoring)")
    args = parser.parse_args()
    warnings.simplefilter("ignore")
    sizes = QUICK if args.quick else Sizes()
    world = new_world(os.environ.get("DYNO_DATABASE_URL") or DEFAULT_SERVER)
    table = Table()
    print(
        f"databases {world.report_db}, {world.dagster_db} on {world.server.render_as_string(hide_password=True)}; "
        f"DAGSTER_HOME {world.home}",
        flush=True,
    )
    try:
        create_databases(world)
        run_scenarios(world, sizes, not args.no_kill, table)
    finally:
        if table.rows:
            table.print()
        try:
            leftover = stop_dagster(world)
            print(
                f"dagster dev stopped; {len(leftover)} of its processes outlived it and were killed"
                f"{': ' if leftover else ''}{'; '.join(leftover)}",
                flush=True,
            )
        finally:
            drop_databases(world)
            shutil.rmtree(world.home, ignore_errors=True)
            print("both databases dropped, DAGSTER_HOME removed", flush=True)


if __name__ == "__main__":
    main()
