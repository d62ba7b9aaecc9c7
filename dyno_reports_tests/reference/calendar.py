"""The tenant's calendar of docs/definitions.md ("Periods in the tenant's calendar") in plain Python, written
from that page, not from dyno_reports.core.tenant_calendar or local_time (it imports neither): zoneinfo for the
offsets, date arithmetic for the rest. Slow and simple: local midnight is found by walking forward in 10-minute
steps to the first instant whose local wall-clock time is at or after the one asked, then halving that step.

A period is a `RefPeriod`: its label and its UTC bounds. A calendar is `(time_zone, week_start,
fiscal_year_start_month, fiscal_year_named_by)`.
"""

import calendar
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

STEP = timedelta(minutes=10)
EARLIER_THAN_ANY_OFFSET = timedelta(hours=27)


@dataclass(frozen=True)
class RefCalendar:
    time_zone: str
    week_start: int
    fiscal_year_start_month: int
    fiscal_year_named_by: str

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.time_zone)


@dataclass(frozen=True)
class RefPeriod:
    label: str
    first_day: date
    end_day: date
    start: datetime
    end: datetime


def wall(instant: datetime, zone: ZoneInfo) -> datetime:
    return instant.astimezone(zone).replace(tzinfo=None)


def first_instant_at(local: datetime, zone: ZoneInfo) -> datetime:
    """The first instant whose local wall-clock time is at or after the naive `local`."""
    before = (local - EARLIER_THAN_ANY_OFFSET).replace(tzinfo=UTC)
    assert wall(before, zone) < local
    while wall(before + STEP, zone) < local:
        before += STEP
    low, high = before, before + STEP  # wall(low) < local <= wall(high)
    while high - low > timedelta(microseconds=1):
        middle = low + (high - low) // 2
        low, high = (low, middle) if wall(middle, zone) >= local else (middle, high)
    return high


def midnight(day: date, zone: ZoneInfo) -> datetime:
    """00:00 of `day`: the first instant whose local date is `day` or later."""
    return first_instant_at(datetime.combine(day, time()), zone)


def bound(raw: str, zone: ZoneInfo) -> datetime:
    """A bound as given: a date is local midnight, an offset is taken as given, no offset is local."""
    if len(raw) == 10:
        return midnight(date.fromisoformat(raw), zone)
    parsed = datetime.fromisoformat(raw.replace("Z", "+00:00"))
    return parsed.astimezone(UTC) if parsed.tzinfo else first_instant_at(parsed, zone)


def add_months(first: date, months: int) -> date:
    """The 1st of the month `months` after the month of `first`."""
    years, month = divmod(first.month - 1 + months, 12)
    return date(first.year + years, month + 1, 1)


def _period(cal: RefCalendar, label: str, first_day: date, end_day: date) -> RefPeriod:
    return RefPeriod(label, first_day, end_day, midnight(first_day, cal.zone), midnight(end_day, cal.zone))


def week(cal: RefCalendar, day: date) -> RefPeriod:
    first = day
    while first.isoweekday() != cal.week_start:
        first -= timedelta(days=1)
    return _period(cal, first.isoformat(), first, first + timedelta(days=7))


def month(cal: RefCalendar, day: date) -> RefPeriod:
    first = date(day.year, day.month, 1)
    return _period(cal, f"{first:%Y-%m}", first, add_months(first, 1))


def fiscal_year_start(cal: RefCalendar, day: date) -> date:
    this_year = date(day.year, cal.fiscal_year_start_month, 1)
    return this_year if this_year <= day else date(day.year - 1, cal.fiscal_year_start_month, 1)


def fiscal_year_name(cal: RefCalendar, start: date) -> str:
    """FY<year>: the calendar year of the fiscal year's first month ('start') or of its last month ('end')."""
    return f"FY{start.year if cal.fiscal_year_named_by == 'start' else add_months(start, 11).year}"


def fiscal_year(cal: RefCalendar, day: date) -> RefPeriod:
    start = fiscal_year_start(cal, day)
    return _period(cal, fiscal_year_name(cal, start), start, add_months(start, 12))


def fiscal_quarter(cal: RefCalendar, day: date) -> RefPeriod:
    """The n-th block of three months of the fiscal year containing `day`."""
    year_start = fiscal_year_start(cal, day)
    for n in (1, 2, 3, 4):
        first, end = add_months(year_start, 3 * (n - 1)), add_months(year_start, 3 * n)
        if first <= day < end:
            return _period(cal, f"{fiscal_year_name(cal, year_start)}-Q{n}", first, end)
    raise AssertionError("a fiscal year has four quarters")


PERIOD_OF = {"week": week, "month": month, "quarter": fiscal_quarter, "year": fiscal_year}


def period(cal: RefCalendar, grain: str, day: date) -> RefPeriod:
    return PERIOD_OF[grain](cal, day)


def fiscal_quarter_labelled(cal: RefCalendar, label: str) -> RefPeriod:
    """The fiscal quarter whose label is `label`, found among the quarters around the label's year."""
    year = int(label[2:6])
    for start_year in (year - 1, year, year + 1):
        for months in range(0, 12, 3):
            found = fiscal_quarter(cal, add_months(date(start_year, cal.fiscal_year_start_month, 1), months))
            if found.label == label:
                return found
    raise AssertionError(f"no quarter {label}")


def previous(cal: RefCalendar, grain: str, p: RefPeriod) -> RefPeriod:
    return period(cal, grain, p.first_day - timedelta(days=1))


def last_closed(cal: RefCalendar, grain: str, at: datetime) -> RefPeriod:
    """The latest period whose end is at or before `at`."""
    found = period(cal, grain, wall(at, cal.zone).date() + timedelta(days=2))
    while found.end > at:
        found = previous(cal, grain, found)
    return found


def periods_ending(cal: RefCalendar, grain: str, last: RefPeriod, count: int) -> list[RefPeriod]:
    found = [last]
    while len(found) < count:
        found.insert(0, previous(cal, grain, found[0]))
    return found


def add_calendar_months(local: datetime, months: int) -> datetime:
    """The same day and time `months` later, or that month's last day when the day does not exist."""
    years, month0 = divmod(local.month - 1 + months, 12)
    year, month_number = local.year + years, month0 + 1
    day = min(local.day, calendar.monthrange(year, month_number)[1])
    return local.replace(year=year, month=month_number, day=day)


def reading(instant: datetime, zone: ZoneInfo) -> datetime:
    """Local wall-clock time; a local midnight reads 00:00 of its date even where 00:00 fell in a gap."""
    day = wall(instant, zone).date()
    return datetime.combine(day, time()) if instant == midnight(day, zone) else wall(instant, zone)


def grain(cal: RefCalendar, start: datetime | None, end: datetime) -> str:
    if start is None:
        return "unbounded"
    s, e = reading(start, cal.zone), reading(end, cal.zone)
    if e - s == timedelta(days=7):
        return "week"
    if e == add_calendar_months(s, 1):
        return "month"
    if e == add_calendar_months(s, 3):
        return "quarter"
    return "custom"


def default_window(cal: RefCalendar, days: int, now: datetime) -> tuple[datetime, datetime]:
    today = wall(now, cal.zone).date()
    return midnight(today - timedelta(days=days), cal.zone), midnight(today, cal.zone)
