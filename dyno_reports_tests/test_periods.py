"""Windows, grains and the default period in the default calendar (UTC): bounds, ranges and errors (no DB).

The same in other calendars: test_tenant_calendar.py and test_calendar_runs.py."""

from datetime import UTC, datetime, timedelta

import pytest

from dyno_reports.core import periods
from dyno_reports.core.errors import ConfigError, InputError
from dyno_reports.core.tenant_calendar import TenantCalendar
from dyno_reports.engine import run_window

UTC = UTC
NOW = datetime(2025, 6, 18, 15, 30, tzinfo=UTC)
UTC_CALENDAR = TenantCalendar()


def parse_instant(raw: str, what: str) -> datetime:
    return UTC_CALENDAR.parse_bound(raw, what)


def resolve_window(start, end, *, now=None) -> periods.Window:
    return run_window.resolve_window(UTC_CALENDAR, start, end, now=now or datetime.now(UTC))


@pytest.mark.parametrize(
    ("start", "end", "grain"),
    [
        ("2025-06-02", "2025-06-09", "week"),
        ("2025-06-04", "2025-06-11", "week"),
        ("2025-06-01", "2025-07-01", "month"),
        ("2025-01-31", "2025-02-28", "month"),
        ("2025-04-01", "2025-07-01", "quarter"),
        ("2025-06-01", "2025-06-20", "custom"),
        (None, "2025-06-20", "unbounded"),
    ],
)
def test_grain(start, end, grain):
    s = parse_instant(start, "start") if start else None
    assert periods.grain_of(s, parse_instant(end, "end")) == grain


def test_default_window_is_configurable_and_ends_today_midnight_utc(monkeypatch):
    monkeypatch.setenv("DYNO_DEFAULT_WINDOW_DAYS", "30")
    window = resolve_window(None, None, now=NOW)
    assert window.end == datetime(2025, 6, 18, tzinfo=UTC)
    assert window.start == window.end - timedelta(days=30)


def test_only_an_end_means_no_lower_bound_and_only_a_start_ends_today():
    assert resolve_window(None, datetime(2025, 1, 1, tzinfo=UTC), now=NOW).start is None
    assert resolve_window(datetime(2025, 6, 1, tzinfo=UTC), None, now=NOW).end == datetime(2025, 6, 18, tzinfo=UTC)


def test_bad_inputs_are_refused():
    with pytest.raises(InputError, match="must be after"):
        resolve_window(datetime(2025, 6, 2, tzinfo=UTC), datetime(2025, 6, 2, tzinfo=UTC))
    with pytest.raises(InputError, match="not an ISO date"):
        parse_instant("next tuesday", "period start")


def test_offsets_are_converted_to_utc_and_naive_means_utc():
    assert parse_instant("2025-06-02T02:00:00+02:00", "x") == datetime(2025, 6, 2, tzinfo=UTC)
    assert parse_instant("2025-06-02T00:00:00", "x") == datetime(2025, 6, 2, tzinfo=UTC)


def test_bad_default_window_setting(monkeypatch):
    monkeypatch.setenv("DYNO_DEFAULT_WINDOW_DAYS", "soon")
    with pytest.raises(ConfigError):
        resolve_window(None, None)


@pytest.mark.parametrize(
    "raw",
    [
        "9999-12-01",
        "9999-12-31T23:00:00-12:00",  # past year 9999 in UTC
        "0001-01-01T00:00:00+14:00",  # before year 1 in UTC
        "1899-12-31T23:59:59.999999Z",
        "9000-01-01T00:00:00.000001Z",
        "1900-01-01T00:00:00+00:01",
        "8999-12-31T23:59:59-00:01",
    ],
)
def test_instants_outside_the_supported_range_are_input_errors(raw):
    with pytest.raises(InputError, match=r"outside the supported range 1900-01-01 \.\. 9000-01-01 UTC"):
        parse_instant(raw, "period end")


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("1900-01-01", periods.EARLIEST),
        ("1900-01-01T14:00:00+14:00", periods.EARLIEST),
        ("1899-12-31T12:00:00-12:00", periods.EARLIEST),
        ("9000-01-01", periods.LATEST),
        ("8999-12-31T12:00:00-12:00", periods.LATEST),
        ("9000-01-01T14:00:00+14:00", periods.LATEST),
    ],
)
def test_the_edges_of_the_range_are_in_it(raw, expected):
    assert parse_instant(raw, "x") == expected


def test_grains_at_the_edges_of_the_range():
    assert periods.grain_of(datetime(8999, 10, 1, tzinfo=UTC), periods.LATEST) == "quarter"
    assert periods.grain_of(datetime(8999, 12, 25, tzinfo=UTC), periods.LATEST) == "week"
    assert periods.grain_of(periods.EARLIEST, datetime(1900, 2, 1, tzinfo=UTC)) == "month"
    with pytest.raises(InputError, match="must be after"):  # only a start: up to today, before it
        resolve_window(datetime(8999, 12, 31, 23, 59, 59, tzinfo=UTC), None, now=NOW)


def test_datetimes_given_directly_are_bounded_too():
    with pytest.raises(InputError, match="period start 1800-01-01T00:00:00\\+00:00 is outside"):
        resolve_window(datetime(1800, 1, 1, tzinfo=UTC), datetime(2025, 1, 1, tzinfo=UTC))
    with pytest.raises(InputError, match="period end 9999-12-31T00:00:00\\+00:00 is outside"):
        resolve_window(None, datetime(9999, 12, 31, tzinfo=UTC))


@pytest.mark.parametrize(
    "raw",
    [
        " 2025-06-02",
        "2025-06-02\n",
        "2025-06-02".translate(str.maketrans("0123456789", "".join(chr(0x0660 + d) for d in range(10)))),
        "2025-06-02T00:00:00\u00a0",
        "",
    ],
)
def test_instants_must_be_plain_ascii_iso(raw):
    with pytest.raises(InputError, match="not an ISO date"):
        parse_instant(raw, "period start")


def test_a_huge_instant_is_quoted_short():
    with pytest.raises(InputError) as refused:
        parse_instant("2" * 100_000, "period start")
    assert len(str(refused.value)) < 300 and "(100000 characters)" in str(refused.value)


@pytest.mark.parametrize("days", ["60000", "999999999", "1000000000"])
def test_a_default_window_past_the_range_is_a_config_error(monkeypatch, days):
    monkeypatch.setenv("DYNO_DEFAULT_WINDOW_DAYS", days)
    with pytest.raises(ConfigError, match="supported range"):
        resolve_window(None, None, now=NOW)
