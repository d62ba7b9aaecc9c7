"""A run's window in its tenant's calendar (docs/definitions.md, "Periods in the tenant's calendar"): the
calendar read with the tenant, the window resolved from what was asked, and a recorded window read back.

- `read_calendar`: the tenant's calendar in the statement that finds the tenant (None: no such tenant).
- `resolve_window`: bounds as given (an ISO date is local midnight, a timestamp without offset is local, one
  with an offset or a datetime is an instant), the default window (the configured days up to today 00:00
  local), a start alone (up to today 00:00 local), or a whole period named by grain and label.
- `local_reading`: how `show` prints a recorded window: local dates, the zone, the period's label.
"""

from datetime import datetime
from uuid import UUID

from sqlalchemy import Connection, select

from dyno_reports.core import config, local_time, periods
from dyno_reports.core.errors import ConfigError, InputError, shown
from dyno_reports.core.tenant_calendar import SLOT_CADENCES, TenantCalendar
from dyno_reports.storage.tables import tenant

# The grains a whole period may be asked by (`run --grain`), with an example label of each.
RUN_GRAINS = SLOT_CADENCES
LABEL_EXAMPLES = "a date of the week 2025-06-02, a month 2025-06, a fiscal quarter FY2026-Q1"


def read_calendar(conn: Connection, tenant_id: UUID) -> TenantCalendar | None:
    """The tenant's calendar (crm.tenant's four columns), or None when the tenant is not in crm.tenant."""
    found = conn.execute(
        select(
            tenant.c.time_zone, tenant.c.week_start, tenant.c.fiscal_year_start_month, tenant.c.fiscal_year_named_by
        ).where(tenant.c.tenant_id == tenant_id)
    ).first()
    return None if found is None else TenantCalendar(*found)


def resolve_window(
    calendar: TenantCalendar,
    period_start: str | datetime | None,
    period_end: str | datetime | None,
    *,
    grain: str | None = None,
    period: str | None = None,
    now: datetime,
) -> periods.Window:
    """The window asked for, in `calendar`: a whole period (`grain` and `period` together, without bounds),
    else the bounds, a missing end being today 00:00 local (the default window when both are missing).
    InputError for what cannot be resolved; ConfigError for a default window out of the supported range."""
    if grain is not None or period is not None:
        return _whole_period(calendar, grain, period, asked_bounds=(period_start, period_end))
    start = _bound(calendar, period_start, "period start")
    end = _bound(calendar, period_end, "period end")
    if end is None and start is None:
        try:
            days = config.default_window().days
        except OverflowError:  # more days than a timedelta holds
            raise ConfigError(
                f"DYNO_DEFAULT_WINDOW_DAYS reaches out of the supported range {periods.SUPPORTED}"
            ) from None
        return calendar.default_window(days, now)
    return periods.Window(start, end if end is not None else calendar.start_of_today(now))


def _whole_period(
    calendar: TenantCalendar, grain: str | None, label: str | None, asked_bounds: tuple[object, object]
) -> periods.Window:
    if any(bound is not None for bound in asked_bounds):
        raise InputError("--grain and --period pick a whole period: give them without --period-start and --period-end")
    if grain is None:
        raise InputError(f"--period needs --grain ({', '.join(RUN_GRAINS)})")
    if label is None:
        raise InputError(f"--grain needs --period: the period's label ({LABEL_EXAMPLES})")
    if grain not in RUN_GRAINS:
        raise InputError(f"--grain must be one of {', '.join(RUN_GRAINS)}, got {shown(grain)}")
    return calendar.parse_period(grain, label).window


def _bound(calendar: TenantCalendar, value: str | datetime | None, what: str) -> datetime | None:
    """A bound as given: None, a datetime (an instant; a naive one is refused by Window), or text."""
    if value is None or isinstance(value, datetime):
        return None if value is None else periods.check_bounds(value, what)
    return calendar.parse_bound(value, what)


def local_reading(calendar: TenantCalendar, start: datetime | None, end: datetime, grain: str) -> str:
    """`2025-07-01 to 2025-10-01 Australia/Sydney  FY2026-Q1 (quarter)`: the bounds as local dates (a local
    date and time where a bound is not a local midnight), the zone, and the label of the calendar's period
    when the window is exactly one (a quarter not aligned on the fiscal year has none)."""
    span = f"{_local_text(calendar, start) if start else '(no start)'} to {_local_text(calendar, end)}"
    label = ""
    if start is not None and grain in RUN_GRAINS:
        try:
            found = calendar.period_at(grain, start)
            label = f"{found.label} " if (found.start, found.end) == (start, end) else ""
        except InputError:  # a period reaching out of the supported range: no label
            pass
    return f"{span} {calendar.time_zone}  {label}({grain})"


def _local_text(calendar: TenantCalendar, instant: datetime) -> str:
    """A local midnight as its date, any other instant as its local date and time."""
    day = calendar.local_date(instant)
    try:
        if instant == calendar.local_midnight(day):
            return day.isoformat()
    except InputError:  # a midnight out of the supported range: not this instant's
        pass
    return local_time.wall_clock(instant, calendar.zone).isoformat(sep=" ")
