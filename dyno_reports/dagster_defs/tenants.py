"""Tenants as `tenant` dynamic partitions: a sensor and `dyno-reports sync-tenants` register every crm.tenant."""

import os

from dagster import DagsterInstance, DefaultSensorStatus, SensorEvaluationContext, SensorResult, SkipReason, sensor
from sqlalchemy import Engine, select

from dyno_reports.dagster_defs.partitions import TENANT, tenant_partitions
from dyno_reports.dagster_defs.resources import ReportDatabase
from dyno_reports.errors import ConfigError
from dyno_reports.storage.tables import tenant


def source_tenants(engine: Engine) -> list[str]:
    with engine.connect() as conn:
        return sorted(str(t) for t in conn.execute(select(tenant.c.tenant_id)).scalars())


def missing_tenants(engine: Engine, instance: DagsterInstance) -> list[str]:
    known = set(instance.get_dynamic_partitions(TENANT))
    return [t for t in source_tenants(engine) if t not in known]


def sync_tenants(engine: Engine, instance: DagsterInstance) -> list[str]:
    """Add every crm.tenant missing from the instance's `tenant` partitions; returns the added keys."""
    added = missing_tenants(engine, instance)
    if added:
        instance.add_dynamic_partitions(TENANT, added)
    return added


def sync_tenants_from_environment() -> list[str]:
    """For the CLI: the configured database and the instance of `DAGSTER_HOME`."""
    from dyno_reports import db

    home = os.environ.get("DAGSTER_HOME")
    if not home or not os.path.isdir(home):
        raise ConfigError(
            f"DAGSTER_HOME must name an existing folder (the Dagster instance), got {home!r}; "
            "`make dev` uses .dyno/dagster_home"
        )
    with DagsterInstance.get() as instance:
        return sync_tenants(db.get_engine(), instance)


@sensor(
    name="tenant_partitions_sensor",
    minimum_interval_seconds=60,
    default_status=DefaultSensorStatus.RUNNING,
    description="Registers every crm.tenant as a tenant partition.",
)
def tenant_partitions_sensor(context: SensorEvaluationContext, dyno_db: ReportDatabase):
    new = missing_tenants(dyno_db.engine(), context.instance)
    if not new:
        return SkipReason("every crm.tenant is already a tenant partition")
    return SensorResult(dynamic_partitions_requests=[tenant_partitions.build_add_request(new)])
