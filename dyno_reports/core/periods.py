"""Report windows `[period_start, period_end)` and what of them needs no calendar: the supported range of
instants, UTC midnight today, and the grain read in UTC.

A run's window is resolved in its tenant's calendar (run_window.py, on tenant_calendar.py and local_time.py:
bounds as given, the default window, whole periods, the grain read in local time); the default calendar, UTC,
gives exactly the readings of this module.

Every bound lies in `[EARLIEST, LATEST]` = 1900-01-01 .. 9000-01-01 UTC. Python's
datetime ends at year 9999 and starts at year 1, so an offset (+14:00 .. -12:00)
converted to UTC, the grain (start + a quarter) or a default window can step out
of it near either end, and so could the FAILED header that records a run. The
bounds keep every computation at least a millennium inside what Python,
PostgreSQL's timestamptz (4713 BC .. 294276 AD) and the reports' date arithmetic
(intervals between a bound and history rows, `-infinity` for no start) can
represent; they are far wider than any CRM history.
"""

from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta

from dateutil.relativedelta import relativedelta

from dyno_reports.core.errors import InputError, shown

GRAINS = ("week", "month", "quarter", "custom", "unbounded")
EARLIEST = datetime(1900, 1, 1, tzinfo=UTC)
LATEST = datetime(9000, 1, 1, tzinfo=UTC)
SUPPORTED = f"{EARLIEST.date().isoformat()} .. {LATEST.date().isoformat()} UTC"


@dataclass(frozen=True)
class Window:
    """A resolved window: `start` may be None (no lower bound), `end` is always known."""

    start: datetime | None
    end: datetime

    def __post_init__(self) -> None:
        if self.end.tzinfo is None or (self.start is not None and self.start.tzinfo is None):
            raise ValueError("window bounds must be timezone-aware")
        if self.start is not None and self.end <= self.start:
            raise InputError(f"period end {self.end.isoformat()} must be after period start {self.start.isoformat()}")

    @property
    def grain(self) -> str:
        return grain_of(self.start, self.end)


def check_bounds(instant: datetime, what: str, raw: object = None) -> datetime:
    """`instant` when it lies in `[EARLIEST, LATEST]`, else InputError (quoting `raw` when given).
    A naive `instant` passes through: `Window` refuses it."""
    if instant.tzinfo is not None and not EARLIEST <= instant <= LATEST:
        given = shown(raw) if raw is not None else instant.isoformat()
        raise InputError(f"{what} {given} is outside the supported range {SUPPORTED}")
    return instant


def start_of_today(now: datetime | None = None) -> datetime:
    """Today 00:00 UTC (a tenant's today: TenantCalendar.start_of_today)."""
    current = (now or datetime.now(UTC)).astimezone(UTC)
    return datetime.combine(current.date(), time(), tzinfo=UTC)


def grain_of(start: datetime | None, end: datetime) -> str:
    """The methodology's reading of a window in UTC (the default calendar's; a run records its grain read in
    its tenant's calendar, TenantCalendar.grain_of): `week` when it spans exactly 7 days, `month` /
    `quarter` when exactly one / three calendar months, `unbounded` without a start, else `custom`."""
    if start is None:
        return "unbounded"
    if end == start + timedelta(days=7):
        return "week"
    if end == start + relativedelta(months=1):
        return "month"
    if end == start + relativedelta(months=3):
        return "quarter"
    return "custom"
