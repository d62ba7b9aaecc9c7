"""Partition keys and tenants' periods: the one mapping, both ways, for every part of the Dagster layer.

A key `<slot>|<tenant>` names a slot every tenant shares, resolved in the tenant's calendar
(`TenantCalendar.slot_period`, docs/definitions.md "Periods in the tenant's calendar"): a weekly slot
`2025-06-02` is the tenant's week containing that local date (a Sunday-start tenant: 2025-06-01 to
2025-06-08 local), a monthly slot `2025-06-01` its local June, a quarterly slot `FY2026-Q1` its fiscal quarter
of that label. Back, a tenant's period is the slot `slot_key` names: the Monday inside its week, the first day
of its month, its quarter's label. The asset body, the IO manager's metadata, the reconciliation, the CLI-runs
sensor, `load_input` and the schedules all go through `targets_of` / `target_of` and `slot_key`.

The calendars of a run's tenants are read in one query (`calendars_of`). A tenant missing from crm.tenant
(or not a UUID) resolves in the default calendar (UTC, Monday, January): the run path then refuses it, as
before, and its FAILED header records that window.
"""

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import cache

from sqlalchemy import Connection, select

from dyno_reports.core import config, local_time, periods
from dyno_reports.core.errors import InputError
from dyno_reports.core.tenant_calendar import Period, TenantCalendar
from dyno_reports.dagster_defs.partitions import MULTI_KEY_SEPARATOR
from dyno_reports.reports.option_specs import canonical_uuid
from dyno_reports.storage.tables import tenant

DEFAULT_CALENDAR = TenantCalendar()


@dataclass(frozen=True)
class PartitionTarget:
    """What one partition means: a tenant, its calendar and the period of that calendar the key names."""

    partition_key: str
    tenant_id: str
    cadence: str
    calendar: TenantCalendar
    period: Period

    @property
    def period_start(self) -> datetime:
        return self.period.start

    @property
    def period_end(self) -> datetime:
        return self.period.end

    @property
    def window(self) -> periods.Window:
        return self.period.window

    def described(self) -> str:
        """The local period the key stands for: `week of 2025-06-02 (Australia/Sydney)`."""
        return self.calendar.describe(self.period)

    def closed_at(self, at: datetime) -> bool:
        """Whether the period had closed in the tenant's zone at `at` (its end <= `at`)."""
        return self.period.end <= at

    def due_at(self, at: datetime) -> bool:
        """Whether the partition may run at `at`: its period closed at least the CRM's longest write before, so
        its run is final (its end at or before its K: docs/definitions.md, "As known at")."""
        return self.closed_at(at - config.crm_max_write())

    def too_early(self, at: datetime) -> str:
        """Why the partition cannot run at `at`: its period has not closed for the tenant, or closed less than
        the CRM's longest write ago."""
        local_end = local_time.wall_clock(self.period.end, self.calendar.zone).isoformat(" ", "minutes")
        closes = f"{local_end} {self.calendar.time_zone} ({self.period.end.isoformat()})"
        now = at.astimezone(self.period.end.tzinfo).replace(microsecond=0).isoformat()
        if not self.closed_at(at):
            why = f"has not closed; it closes at {closes}, after now ({now})"
        else:
            due = (self.period.end + config.crm_max_write()).isoformat()
            why = (
                f"closed at {closes}, less than the CRM's longest write (DYNO_CRM_MAX_WRITE_SECONDS) before now "
                f"({now}): rows dated before its end may still be written; it runs from {due}"
            )
        return f"too early: the {self.described()} of tenant {self.tenant_id} {why}; nothing was run or recorded for it"


def split_key(partition_key: str) -> tuple[str, str]:
    """(slot, tenant) of a key `<slot>|<tenant>` (dimensions in name order: period, tenant)."""
    slot, _, tenant_id = str(partition_key).partition(MULTI_KEY_SEPARATOR)
    return slot, tenant_id


@cache
def _calendar(time_zone: str, week_start: int, start_month: int, named_by: str) -> TenantCalendar:
    return TenantCalendar(time_zone, week_start, start_month, named_by)


def calendars_of(conn: Connection, tenant_ids: Iterable[str]) -> dict[str, TenantCalendar]:
    """tenant_id -> its calendar, for the tenants of crm.tenant among `tenant_ids`: one query.

    A calendar this Python cannot read (a zone its tzdata does not know) is left out: the default stands
    for it and the run path refuses the tenant."""
    wanted = sorted({parsed for t in tenant_ids if (parsed := canonical_uuid(t)) is not None})
    if not wanted:
        return {}
    columns = (tenant.c.time_zone, tenant.c.week_start, tenant.c.fiscal_year_start_month, tenant.c.fiscal_year_named_by)
    found: dict[str, TenantCalendar] = {}
    for row in conn.execute(select(tenant.c.tenant_id, *columns).where(tenant.c.tenant_id.in_(wanted))):
        try:
            found[str(row.tenant_id)] = _calendar(*row[1:])
        except InputError:
            continue
    return found


def target_of(cadence: str, partition_key: str, calendar: TenantCalendar) -> PartitionTarget:
    """The tenant's period the key names in `calendar`; InputError for a key that names no slot."""
    slot, tenant_id = split_key(partition_key)
    return PartitionTarget(str(partition_key), tenant_id, cadence, calendar, calendar.slot_period(cadence, slot))


def targets_of(conn: Connection, cadence: str, partition_keys: Iterable[str]) -> dict[str, PartitionTarget]:
    """Every key's target, the tenants' calendars read in one query."""
    keys = [str(key) for key in partition_keys]
    calendars = calendars_of(conn, (split_key(key)[1] for key in keys))
    return {key: target_of(cadence, key, calendars.get(split_key(key)[1], DEFAULT_CALENDAR)) for key in keys}


def slot_key(cadence: str, period: Period) -> str:
    """The slot that names `period` of its tenant: the Monday inside a week, a month's first day, a quarter's
    label (`target_of` of it gives `period` back)."""
    if cadence == "week":
        return (period.first_day + timedelta(days=(1 - period.first_day.isoweekday()) % 7)).isoformat()
    if cadence == "month":
        return period.first_day.isoformat()
    return period.label


def slot_of_window(
    cadence: str, calendar: TenantCalendar, start: datetime | None, end: datetime
) -> tuple[str, Period] | None:
    """The slot whose period is exactly `[start, end)` in `calendar`, and that period; None for any other
    window (not one whole period of the cadence)."""
    if start is None:
        return None
    try:
        period = calendar.period_at(cadence, start)
    except InputError:
        return None
    if (period.start, period.end) != (start, end):
        return None
    return slot_key(cadence, period), period
