"""The tenant calendar (dyno_reports.core.tenant_calendar, local_time), no DB: hypothesis properties against the
plain-Python reference (reference/calendar.py) over every zone of zoneinfo, dates from 1970 to 2100, week
starts and fiscal settings; hand cases for DST gaps and repeated midnights, odd offsets, weeks of 167 and 169
hours, fiscal years; the default calendar against the UTC periods of before calendars (their rules kept
here: a date is 00:00 UTC, weeks from Monday, calendar months)."""

import itertools
import zoneinfo
from datetime import UTC, date, datetime, time, timedelta

import pytest
from dateutil.relativedelta import relativedelta
from hypothesis import given
from hypothesis import strategies as st

from dyno_reports.core import local_time, periods
from dyno_reports.core.errors import ConfigError, InputError, shown
from dyno_reports.core.tenant_calendar import PERIOD_GRAINS, TenantCalendar
from dyno_reports.engine import run_window
from dyno_reports_tests.reference import calendar as ref

ZONES = sorted(local_time.known_zone_names())
FIRST_DAY, LAST_DAY = date(1970, 1, 1), date(2100, 12, 31)


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


def ref_calendar(cal: TenantCalendar) -> ref.RefCalendar:
    return ref.RefCalendar(cal.time_zone, cal.week_start, cal.fiscal_year_start_month, cal.fiscal_year_named_by)


def same_period(module_period, reference_period) -> bool:
    return (module_period.label, module_period.first_day, module_period.end_day, module_period.start,
            module_period.end) == (reference_period.label, reference_period.first_day, reference_period.end_day,
            reference_period.start, reference_period.end)  # fmt: skip


# Any time of day, often one where clocks usually change (a gap or a repeated hour on a transition day).
times_of_day = st.one_of(st.times(), st.sampled_from([time(h, m) for h in (0, 1, 2, 3, 23) for m in (0, 30)]))
calendars = st.builds(
    TenantCalendar,
    time_zone=st.sampled_from(ZONES),
    week_start=st.integers(1, 7),
    fiscal_year_start_month=st.integers(1, 12),
    fiscal_year_named_by=st.sampled_from(("start", "end")),
)


def changes_of_offset(zone: zoneinfo.ZoneInfo, year: int) -> list[date]:
    """The local dates of `year` around which the zone's offset changes (noon to noon)."""
    days = [date(year, 1, 1) + timedelta(days=n) for n in range(366)]
    offsets = [datetime.combine(day, time(12), tzinfo=zone).utcoffset() for day in days]
    return [day for day, before, after in zip(days[1:], offsets, offsets[1:], strict=False) if before != after]


@st.composite
def zone_and_day(draw):
    """A zone and a local date, half of the time a date at or next to one of the zone's offset changes."""
    name = draw(st.sampled_from(ZONES))
    day = draw(st.dates(FIRST_DAY, LAST_DAY))
    changes = changes_of_offset(zoneinfo.ZoneInfo(name), day.year) if day.year < LAST_DAY.year else []
    if changes and draw(st.booleans()):
        day = draw(st.sampled_from(changes)) + timedelta(days=draw(st.integers(-1, 1)))
    return name, day


@st.composite
def calendar_and_day(draw):
    name, day = draw(zone_and_day())
    cal = draw(calendars)
    return TenantCalendar(name, cal.week_start, cal.fiscal_year_start_month, cal.fiscal_year_named_by), day


# --- properties against the reference --------------------------------------------------------------


@given(zone_and_day())
def test_local_midnight_is_the_first_instant_of_the_date_or_later(zone_day):
    name, day = zone_day
    zone = zoneinfo.ZoneInfo(name)
    assert local_time.local_midnight(day, zone) == ref.midnight(day, zone)


@given(zone_and_day(), times_of_day, st.sampled_from(("date", "local", "offset", "Z")))
def test_bounds_as_given(zone_day, time_of_day, form):
    name, day = zone_day
    cal = TenantCalendar(name)
    raw = {
        "date": day.isoformat(),
        "local": datetime.combine(day, time_of_day).isoformat(),
        "offset": datetime.combine(day, time_of_day).isoformat() + "-03:30",
        "Z": datetime.combine(day, time_of_day).isoformat() + "Z",
    }[form]
    assert cal.parse_bound(raw, "period start") == ref.bound(raw, cal.zone)


@given(calendar_and_day(), st.sampled_from(PERIOD_GRAINS))
def test_the_period_containing_a_date_and_its_label(cal_day, grain):
    cal, day = cal_day
    found = cal.period(grain, day)
    assert same_period(found, ref.period(ref_calendar(cal), grain, day))
    assert cal.parse_period(grain, found.label) == found
    assert found.start <= cal.period_at(grain, found.start).start == found.start
    assert cal.describe(found).endswith(f"{cal.time_zone})")


@given(calendar_and_day(), st.sampled_from(PERIOD_GRAINS), times_of_day, st.integers(1, 12))
def test_the_last_closed_period_and_the_periods_ending_with_it(cal_day, grain, time_of_day, count):
    cal, day = cal_day
    at = local_time.first_instant_at(datetime.combine(day, time_of_day), cal.zone)
    reference = ref_calendar(cal)
    last = cal.last_closed(grain, at)
    assert same_period(last, ref.last_closed(reference, grain, at))
    assert last.end <= at < cal.next_period(last).end
    walked = cal.periods_ending(last, count)
    expected = ref.periods_ending(reference, grain, ref.last_closed(reference, grain, at), count)
    assert all(same_period(m, r) for m, r in zip(walked, expected, strict=True))
    assert all(a.end == b.start for a, b in itertools.pairwise(walked))


@given(calendar_and_day(), st.sampled_from((*PERIOD_GRAINS, "custom", "midday")), st.integers(-2, 2))
def test_the_grain_of_a_window_read_in_local_time(cal_day, shape, days_off):
    cal, day = cal_day
    if shape in PERIOD_GRAINS:  # a period of the calendar, its end nudged by days_off local days
        found = cal.period(shape, day)
        start, end = found.start, cal.local_midnight(found.end_day + timedelta(days=days_off))
    else:  # from a local time of day, 7 days, a month or a few days later
        later = {"custom": timedelta(days=7 + days_off), "midday": relativedelta(months=1 + days_off % 3)}[shape]
        local_start = datetime.combine(day, time(12, 30))
        start = local_time.first_instant_at(local_start, cal.zone)
        end = local_time.first_instant_at(local_start + later, cal.zone)
    if end <= start:
        return
    assert cal.grain_of(start, end) == ref.grain(ref_calendar(cal), start, end)
    if shape in ("week", "month", "quarter") and days_off == 0:
        assert cal.grain_of(start, end) == shape


@given(calendar_and_day(), st.integers(1, 400), times_of_day)
def test_the_default_window_is_n_local_days_up_to_today(cal_day, days, time_of_day):
    cal, day = cal_day
    now = local_time.first_instant_at(datetime.combine(day, time_of_day), cal.zone)
    window = cal.default_window(days, now)
    assert (window.start, window.end) == ref.default_window(ref_calendar(cal), days, now)
    assert window.end == cal.start_of_today(now) <= now


@given(calendar_and_day())
def test_dagster_slots_are_the_tenants_periods(cal_day):
    cal, day = cal_day
    reference = ref_calendar(cal)
    assert same_period(cal.slot_period("week", day.isoformat()), ref.week(reference, day))
    assert same_period(cal.slot_period("month", day.replace(day=1).isoformat()), ref.month(reference, day))
    quarter = ref.fiscal_quarter(reference, day)
    assert same_period(cal.slot_period("quarter", quarter.label), ref.fiscal_quarter_labelled(reference, quarter.label))
    assert cal.slot_is_closed("quarter", quarter.label, quarter.end)
    assert not cal.slot_is_closed("quarter", quarter.label, quarter.end - timedelta(microseconds=1))


@given(calendars)
def test_a_calendar_round_trips_through_json(cal):
    assert TenantCalendar.from_json(cal.as_json()) == cal


# --- the default calendar gives the UTC periods of before calendars -------------------------------------

DEFAULT = TenantCalendar()
instants = st.datetimes(datetime(1970, 1, 1), datetime(2100, 1, 1), timezones=st.just(UTC))


def utc_bound(raw: str, what: str) -> datetime:
    """A bound as read before calendars (periods.parse_instant of commit 08db462): an ISO date or timestamp,
    ASCII and nothing around it; a date means 00:00 UTC, a time without offset UTC."""
    try:
        if not raw.isascii() or raw != raw.strip():
            raise ValueError("not canonical")
        if len(raw) == 10:
            parsed = datetime.combine(date.fromisoformat(raw), time(), tzinfo=UTC)
        else:
            parsed = datetime.fromisoformat(raw.replace("Z", "+00:00"))
    except ValueError:
        raise InputError(
            f"{what} {shown(raw)} is not an ISO date or timestamp (e.g. 2025-06-02 or 2025-06-02T00:00:00Z)"
        ) from None
    parsed = parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed
    try:
        parsed = parsed.astimezone(UTC)
    except OverflowError:
        raise InputError(f"{what} {shown(raw)} is outside the supported range {periods.SUPPORTED}") from None
    return periods.check_bounds(parsed, what, raw)


def utc_periods(cadence: str, count: int, through: date | None = None, today: date | None = None) -> list:
    """trend.period_windows of commit 08db462: UTC weeks from Monday or calendar months, ending with the one
    containing `through`, else the last closed before `today`."""
    step = timedelta(weeks=1) if cadence == "week" else relativedelta(months=1)
    day = through or today
    first = day - timedelta(days=day.weekday()) if cadence == "week" else day.replace(day=1)
    last = first if through is not None else first - step
    starts = [datetime.combine(last - step * i, time(), tzinfo=UTC) for i in reversed(range(count))]
    return [periods.Window(start, start + step) for start in starts]


@given(st.one_of(st.dates(FIRST_DAY, LAST_DAY).map(date.isoformat), instants.map(datetime.isoformat),
                 instants.map(lambda t: t.replace(tzinfo=None).isoformat()), st.text(max_size=30)))  # fmt: skip
def test_default_bounds_are_periods_bounds(raw):
    try:
        expected: object = utc_bound(raw, "period start")
    except InputError as error:
        expected = str(error)
    try:
        assert DEFAULT.parse_bound(raw, "period start") == expected
    except InputError as error:
        assert str(error) == expected


@given(instants, st.sampled_from([timedelta(days=7), relativedelta(months=1), relativedelta(months=3),
                                  timedelta(days=30), timedelta(hours=1), relativedelta(months=2)]))  # fmt: skip
def test_default_grain_is_periods_grain(start, length):
    end = start + length
    assert DEFAULT.grain_of(start, end) == periods.grain_of(start, end)
    assert DEFAULT.grain_of(None, end) == periods.grain_of(None, end) == "unbounded"


@given(st.dates(FIRST_DAY, LAST_DAY), st.sampled_from(("week", "month")), st.integers(1, 30))
def test_default_periods_are_trends_periods(day, cadence, count):
    through = [p.window for p in DEFAULT.periods_ending(DEFAULT.period(cadence, day), count)]
    assert through == utc_periods(cadence, count, through=day)
    closed = DEFAULT.periods_ending(DEFAULT.last_closed(cadence, DEFAULT.local_midnight(day)), count)
    assert [p.window for p in closed] == utc_periods(cadence, count, today=day)


@given(instants)
def test_default_window_and_today_are_periods(now):
    assert DEFAULT.start_of_today(now) == periods.start_of_today(now)
    window = DEFAULT.default_window(90, now)
    assert (window.start, window.end) == (periods.start_of_today(now) - timedelta(days=90), periods.start_of_today(now))


def test_the_default_window_is_the_configured_one_of_before_calendars(monkeypatch):
    monkeypatch.delenv("DYNO_DEFAULT_WINDOW_DAYS", raising=False)
    now = utc(2025, 6, 18, 15, 30)
    before_calendars = periods.Window(utc(2025, 6, 18) - timedelta(days=90), utc(2025, 6, 18))
    resolved = run_window.resolve_window(DEFAULT, None, None, now=now)
    assert DEFAULT.default_window(90, now) == resolved == before_calendars
    with pytest.raises(ConfigError, match="supported range"):
        DEFAULT.default_window(50_000, now)


# --- hand cases ----------------------------------------------------------------------------------------


def local(instant: datetime, name: str) -> datetime:
    return instant.astimezone(UTC).astimezone(zoneinfo.ZoneInfo(name)).replace(tzinfo=None)


@pytest.mark.parametrize(
    ("name", "day", "midnight", "reads"),
    [
        # Chile springs forward at 24:00 on Saturday: Sunday's 00:00 never happens, its day starts at 01:00.
        ("America/Santiago", date(2024, 9, 8), utc(2024, 9, 8, 4), datetime(2024, 9, 8, 1)),
        # Cuba springs forward at 00:00 too.
        ("America/Havana", date(2024, 3, 10), utc(2024, 3, 10, 5), datetime(2024, 3, 10, 1)),
        # Toronto 1919: the gap ran from 23:30 to 00:30, so midnight is 00:30, not "00:00 read before the gap"
        # (05:00 UTC, which is 01:00 local): the first instant of the date.
        ("America/Toronto", date(1919, 3, 31), utc(1919, 3, 31, 4, 30), datetime(1919, 3, 31, 0, 30)),
        # Samoa skipped 2011-12-30 altogether: the first instant of that date or later is 2011-12-31 00:00.
        ("Pacific/Apia", date(2011, 12, 30), utc(2011, 12, 30, 10), datetime(2011, 12, 31)),
    ],
)
def test_a_midnight_in_a_dst_gap_is_the_first_instant_after_it(name, day, midnight, reads):
    zone = zoneinfo.ZoneInfo(name)
    wall = datetime.combine(day, time())
    assert all(local(wall.replace(tzinfo=zone, fold=fold), name) != wall for fold in (0, 1))  # 00:00 does not exist
    assert local_time.local_midnight(day, zone) == midnight
    assert local(midnight, name) == reads and local(midnight - timedelta(microseconds=1), name) < wall
    assert TenantCalendar(name).parse_bound(day.isoformat(), "period start") == midnight


@pytest.mark.parametrize(
    ("name", "day"),
    [
        ("America/Santiago", date(2024, 9, 8)),
        ("America/Havana", date(2024, 3, 10)),
        ("America/Toronto", date(1919, 3, 31)),
    ],
)
def test_a_period_from_a_midnight_in_a_gap_reads_as_whole_local_days(name, day):
    cal = TenantCalendar(name, week_start=day.isoweekday())
    week = cal.period("week", day)
    assert week.first_day == day and local(week.start, name).time() != time()  # its first instant is not 00:00
    assert cal.grain_of(week.start, week.end) == "week"
    assert cal.grain_of(week.start, cal.local_midnight(day + relativedelta(months=1))) == "month"
    # Apia's skipped Friday: a week from it starts with Saturday's first instant, so it reads 6 days.
    apia = TenantCalendar("Pacific/Apia", week_start=5)
    skipped = apia.period("week", date(2011, 12, 30))
    assert (
        apia.grain_of(skipped.start, skipped.end)
        == "custom"
        == ref.grain(ref_calendar(apia), skipped.start, skipped.end)
    )


@pytest.mark.parametrize(
    ("name", "day", "first", "second"),
    [
        # Cuba falls back from 01:00 to 00:00 on the first Sunday of November: 00:00 happens twice.
        ("America/Havana", date(2024, 11, 3), utc(2024, 11, 3, 4), utc(2024, 11, 3, 5)),
        # Algeria, 1939: from 00:00 back to 23:00... of the same day, so 00:00 repeats too.
        ("Africa/Algiers", date(1939, 11, 19), None, None),
    ],
)
def test_a_repeated_midnight_is_its_first_occurrence(name, day, first, second):
    zone = zoneinfo.ZoneInfo(name)
    wall = datetime.combine(day, time())
    occurrences = sorted({wall.replace(tzinfo=zone, fold=fold).astimezone(UTC) for fold in (0, 1)})
    assert len(occurrences) == 2 and all(local(t, name) == wall for t in occurrences)
    if first is not None:
        assert occurrences == [first, second]
    assert local_time.local_midnight(day, zone) == occurrences[0]
    naive = (wall + timedelta(minutes=30)).isoformat()  # a repeated local time without offset: the first one
    assert TenantCalendar(name).parse_bound(naive, "period end") == occurrences[0] + timedelta(minutes=30)


@pytest.mark.parametrize(
    ("name", "midnight"),
    [
        ("Asia/Kolkata", utc(2025, 6, 1, 18, 30)),  # +05:30
        ("Asia/Kathmandu", utc(2025, 6, 1, 18, 15)),  # +05:45
        ("Pacific/Chatham", utc(2025, 6, 1, 11, 15)),  # +12:45 (its winter)
        ("America/St_Johns", utc(2025, 6, 2, 2, 30)),  # -02:30 in summer
    ],
)
def test_zones_with_30_and_45_minute_offsets(name, midnight):
    cal = TenantCalendar(name)
    assert cal.local_midnight(date(2025, 6, 2)) == midnight
    assert cal.period("week", date(2025, 6, 4)).start == midnight
    assert cal.parse_bound("2025-06-02T09:15:00", "period start") == midnight + timedelta(hours=9, minutes=15)
    assert cal.parse_bound("2025-06-02T09:15:00Z", "period start") == utc(2025, 6, 2, 9, 15)  # as given


def test_a_local_time_in_a_gap_is_the_first_instant_after_the_gap():
    new_york = TenantCalendar("America/New_York")
    assert new_york.parse_bound("2025-03-09T02:30:00", "period start") == utc(2025, 3, 9, 7)  # 03:00 EDT
    assert new_york.parse_bound("2025-11-02T01:30:00", "period start") == utc(2025, 11, 2, 5, 30)  # EDT, the first


def test_st_johns_is_minus_03_30_in_winter():
    assert TenantCalendar("America/St_Johns").local_midnight(date(2025, 1, 6)) == utc(2025, 1, 6, 3, 30)


@pytest.mark.parametrize(("day", "hours"), [(date(2025, 10, 1), 167), (date(2025, 4, 1), 169)])
def test_a_week_containing_a_dst_change_is_still_a_week(day, hours):
    sydney = TenantCalendar("Australia/Sydney")
    week = sydney.period("week", day)
    assert week.end - week.start == timedelta(hours=hours)
    assert local(week.start, "Australia/Sydney") == datetime.combine(week.first_day, time())
    assert week.first_day.isoweekday() == 1 and sydney.grain_of(week.start, week.end) == "week"
    assert periods.grain_of(week.start, week.end) == "custom"  # read in UTC it is not 7 days


def test_a_sunday_week_start_in_los_angeles():
    los_angeles = TenantCalendar("America/Los_Angeles", week_start=7)
    week = los_angeles.slot_period("week", "2025-06-02")  # a Monday: the week containing it starts Sunday
    assert (week.label, week.start, week.end) == ("2025-06-01", utc(2025, 6, 1, 7), utc(2025, 6, 8, 7))
    assert los_angeles.describe(week) == "week of 2025-06-01 (America/Los_Angeles)"
    assert los_angeles.parse_period("week", "2025-06-07") == week
    assert not los_angeles.slot_is_closed("week", "2025-06-02", utc(2025, 6, 8, 6, 59))
    assert los_angeles.slot_is_closed("week", "2025-06-02", utc(2025, 6, 8, 7))


def test_a_fiscal_year_from_february_named_by_its_end():
    los_angeles = TenantCalendar("America/Los_Angeles", 7, 2, "end")
    year = los_angeles.parse_period("year", "FY2026")
    assert (year.first_day, year.end_day) == (date(2025, 2, 1), date(2026, 2, 1))
    assert (year.start, year.end) == (utc(2025, 2, 1, 8), utc(2026, 2, 1, 8))
    quarters = [los_angeles.parse_period("quarter", f"FY2026-Q{n}") for n in (1, 2, 3, 4)]
    assert [q.first_day for q in quarters] == [date(2025, m, 1) for m in (2, 5, 8, 11)]
    assert quarters[0].end == utc(2025, 5, 1, 7)  # PDT by then
    assert los_angeles.period("quarter", date(2026, 1, 31)).label == "FY2026-Q4"
    assert los_angeles.period("quarter", date(2026, 2, 1)).label == "FY2027-Q1"
    assert los_angeles.slot_period("quarter", "FY2026-Q1") == quarters[0]
    assert los_angeles.describe(quarters[0]) == "FY2026-Q1 (2025-02-01 to 2025-05-01, America/Los_Angeles)"


def test_a_fiscal_year_from_july_named_by_its_start():
    sydney = TenantCalendar("Australia/Sydney", 1, 7, "start")
    quarter = sydney.period("quarter", date(2025, 8, 15))
    assert (quarter.label, quarter.first_day, quarter.end_day) == ("FY2025-Q1", date(2025, 7, 1), date(2025, 10, 1))
    assert (quarter.start, quarter.end) == (utc(2025, 6, 30, 14), utc(2025, 9, 30, 14))
    assert sydney.period("year", date(2026, 6, 30)).label == "FY2025"
    named_by_end = TenantCalendar("Australia/Sydney", 1, 7, "end")
    assert named_by_end.period("quarter", date(2025, 8, 15)).label == "FY2026-Q1"
    assert named_by_end.describe(quarter) == "FY2025-Q1 (2025-07-01 to 2025-10-01, Australia/Sydney)"


def test_months_quarters_and_their_grain_in_local_time():
    los_angeles = TenantCalendar("America/Los_Angeles")
    june = los_angeles.slot_period("month", "2025-06-01")
    assert (june.label, june.start, june.end) == ("2025-06", utc(2025, 6, 1, 7), utc(2025, 7, 1, 7))
    assert los_angeles.describe(june) == "2025-06 (America/Los_Angeles)"
    assert los_angeles.grain_of(june.start, june.end) == "month"
    # A deal won at 17:00 on June 30 in Los Angeles is in that tenant's June, and in a UTC tenant's July.
    won = los_angeles.parse_bound("2025-06-30T17:00:00", "won at")
    assert los_angeles.period_at("month", won) == june and DEFAULT.period_at("month", won).label == "2025-07"
    assert los_angeles.grain_of(utc(2025, 1, 31, 8), utc(2025, 2, 28, 8)) == "month"  # month-end, as periods
    assert los_angeles.grain_of(utc(2025, 3, 1, 8), utc(2025, 6, 1, 7)) == "quarter"  # no fiscal alignment
    assert los_angeles.grain_of(utc(2025, 3, 1, 8), utc(2025, 6, 1, 8)) == "custom"  # 01:00 local at the end


def test_last_closed_next_previous_and_trend_periods():
    sydney = TenantCalendar("Australia/Sydney", 1, 7, "end")
    q1 = sydney.parse_period("quarter", "FY2026-Q1")
    assert sydney.last_closed("quarter", q1.end) == q1
    assert sydney.last_closed("quarter", q1.end - timedelta(microseconds=1)).label == "FY2025-Q4"
    assert sydney.next_period(q1).label == "FY2026-Q2" and sydney.previous_period(q1).label == "FY2025-Q4"
    assert [p.label for p in sydney.periods_ending(q1, 3)] == ["FY2025-Q3", "FY2025-Q4", "FY2026-Q1"]


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"time_zone": "Mars/Olympus"}, "unknown time zone 'Mars/Olympus'"),
        ({"time_zone": "+05"}, "unknown time zone '\\+05'"),
        ({"time_zone": "EST5EDT,M3.2.0,M11.1.0"}, "unknown time zone"),
        ({"time_zone": "australia/sydney"}, "unknown time zone"),
        ({"time_zone": "localtime"}, "unknown time zone"),
        ({"time_zone": "posix/Europe/Paris"}, "unknown time zone"),
        ({"week_start": 0}, "week_start must be an ISO weekday from 1 \\(Monday\\) to 7 \\(Sunday\\), got 0"),
        ({"week_start": True}, "week_start must be"),
        ({"fiscal_year_start_month": 13}, "fiscal_year_start_month must be a month from 1"),
        ({"fiscal_year_named_by": "middle"}, "fiscal_year_named_by must be 'start' or 'end', got 'middle'"),
    ],
)
def test_a_bad_calendar_is_refused(values, message):
    with pytest.raises(InputError, match=message):
        TenantCalendar(**values)


@pytest.mark.parametrize(
    ("grain", "label"),
    [("quarter", "FY2026"), ("year", "FY2026-Q1"), ("quarter", "FY2026-Q5"), ("month", "2025-13"),
     ("month", "2025-06-01"), ("week", "2025-02-30"), ("week", "2025-W23-1"), ("quarter", "fy2026-q1"),
     ("week", "9999-12-31"), ("year", "FY0000")],
)  # fmt: skip
def test_a_bad_label_is_refused(grain, label):
    with pytest.raises(InputError, match=r"not a .* label|outside the supported range"):
        TenantCalendar("Australia/Sydney", 1, 7).parse_period(grain, label)


def test_bad_slots_and_recorded_calendars_are_refused():
    with pytest.raises(InputError, match="not a monthly partition key"):
        DEFAULT.slot_period("month", "2025-06")
    with pytest.raises(InputError, match="unknown cadence"):
        DEFAULT.slot_period("year", "FY2026")
    with pytest.raises(InputError, match="a calendar is an object with the keys"):
        TenantCalendar.from_json({"time_zone": "UTC"})
    assert DEFAULT.as_json() == {
        "time_zone": "UTC", "week_start": 1, "fiscal_year_start_month": 1, "fiscal_year_named_by": "end"
    }  # fmt: skip


def test_every_zone_of_zoneinfo_is_known_but_the_files_that_name_no_zone():
    assert set(zoneinfo.available_timezones()) - set(ZONES) <= local_time.NOT_ZONES
    assert all(local_time.zone_named(name).key == name for name in ZONES)
    for not_a_zone in ("America", "America/", "leapseconds", "tzdata.zi", "zone1970.tab", "SECURITY", "../UTC"):
        with pytest.raises(InputError, match="unknown time zone"):
            local_time.zone_named(not_a_zone)
    assert {"UTC", "Australia/Sydney", "Asia/Kathmandu", "Pacific/Chatham", "America/St_Johns"} <= set(ZONES)
