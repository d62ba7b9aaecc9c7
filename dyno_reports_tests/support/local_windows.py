"""Tenants' calendars and windows asked in local time, for the report property tests (hypothesis strategies,
no I/O).

A window is asked as a caller asks for it (`build_request`'s keywords: a whole period by grain and label, or
bounds as text read in the tenant's zone) and resolved by the reference calendar
(`reference/calendar.py`, written from docs/definitions.md), never by the module under test: the run must
record the reference's instants and its facts must be the reference's on them.
"""

from dataclasses import dataclass
from datetime import date, datetime, timedelta

from hypothesis import strategies as st

from dyno_reports_tests.reference import calendar as ref
from dyno_reports_tests.support.history import T0

# Zones both Python's tzdata and PostgreSQL's know: whole, half and three-quarter hour offsets, both
# hemispheres' DST, a zone whose midnight is skipped (Santiago) or repeated (Havana), and +14:00.
ZONES = (
    "UTC",
    "Australia/Sydney",
    "America/Los_Angeles",
    "Asia/Kolkata",
    "Asia/Kathmandu",
    "Pacific/Chatham",
    "America/St_Johns",
    "America/Santiago",
    "America/Havana",
    "Europe/Berlin",
    "Pacific/Kiritimati",
)


@dataclass(frozen=True)
class AskedWindow:
    """`asked`: build_request's window keywords; `start`, `end`: the reference calendar's instants for them."""

    asked: dict[str, str]
    start: datetime
    end: datetime


def calendars() -> st.SearchStrategy[tuple[str, int, int, str]]:
    """(time_zone, week_start, fiscal_year_start_month, fiscal_year_named_by), as TenantData.calendar holds it."""
    return st.tuples(st.sampled_from(ZONES), st.integers(1, 7), st.integers(1, 12), st.sampled_from(["start", "end"]))


# Local dates around the generated histories (tenant_histories' instants span T0 - 3 weeks .. T0 + 4 weeks).
_days = st.integers(-24, 30).map(lambda d: T0.date() + timedelta(days=d))


@st.composite
def _whole_period(draw: st.DrawFn, cal: ref.RefCalendar) -> AskedWindow:
    """A week named by any of its dates, a month `2025-06`, or a fiscal quarter by its label."""
    grain, day = draw(st.sampled_from(["week", "month", "quarter"])), draw(_days)
    found = ref.period(cal, grain, day)
    label = day.isoformat() if grain == "week" else found.label
    return AskedWindow({"grain": grain, "period": label}, found.start, found.end)


@st.composite
def _local_bounds(draw: st.DrawFn, cal: ref.RefCalendar) -> AskedWindow:
    """Bounds as text: a date (local midnight) or a timestamp without offset (local), the earlier instant
    the start; two spellings of one instant move the end a local day later."""
    hours = st.integers(-24 * 24, 30 * 24).map(lambda h: T0.replace(tzinfo=None) + timedelta(hours=h))
    spelled = _days.map(date.isoformat) | hours.map(datetime.isoformat)
    (start, start_raw), (end, end_raw) = sorted(
        (ref.bound(raw, cal.zone), raw) for raw in draw(st.tuples(spelled, spelled))
    )
    if end == start:
        later = (date if len(start_raw) == 10 else datetime).fromisoformat(start_raw) + timedelta(days=1)
        end_raw = later.isoformat()
        end = ref.bound(end_raw, cal.zone)
    return AskedWindow({"period_start": start_raw, "period_end": end_raw}, start, end)


def local_windows(calendar: tuple[str, int, int, str]) -> st.SearchStrategy[AskedWindow]:
    """A whole period of the tenant's calendar, or bounds read in its zone."""
    cal = ref.RefCalendar(*calendar)
    return _whole_period(cal) | _local_bounds(cal)
