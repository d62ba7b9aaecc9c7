"""The project's dagster.yaml storage keeps its connections (real PostgreSQL, a throwaway Dagster storage database).

Without the pool, dagster-postgres opens a connection per stored event: this counts the
connections the event log opens while storing events, in the instance a run worker
rebuilds from the instance's ref.
"""

import shutil
from pathlib import Path

import pytest
from dagster import AssetKey, AssetMaterialization, DagsterInstance
from sqlalchemy import event

from dyno_reports.dagster_defs.instance_storage import POOL_SIZE, PooledPostgresStorage
from dyno_reports.storage import db

PROJECT = Path(__file__).resolve().parents[1]
EVENTS = 20


@pytest.fixture
def instance(tmp_path, database_factory, monkeypatch):
    storage_url = db.psycopg2_url(database_factory("dagster_storage"))
    monkeypatch.setenv("DAGSTER_POSTGRES_URL", storage_url.render_as_string(hide_password=False))
    shutil.copyfile(PROJECT / "dagster.yaml", tmp_path / "dagster.yaml")
    with DagsterInstance.from_config(str(tmp_path)) as instance:
        yield instance


def test_the_project_storage_is_the_pooled_one_also_in_a_run_workers_instance(instance):
    with DagsterInstance.from_ref(instance.get_ref()) as rebuilt:  # what a run worker does
        for one in (instance, rebuilt):
            assert isinstance(one.get_ref().storage, PooledPostgresStorage)
            engine = one.event_log_storage._engine  # type: ignore[attr-defined]
            assert engine.pool.size() == POOL_SIZE and engine.pool._pre_ping


def test_storing_events_reuses_the_kept_connections(instance):
    connects = []
    event.listen(instance.event_log_storage._engine, "connect", lambda *_: connects.append(1))  # type: ignore[attr-defined]
    for i in range(EVENTS):
        instance.report_runless_asset_event(AssetMaterialization(asset_key="probe", metadata={"i": i}))
    stored = instance.fetch_materializations(AssetKey("probe"), limit=EVENTS + 1).records
    assert len(stored) == EVENTS
    assert len(connects) <= POOL_SIZE
