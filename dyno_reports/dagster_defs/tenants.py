"""Tenants as `tenant` dynamic partitions: a sensor and `dyno-reports sync-tenants` keep them equal to crm.tenant.

Both register every crm.tenant that is not a partition yet and remove the partitions
whose tenant is gone from crm.tenant, so an all-tenant backfill does not fail on
them. A removed tenant's `report_run` rows and its Dagster materialisation history
stay; only the partition goes (a tenant that comes back is registered again, last).
An empty crm.tenant removes nothing: a wrong database is likelier than every tenant gone.

Registration order is what a partition range follows, so the schedules' batches
(`schedules.py`) are contiguous runs of it: new tenants are registered in the
order of the UTC instant their current month closes, then their current week,
then by fiscal year (start month modulo 3, start month, naming), then id
(`close_order`). One zone's tenants, and within them one week start's, then come
together, and a zone's close is a few runs. Tenants registered earlier keep their
places (Dagster has no reordering of dynamic partitions): their batches are
shorter, never wrong.
"""

import os
from dataclasses import dataclass
from datetime import UTC, datetime

from dagster import (
    AddDynamicPartitionsRequest,
    DagsterInstance,
    DefaultSensorStatus,
    DeleteDynamicPartitionsRequest,
    SensorEvaluationContext,
    SensorResult,
    SkipReason,
    sensor,
)
from sqlalchemy import Engine, select

from dyno_reports.core.errors import ConfigError
from dyno_reports.core.tenant_calendar import TenantCalendar
from dyno_reports.dagster_defs.partitions import TENANT, tenant_partitions
from dyno_reports.dagster_defs.resources import ReportDatabase
from dyno_reports.dagster_defs.slots import DEFAULT_CALENDAR, calendars_of
from dyno_reports.storage.tables import tenant


def close_order(calendar: TenantCalendar, at: datetime) -> tuple:
    """Where a tenant with `calendar` goes among those registered at `at`: by the instant its current month
    closes, then its current week, then its fiscal year (tenants closing one quarter label together)."""
    month_end, week_end = calendar.period_at("month", at).end, calendar.period_at("week", at).end
    start_month = calendar.fiscal_year_start_month
    return month_end, week_end, start_month % 3, start_month, calendar.fiscal_year_named_by


def source_tenants(engine: Engine, at: datetime | None = None) -> list[str]:
    """Every crm.tenant id, in registration order (`close_order` at `at`, then id)."""
    with engine.connect() as conn:
        ids = [str(t) for t in conn.execute(select(tenant.c.tenant_id)).scalars()]
        calendars = calendars_of(conn, ids)
    at = at or datetime.now(UTC)
    orders = {calendar: close_order(calendar, at) for calendar in {*calendars.values(), DEFAULT_CALENDAR}}
    return sorted(ids, key=lambda t: (orders[calendars.get(t, DEFAULT_CALENDAR)], t))


@dataclass(frozen=True)
class TenantChanges:
    """The `tenant` partitions to add (in crm.tenant, not registered) and to remove (registered, gone)."""

    added: list[str]
    removed: list[str]
    source_empty: bool

    def describe(self) -> str:
        removed = "crm.tenant is empty, none removed" if self.source_empty else f"{len(self.removed)} removed"
        return f"{len(self.added)} tenant partition(s) added, {removed} (tenants gone from crm.tenant)"


def tenant_changes(engine: Engine, instance: DagsterInstance, at: datetime | None = None) -> TenantChanges:
    """What to add (in registration order, `close_order` at `at`, default now) and remove."""
    source = source_tenants(engine, at)
    known = instance.get_dynamic_partitions(TENANT)
    in_source, registered = set(source), set(known)
    added = [t for t in source if t not in registered]
    removed = [t for t in known if t not in in_source] if source else []
    return TenantChanges(added, removed, source_empty=not source)


def sync_tenants(engine: Engine, instance: DagsterInstance, at: datetime | None = None) -> TenantChanges:
    """Make the instance's `tenant` partitions crm.tenant's: add the missing, remove the gone."""
    changes = tenant_changes(engine, instance, at)
    if changes.added:
        instance.add_dynamic_partitions(TENANT, changes.added)
    for key in changes.removed:  # Dagster deletes dynamic partitions one at a time
        instance.delete_dynamic_partition(TENANT, key)
    return changes


def sync_tenants_from_environment() -> TenantChanges:
    """For the CLI: the configured database and the instance of `DAGSTER_HOME`."""
    from dyno_reports.storage import db

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
    description="Registers every crm.tenant as a tenant partition and removes the partitions of tenants gone from it.",
)
def tenant_partitions_sensor(context: SensorEvaluationContext, dyno_db: ReportDatabase):
    changes = tenant_changes(dyno_db.engine(), context.instance)
    requests: list[AddDynamicPartitionsRequest | DeleteDynamicPartitionsRequest] = []
    if changes.added:
        requests.append(tenant_partitions.build_add_request(changes.added))
    if changes.removed:
        requests.append(tenant_partitions.build_delete_request(changes.removed))
    if not requests:
        return SkipReason(
            "crm.tenant is empty: no partition removed"
            if changes.source_empty
            else "the tenant partitions are crm.tenant's"
        )
    context.log.info(changes.describe())
    return SensorResult(dynamic_partitions_requests=requests)
