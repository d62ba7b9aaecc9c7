"""The partition budget: what 1,000 registered tenants cost the Dagster UI and a schedule tick.

    python -m benchmarks.partition_budget [--tenants 1000] [--start 2024-01-01 --start rolling] [--repeats 3] [--ui]

For each first period (`DYNO_DAGSTER_START_DATE`, `rolling` = the default), in a
throwaway Dagster storage database on the configured server (DYNO_DATABASE_URL,
else the embedded one): register the tenants as partitions, record one
materialised week and month per tenant, start `dagster-webserver` on loopback and
time, as medians over --repeats, the GraphQL queries the asset page and the
backfill dialog depend on (partition keys, partition status ranges, partition
counts) for the weekly and the monthly asset, plus the weekly schedule's tick of
the last Monday 00:00 UTC evaluated in-process (the throwaway database is also
migrated; its crm.tenant is empty, so every tenant is read in the default
calendar and closes its week then). With --ui, also the asset page and the backfill dialog in
headless Chromium (`benchmarks/ui_timing.py`: needs selenium and Debian's
chromium + chromium-driver). Prints one row per (start, asset).
"""

import argparse
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
import warnings
from datetime import UTC, datetime, timedelta
from pathlib import Path

import requests
from dagster import AssetMaterialization, DagsterInstance, build_schedule_context
from sqlalchemy import create_engine

from dyno_reports.dagster_defs import partitions
from dyno_reports.storage import db, migrate

PROJECT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
ASSETS = {"pipeline_overview": ("week", "2025-06-02"), "win_loss": ("month", "2025-06-01")}
KEYS_QUERY = """query($k: AssetKeyInput!) { assetNodeOrError(assetKey: $k) { ... on AssetNode {
  partitionKeysByDimension { name partitionKeys } } } }"""
STATUS_QUERY = """query($k: AssetKeyInput!) { assetNodeOrError(assetKey: $k) { ... on AssetNode {
  assetPartitionStatuses { ... on MultiPartitionStatuses { primaryDimensionName ranges {
    primaryDimStartKey primaryDimEndKey
    secondaryDim { ... on DefaultPartitionStatuses { materializedPartitions } } } } } } } }"""
STATS_QUERY = """query($k: AssetKeyInput!) { assetNodeOrError(assetKey: $k) { ... on AssetNode {
  partitionStats { numMaterialized numPartitions numFailed numMaterializing } } } }"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def prepare_home(home: Path, storage_env: dict[str, str], tenants: list[str]) -> None:
    home.joinpath("dagster.yaml").write_text((PROJECT / "dagster.yaml").read_text())
    os.environ.update(storage_env, DAGSTER_HOME=str(home))
    with DagsterInstance.get() as instance:
        instance.add_dynamic_partitions("tenant", tenants)
        for asset, (_cadence, period) in ASSETS.items():
            for tenant in tenants:
                instance.report_runless_asset_event(
                    AssetMaterialization(asset_key=asset, partition=f"{period}|{tenant}", metadata={"bench": 1})
                )


def start_webserver(env: dict[str, str]) -> tuple[subprocess.Popen, str]:
    port = free_port()
    server = subprocess.Popen(
        [BIN / "dagster-webserver", "-h", "127.0.0.1", "-p", str(port), "-w", str(PROJECT / "workspace.yaml")],
        env=env,
        cwd=env["DAGSTER_HOME"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}/graphql"
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        try:
            reply = requests.post(
                url, json={"query": STATS_QUERY, "variables": {"k": {"path": ["win_loss"]}}}, timeout=60
            )
            if reply.ok and reply.json().get("data", {}).get("assetNodeOrError", {}).get("partitionStats"):
                return server, url
        except requests.ConnectionError:
            pass
        time.sleep(0.5)
    server.kill()
    raise RuntimeError("the webserver did not answer")


def timed_query(url: str, query: str, asset: str, repeats: int) -> tuple[float, dict]:
    times, reply = [], {}
    for _ in range(repeats):
        started = time.perf_counter()
        reply = requests.post(url, json={"query": query, "variables": {"k": {"path": [asset]}}}, timeout=600).json()
        times.append(time.perf_counter() - started)
        assert "errors" not in reply, reply
    return statistics.median(times), reply["data"]["assetNodeOrError"]


def tick_seconds(repeats: int, report_url: str) -> tuple[float, int]:
    """The weekly schedule's tick at the last Monday 00:00 UTC, when the tenants' weeks close (they are not in
    the migrated, empty crm.tenant at `report_url`: the default calendar, UTC)."""
    from dyno_reports.dagster_defs.resources import ReportDatabase
    from dyno_reports.definitions import build_definitions

    repository = build_definitions().get_repository_def()
    schedule = repository.get_schedule_def("weekly_reports_schedule")
    today = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    monday = today - timedelta(days=today.weekday())
    times, runs = [], 0
    with DagsterInstance.get() as instance:
        for _ in range(repeats):
            started = time.perf_counter()
            with build_schedule_context(
                instance=instance,
                repository_def=repository,
                scheduled_execution_time=monday,
                resources={"dyno_db": ReportDatabase(database_url=report_url)},
            ) as context:
                runs = len(list(schedule.evaluate_tick(context).run_requests))
            times.append(time.perf_counter() - started)
    return statistics.median(times), runs


def ui_cells(url: str, asset: str, ui: bool) -> str:
    if not ui:
        return ""
    from benchmarks.ui_timing import time_asset_page

    timed = time_asset_page(url.removesuffix("/graphql"), asset)
    return f" {timed['page_s']:.2f} | {timed['dialog_s']:.2f} | {timed['select_all_s']:.2f} ({timed['selected']}) |"


def measure(start: str, tenants: list[str], repeats: int, ui: bool = False) -> list[str]:
    server_url = db.resolve_database_url()
    name = f"dagster_budget_{uuid.uuid4().hex[:8]}"
    db.ensure_database(server_url, name)
    env_start = {} if start == "rolling" else {partitions.START_DATE_ENV: start}
    os.environ.pop(partitions.START_DATE_ENV, None)
    os.environ.update(env_start)
    rows = []
    try:
        with tempfile.TemporaryDirectory() as home:
            storage = {
                "DAGSTER_POSTGRES_URL": db.psycopg2_url(server_url)
                .set(database=name)
                .render_as_string(hide_password=False)
            }
            prepare_home(Path(home), storage, tenants)
            report_url = server_url.set(database=name)
            report_engine = create_engine(report_url)
            migrate.upgrade(report_engine)  # crm.tenant (empty) beside Dagster's tables: the tick reads calendars
            report_engine.dispose()
            tick, runs = tick_seconds(repeats, report_url.render_as_string(hide_password=False))
            server, url = start_webserver({**os.environ})
            try:
                for asset in ASSETS:
                    keys_s, keys = timed_query(url, KEYS_QUERY, asset, repeats)
                    status_s, _ = timed_query(url, STATUS_QUERY, asset, repeats)
                    stats_s, stats = timed_query(url, STATS_QUERY, asset, repeats)
                    periods = len(keys["partitionKeysByDimension"][0]["partitionKeys"])
                    rows.append(
                        f"| {start} ({partitions.start_date()}) | {asset} | {periods} x {len(tenants)} = "
                        f"{stats['partitionStats']['numPartitions']:,} | {keys_s:.2f} | {status_s:.2f} | "
                        f"{stats_s:.2f} | {tick:.2f} ({runs} runs) |" + ui_cells(url, asset, ui)
                    )
            finally:
                server.terminate()
                server.wait(timeout=30)
    finally:
        engine = create_engine(server_url.set(database="postgres"), isolation_level="AUTOCOMMIT")
        with engine.connect() as conn:
            conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        engine.dispose()
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tenants", type=int, default=1000)
    parser.add_argument("--start", action="append", help="ISO date or 'rolling' (repeatable)")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--ui", action="store_true", help="also time the asset page in headless Chromium")
    args = parser.parse_args()
    warnings.simplefilter("ignore")
    tenants = [str(uuid.UUID(int=i + 1)) for i in range(args.tenants)]
    ui_header = " page s | dialog s | select all s |" if args.ui else ""
    print("| first period | asset | partitions | keys s | status s | stats s | weekly tick s |" + ui_header)
    print("|---|---|---|---|---|---|---|" + "---|" * (3 if args.ui else 0))
    for start in args.start or ["2024-01-01", "rolling"]:
        for row in measure(start, tenants, args.repeats, args.ui):
            print(row, flush=True)


if __name__ == "__main__":
    main()
