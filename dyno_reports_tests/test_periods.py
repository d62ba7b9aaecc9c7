"""Windows, grains and the default period (no DB)."""

from datetime import UTC, datetime, timedelta

import pytest

from dyno_reports import periods
from dyno_reports.errors import ConfigError, InputError

UTC = UTC
NOW = datetime(2025, 6, 18, 15, 30, tzinfo=UTC)


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
    s = periods.parse_instant(start, "start") if start else None
    assert periods.grain_of(s, periods.parse_instant(end, "end")) == grain


def test_default_window_is_configurable_and_ends_today_midnight_utc(monkeypatch):
    monkeypatch.setenv("DYNO_DEFAULT_WINDOW_DAYS", "30")
    window = periods.resolve_window(None, None, now=NOW)
    assert window.end == datetime(2025, 6, 18, tzinfo=UTC)
    assert window.start == window.end - timedelta(days=30)


def test_only_an_end_means_no_lower_bound_and_only_a_start_ends_today():
    assert periods.resolve_window(None, datetime(2025, 1, 1, tzinfo=UTC), now=NOW).start is None
    assert periods.resolve_window(datetime(2025, 6, 1, tzinfo=UTC), None, now=NOW).end == datetime(
        2025, 6, 18, tzinfo=UTC
    )


def test_bad_inputs_are_refused():
    with pytest.raises(InputError, match="must be after"):
        periods.resolve_window(datetime(2025, 6, 2, tzinfo=UTC), datetime(2025, 6, 2, tzinfo=UTC))
    with pytest.raises(InputError, match="not an ISO date"):
        periods.parse_instant("next tuesday", "period start")


def test_offsets_are_converted_to_utc_and_naive_means_utc():
    assert periods.parse_instant("2025-06-02T02:00:00+02:00", "x") == datetime(2025, 6, 2, tzinfo=UTC)
    assert periods.parse_instant("2025-06-02T00:00:00", "x") == datetime(2025, 6, 2, tzinfo=UTC)


def test_bad_default_window_setting(monkeypatch):
    monkeypatch.setenv("DYNO_DEFAULT_WINDOW_DAYS", "soon")
    with pytest.raises(ConfigError):
        periods.resolve_window(None, None)
