"""Report windows `[period_start, period_end)`: parsing, the default window, and the grain."""

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta

from dateutil.relativedelta import relativedelta

from dyno_reports import config
from dyno_reports.errors import InputError

GRAINS = ("week", "month", "quarter", "custom", "unbounded")


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


def parse_instant(raw: str, what: str) -> datetime:
    """An ISO date or timestamp; a date means 00:00 and a time without offset means UTC."""
    text = raw.strip()
    try:
        if len(text) == 10:
            return datetime.combine(date.fromisoformat(text), time(), tzinfo=UTC)
        parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise InputError(
            f"{what} {raw!r} is not an ISO date or timestamp (e.g. 2025-06-02 or 2025-06-02T00:00:00Z)"
        ) from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.astimezone(UTC)


def start_of_today(now: datetime | None = None) -> datetime:
    current = (now or datetime.now(UTC)).astimezone(UTC)
    return datetime.combine(current.date(), time(), tzinfo=UTC)


def resolve_window(
    period_start: datetime | None, period_end: datetime | None, *, now: datetime | None = None
) -> Window:
    """Fill in what was not given.

    - neither bound: the configured default window (`DYNO_DEFAULT_WINDOW_DAYS`,
      90 by default) ending today 00:00 UTC;
    - only a start: the window runs until today 00:00 UTC;
    - only an end: no lower bound (all history before the end).
    """
    if period_end is None:
        period_end = start_of_today(now)
        if period_start is None:
            period_start = period_end - config.default_window()
    return Window(period_start, period_end)


def grain_of(start: datetime | None, end: datetime) -> str:
    """The methodology's reading of a window: `week` when it spans exactly 7 days,
    `month` / `quarter` when exactly one / three calendar months, `unbounded`
    without a start, else `custom`."""
    if start is None:
        return "unbounded"
    if end == start + timedelta(days=7):
        return "week"
    if end == start + relativedelta(months=1):
        return "month"
    if end == start + relativedelta(months=3):
        return "quarter"
    return "custom"
