"""Dagster as operators run it, on real PostgreSQL: the CLI path and the webserver's GraphQL API.

Subprocesses: `dyno-reports sync-tenants`, `dagster asset materialize` and
`dagster-webserver` on loopback, all sharing one temporary DAGSTER_HOME.
"""

import os
import socket
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path

import pytest
import requests
from dagster import AssetKey, DagsterInstance
from sqlalchemy import select

from dyno_reports.dagster_defs.cadences import report_assets_by_name
from dyno_reports.storage.tables import report_run
from dyno_reports_tests.conftest import url_string
from dyno_reports_tests.reference.pipeline_overview import expected
from dyno_reports_tests.support.facts import facts_by_key
from dyno_reports_tests.support.history import DEAL_IDS, PIPELINE_IDS, T0, TenantData, load

BIN = Path(sys.executable).parent
PROJECT = Path(__file__).resolve().parents[1]
KEY = "2025-06-02|{tenant}"


@pytest.fixture(scope="module")
def history(engine) -> TenantData:
    data = TenantData()
    lead, proposal, _won, _lost = data.add_pipeline(PIPELINE_IDS[0], ["open", "open", "won", "lost"])
    data.add_deal(DEAL_IDS[0], [(T0 - 3 * timedelta(days=1), lead, 100), (T0 + timedelta(days=1), proposal, 250)])
    load(engine, data)
    return data


@pytest.fixture(scope="module")
def tenant(history) -> str:
    return str(history.tenant_id)


@pytest.fixture(scope="module")
def dagster_env(database_url, tmp_path_factory) -> dict[str, str]:
    """DYNO_DATABASE_URL, an empty DAGSTER_HOME and a first period covering the test's week."""
    home = tmp_path_factory.mktemp("dagster_home")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DAGSTER_", "DYNO_"))}
    return {
        **env,
        "DYNO_DATABASE_URL": url_string(database_url),
        "DAGSTER_HOME": str(home),
        "DYNO_DAGSTER_START_DATE": "2025-01-01",
    }


def test_cli_sync_tenants_then_dagster_asset_materialize(dagster_env, engine, history, tenant):
    synced = subprocess.run(
        [BIN / "dyno-reports", "sync-tenants"], env=dagster_env, capture_output=True, text=True, timeout=60
    )
    assert synced.returncode == 0, synced.stderr
    assert synced.stdout.strip() == "1 tenant partition(s) added, 0 removed (tenants gone from crm.tenant)"
    again = subprocess.run(
        [BIN / "dyno-reports", "sync-tenants"], env=dagster_env, capture_output=True, text=True, timeout=60
    )
    assert again.stdout.strip() == "0 tenant partition(s) added, 0 removed (tenants gone from crm.tenant)"

    done = subprocess.run(
        [
            BIN / "dagster",
            "asset",
            "materialize",
            "-m",
            "dyno_reports.definitions",
            "--select",
            "pipeline_overview",
            "--partition",
            KEY.format(tenant=tenant),
        ],
        env=dagster_env,
        capture_output=True,
        text=True,
        timeout=120,
        cwd=PROJECT,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    with engine.connect() as conn:
        (header,) = conn.execute(select(report_run).where(report_run.c.tenant_id == tenant)).all()
    assert header.status == "SUCCEEDED" and header.dagster_run_id and header.period_start == T0
    assert facts_by_key(engine, "pipeline_overview", header.run_id) == expected(history, T0, T0 + timedelta(days=7))
    with DagsterInstance.from_config(dagster_env["DAGSTER_HOME"]) as instance:
        (event,) = instance.fetch_materializations(AssetKey("pipeline_overview"), limit=10).records
        assert event.event_log_entry.run_id == header.dagster_run_id
        assert event.asset_materialization.metadata["run_id"].value == str(header.run_id)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


ASSETS_QUERY = """
{ assetNodes { assetKey { path } groupName isPartitioned
    assetMaterializations(limit: 5) { partition runId metadataEntries { label ... on TextMetadataEntry { text } } } } }
"""


def test_webserver_lists_the_assets_and_the_materialisation(dagster_env, tenant):
    port = _free_port()
    server = subprocess.Popen(
        [BIN / "dagster-webserver", "-h", "127.0.0.1", "-p", str(port), "-w", str(PROJECT / "workspace.yaml")],
        env=dagster_env,
        cwd=PROJECT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        url = f"http://127.0.0.1:{port}/graphql"
        nodes = None
        deadline = time.monotonic() + 40
        while time.monotonic() < deadline:
            assert server.poll() is None, server.stderr.read().decode()[-3000:]
            try:
                reply = requests.post(url, json={"query": ASSETS_QUERY}, timeout=5).json()
                nodes = reply.get("data", {}).get("assetNodes")
                if nodes:
                    break
            except requests.ConnectionError:
                pass
            time.sleep(0.3)
        assert nodes, "no asset nodes from the webserver"
        by_key = {"/".join(n["assetKey"]["path"]): n for n in nodes}
        crm = {key for key in by_key if key.startswith("crm/")}  # the CRM's tables, external: lineage only
        assert crm == {f"crm/{name}" for name in ("tenant", "principal", "pipeline", "stage", "deal", "deal_history")}
        assert set(by_key) - crm == set(report_assets_by_name())  # a report per cadence: win_loss, win_loss_quarterly
        reports = [n for key, n in by_key.items() if key not in crm]
        assert all(n["groupName"] == "dyno_reports" and n["isPartitioned"] for n in reports)
        materialisations = by_key["pipeline_overview"]["assetMaterializations"]
        assert any(m["partition"] == KEY.format(tenant=tenant) for m in materialisations)
        labels = {e["label"] for m in materialisations for e in m["metadataEntries"]}
        assert {"run_id", "dagster/row_count", "deal_count", "preview"} <= labels
    finally:
        server.terminate()
        server.wait(timeout=15)
        server.stderr.close()
