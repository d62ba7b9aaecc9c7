"""A tenant's calendar (`crm.tenant`: time_zone, week_start, fiscal_year_start_month, fiscal_year_named_by) and
the periods it resolves: weeks from the tenant's week start, calendar months, fiscal quarters and fiscal years,
their labels, the grain of a window read in local time, the default window and the Dagster slots.

docs/definitions.md, "Periods in the tenant's calendar", defines all of it; local midnight and the reading
of bounds are in local_time.py. The default calendar (UTC, Monday, January, 'end') gives exactly the UTC
periods of periods.py and trend.py. A period's bounds are local midnights, in UTC, inside the supported range.
"""

import re
from dataclasses import asdict, dataclass, fields
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from dateutil.relativedelta import relativedelta

from dyno_reports.core import local_time, periods
from dyno_reports.core.errors import ConfigError, InputError, shown

PERIOD_GRAINS = ("week", "month", "quarter", "year")
SLOT_CADENCES = ("week", "month", "quarter")
NAMED_BY = ("start", "end")
_MONTHS = {"month": 1, "quarter": 3, "year": 12}
_DATE_LABEL = re.compile(r"\d{4}-\d{2}-\d{2}")
_MONTH_LABEL = re.compile(r"(\d{4})-(\d{2})")
_FISCAL_LABEL = re.compile(r"FY(\d{4})(?:-Q([1-4]))?")
_LABEL_EXAMPLES = {"week": "2025-06-02", "month": "2025-06", "quarter": "FY2026-Q1", "year": "FY2026"}


@dataclass(frozen=True)
class Period:
    """One period of a calendar: its local days [first_day, end_day), its label and its instants [start, end)."""

    grain: str
    first_day: date
    end_day: date
    label: str
    start: datetime
    end: datetime

    @property
    def window(self) -> periods.Window:
        return periods.Window(self.start, self.end)


def _month_index(day: date) -> int:
    return day.year * 12 + day.month - 1


def _month_first_day(index: int) -> date:
    return date(index // 12, index % 12 + 1, 1)


@dataclass(frozen=True)
class TenantCalendar:
    """A tenant's calendar; InputError on construction for an unknown zone or a value out of its range."""

    time_zone: str = "UTC"
    week_start: int = 1  # ISO weekday: 1 = Monday .. 7 = Sunday
    fiscal_year_start_month: int = 1
    fiscal_year_named_by: str = "end"  # FY<year>: the calendar year of the fiscal year's first or last month

    def __post_init__(self) -> None:
        local_time.zone_named(self.time_zone)
        for name, low, high, meaning in (
            ("week_start", 1, 7, "an ISO weekday from 1 (Monday) to 7 (Sunday)"),
            ("fiscal_year_start_month", 1, 12, "a month from 1 (January) to 12 (December)"),
        ):
            value = getattr(self, name)
            if type(value) is not int or not low <= value <= high:
                raise InputError(f"{name} must be {meaning}, got {shown(value)}")
        if self.fiscal_year_named_by not in NAMED_BY:
            raise InputError(f"fiscal_year_named_by must be 'start' or 'end', got {shown(self.fiscal_year_named_by)}")

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.time_zone)

    def local_midnight(self, day: date) -> datetime:
        return local_time.local_midnight(day, self.zone)

    def local_date(self, instant: datetime) -> date:
        return local_time.wall_clock(instant, self.zone).date()

    def parse_bound(self, raw: str, what: str) -> datetime:
        """A window bound as given (local_time.parse_local_instant), in UTC."""
        return local_time.parse_local_instant(raw, what, self.zone)

    def period(self, grain: str, day: date) -> Period:
        """The period of `grain` (week, month, quarter, year) containing the local date `day`."""
        if grain == "week":
            return self._period(grain, day - timedelta(days=(day.isoweekday() - self.week_start) % 7))
        if grain not in _MONTHS:
            raise InputError(f"unknown period grain {shown(grain)} (grains: {', '.join(PERIOD_GRAINS)})")
        months_into_year = (day.month - self.fiscal_year_start_month) % 12
        into_period = {"month": 0, "quarter": months_into_year % 3, "year": months_into_year}[grain]
        return self._period(grain, _month_first_day(_month_index(day) - into_period))

    def period_at(self, grain: str, instant: datetime) -> Period:
        """The period whose [start, end) contains `instant`."""
        found = self.period(grain, self.local_date(instant))
        while instant >= found.end:  # after a repeated midnight the local date may lag behind the period
            found = self.shift(found, 1)
        while instant < found.start:
            found = self.shift(found, -1)
        return found

    def shift(self, period: Period, steps: int) -> Period:
        """The period `steps` periods after `period` (before it when negative)."""
        try:
            if period.grain == "week":
                return self._period("week", period.first_day + timedelta(weeks=steps))
            index = _month_index(period.first_day) + steps * _MONTHS[period.grain]
            return self._period(period.grain, _month_first_day(index))
        except (OverflowError, ValueError):
            raise InputError(
                f"{steps} {period.grain}s from {period.label} is outside the supported range {periods.SUPPORTED}"
            ) from None

    def next_period(self, period: Period) -> Period:
        return self.shift(period, 1)

    def previous_period(self, period: Period) -> Period:
        return self.shift(period, -1)

    def last_closed(self, grain: str, at: datetime) -> Period:
        """The latest period closed at `at` (its end <= `at`)."""
        return self.shift(self.period_at(grain, at), -1)

    def periods_ending(self, last: Period, count: int) -> list[Period]:
        """`count` successive periods, oldest first, the last one `last`."""
        return [self.shift(last, -back) for back in reversed(range(count))]

    def _period(self, grain: str, first_day: date) -> Period:
        label = self._label(grain, first_day)
        try:
            if grain == "week":
                end_day = first_day + timedelta(days=7)
            else:
                end_day = _month_first_day(_month_index(first_day) + _MONTHS[grain])
            start, end = self.local_midnight(first_day), self.local_midnight(end_day)
            if start >= periods.EARLIEST and end <= periods.LATEST:
                return Period(grain, first_day, end_day, label, start, end)
        except (OverflowError, ValueError, InputError):
            pass
        raise InputError(f"the {grain} {label} is outside the supported range {periods.SUPPORTED}")

    def _label(self, grain: str, first_day: date) -> str:
        if grain == "week":
            return first_day.isoformat()
        if grain == "month":
            return f"{first_day.year:04d}-{first_day.month:02d}"
        months_into_year = (first_day.month - self.fiscal_year_start_month) % 12
        year_start = _month_index(first_day) - months_into_year
        named = year_start // 12 if self.fiscal_year_named_by == "start" else (year_start + 11) // 12
        return f"FY{named:04d}" + (f"-Q{months_into_year // 3 + 1}" if grain == "quarter" else "")

    def parse_period(self, grain: str, label: str) -> Period:
        """The period a label names: a week by any of its dates (`2025-06-02`), a month `2025-06`, a fiscal
        quarter `FY2026-Q1`, a fiscal year `FY2026`."""
        if grain not in PERIOD_GRAINS:
            raise InputError(f"unknown period grain {shown(grain)} (grains: {', '.join(PERIOD_GRAINS)})")
        text = label if isinstance(label, str) else ""
        month, fiscal = _MONTH_LABEL.fullmatch(text), _FISCAL_LABEL.fullmatch(text)
        try:
            if grain == "week" and _DATE_LABEL.fullmatch(text):
                return self.period(grain, date.fromisoformat(text))
            if grain == "month" and month:
                return self.period(grain, date(int(month[1]), int(month[2]), 1))
            if fiscal and grain == ("year" if fiscal[2] is None else "quarter"):
                named, first_month = int(fiscal[1]), self.fiscal_year_start_month
                start_year = named if self.fiscal_year_named_by == "start" or first_month == 1 else named - 1
                first_day = _month_first_day(start_year * 12 + first_month - 1 + 3 * (int(fiscal[2] or 1) - 1))
                return self._period(grain, first_day)
        except ValueError:  # no such date, or year 0
            pass
        raise InputError(f"{shown(label)} is not a {grain} label (e.g. {_LABEL_EXAMPLES[grain]})")

    def describe(self, period: Period) -> str:
        """A short human label: `week of 2025-06-02 (Australia/Sydney)`, `2025-06 (America/Los_Angeles)`,
        `FY2026-Q1 (2025-07-01 to 2025-10-01, Australia/Sydney)`."""
        if period.grain == "week":
            return f"week of {period.label} ({self.time_zone})"
        if period.grain == "month":
            return f"{period.label} ({self.time_zone})"
        return f"{period.label} ({period.first_day} to {period.end_day}, {self.time_zone})"

    def grain_of(self, start: datetime | None, end: datetime) -> str:
        """The grain of [start, end) read in local time: `week` when E reads 7 local days after S, `month` /
        `quarter` when one / three calendar months after (as periods.grain_of: 2025-01-31 to 2025-02-28 is a
        month), `unbounded` without S, else `custom`."""
        if start is None:
            return "unbounded"
        first, last = self._reading(start), self._reading(end)
        if last == first + timedelta(days=7):
            return "week"
        for grain, months in (("month", 1), ("quarter", 3)):
            if last == first + relativedelta(months=months):
                return grain
        return "custom"

    def _reading(self, instant: datetime) -> datetime:
        """An instant's local wall-clock time, except that the local midnight of a date reads 00:00 of that
        date even where 00:00 fell in a gap: a calendar's own periods read as whole local days."""
        day = self.local_date(instant)
        if instant == self.local_midnight(day):
            return datetime.combine(day, time())
        return local_time.wall_clock(instant, self.zone)

    def start_of_today(self, now: datetime | None = None) -> datetime:
        """Today 00:00 local (today: the local date of `now`, by default of the current instant)."""
        return self.local_midnight(self.local_date(now or datetime.now(UTC)))

    def default_window(self, days: int, now: datetime | None = None) -> periods.Window:
        """The `days` local days up to today 00:00 local (today: the local date of `now`)."""
        today = self.local_date(now or datetime.now(UTC))
        try:
            start = self.local_midnight(today - timedelta(days=days)) if days > 0 else None
        except (OverflowError, InputError):
            start = None
        if start is None or start < periods.EARLIEST:
            raise ConfigError(f"a default window of {days} days reaches out of the supported range {periods.SUPPORTED}")
        return periods.Window(start, self.local_midnight(today))

    def slot_period(self, cadence: str, key: str) -> Period:
        """The tenant's period a partition key stands for: a weekly key (a date) the week containing that
        local date, a monthly key (its first day) that local month, a quarterly key its fiscal quarter."""
        if cadence not in SLOT_CADENCES:
            raise InputError(f"unknown cadence {shown(cadence)} (cadences: {', '.join(SLOT_CADENCES)})")
        if cadence == "quarter":
            return self.parse_period("quarter", key)
        if isinstance(key, str) and _DATE_LABEL.fullmatch(key):
            try:
                return self.period(cadence, date.fromisoformat(key))
            except ValueError:  # no such date
                pass
        raise InputError(f"{shown(key)} is not a {cadence}ly partition key (e.g. 2025-06-02)")

    def slot_is_closed(self, cadence: str, key: str, at: datetime) -> bool:
        """Whether the slot's period has closed for this tenant at `at` (its end <= `at`)."""
        return self.slot_period(cadence, key).end <= at

    def as_json(self) -> dict[str, Any]:
        """The calendar as a run's input_params record it."""
        return asdict(self)

    @classmethod
    def from_json(cls, value: object) -> "TenantCalendar":
        """The calendar `as_json` wrote: an object with exactly its four keys."""
        keys = [field.name for field in fields(cls)]
        if not isinstance(value, dict) or sorted(value) != sorted(keys):
            raise InputError(f"a calendar is an object with the keys {', '.join(keys)}, got {shown(value)}")
        return cls(**value)
