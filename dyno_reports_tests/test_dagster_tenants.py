"""The tenant partitions follow crm.tenant: the tenant sensor and `sync_tenants` add and remove them.

Real PostgreSQL (a throwaway migrated database), a temporary Dagster instance; the
sensor is evaluated with `build_sensor_context` and its requests applied as the
daemon applies them.
"""

import uuid

import pytest
from dagster import DeleteDynamicPartitionsRequest, SensorResult, SkipReason, build_sensor_context
from sqlalchemy import delete, insert, select

from dyno_reports.dagster_defs.resources import ReportDatabase
from dyno_reports.dagster_defs.tenants import sync_tenants, tenant_partitions_sensor
from dyno_reports.storage.tables import report_run, tenant
from dyno_reports_tests.conftest import url_string
from dyno_reports_tests.support.dagster import instance_with_tenants
from dyno_reports_tests.support.runs import commit, small_tenants, week


@pytest.fixture(scope="module")
def tenants(engine) -> list[str]:
    return small_tenants(engine, 3)


@pytest.fixture
def url(database_url, monkeypatch) -> str:
    monkeypatch.setenv("DYNO_DAGSTER_START_DATE", "2025-01-01")
    return url_string(database_url)


@pytest.fixture
def instance(tenants):
    with instance_with_tenants(*tenants) as instance:
        yield instance


def add_tenant(engine) -> str:
    tenant_id = str(uuid.uuid4())
    with engine.begin() as conn:
        conn.execute(insert(tenant).values(tenant_id=tenant_id, name=f"tenant {tenant_id[:8]}"))
    return tenant_id


def remove_tenant(engine, tenant_id: str) -> None:
    with engine.begin() as conn:
        conn.execute(delete(tenant).where(tenant.c.tenant_id == tenant_id))


def test_the_tenant_sensor_removes_gone_tenants_and_adds_new_ones_in_one_tick(url, engine, tenants, instance):
    gone = add_tenant(engine)
    instance.add_dynamic_partitions("tenant", [gone])
    kept_run = commit(engine, gone, week(50), "a-dagster-run")
    remove_tenant(engine, gone)
    new = add_tenant(engine)
    try:
        context = build_sensor_context(instance=instance, resources={"dyno_db": ReportDatabase(database_url=url)})
        result = tenant_partitions_sensor(context)

        assert isinstance(result, SensorResult)
        added, removed = result.dynamic_partitions_requests
        assert list(added.partition_keys) == [new] and added.partitions_def_name == "tenant"
        assert isinstance(removed, DeleteDynamicPartitionsRequest) and list(removed.partition_keys) == [gone]
        instance.add_dynamic_partitions("tenant", [new])  # what the daemon does with the requests
        instance.delete_dynamic_partition("tenant", gone)
        assert instance.get_dynamic_partitions("tenant") == [*tenants, new]
        assert isinstance(tenant_partitions_sensor(context), SkipReason)
        with engine.connect() as conn:  # the gone tenant's runs stay
            assert conn.execute(select(report_run.c.status).where(report_run.c.run_id == kept_run)).scalar_one()
    finally:
        remove_tenant(engine, new)


def test_sync_tenants_removes_gone_tenants_and_says_so(url, engine, tenants, instance):
    gone = str(uuid.uuid4())  # registered, never (or no longer) in crm.tenant
    instance.add_dynamic_partitions("tenant", [gone])

    changes = sync_tenants(engine, instance)

    assert (changes.added, changes.removed) == ([], [gone])
    assert changes.describe() == "0 tenant partition(s) added, 1 removed (tenants gone from crm.tenant)"
    assert instance.get_dynamic_partitions("tenant") == tenants


def test_an_empty_crm_tenant_removes_no_partition(url, instance, database_factory):
    from sqlalchemy import create_engine

    from dyno_reports.storage import migrate

    empty = create_engine(database_factory("empty_crm"))
    try:
        migrate.upgrade(empty)
        changes = sync_tenants(empty, instance)
    finally:
        empty.dispose()
    assert changes.removed == [] and changes.source_empty
    assert (
        changes.describe()
        == "0 tenant partition(s) added, crm.tenant is empty, none removed (tenants gone from crm.tenant)"
    )
    assert len(instance.get_dynamic_partitions("tenant")) == 3
