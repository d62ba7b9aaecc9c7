"""Report windows `[period_start, period_end)`: parsing, the default window, and the grain.

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
from datetime import UTC, date, datetime, time, timedelta

from dateutil.relativedelta import relativedelta

from dyno_reports import config
from dyno_reports.errors import ConfigError, InputError, shown

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


def parse_instant(raw: str, what: str) -> datetime:
    """An ISO date or timestamp, ASCII and nothing around it; a date means 00:00 and a time without
    offset means UTC. Refused outside `[EARLIEST, LATEST]`."""
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
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    try:
        parsed = parsed.astimezone(UTC)
    except OverflowError:  # year 1 or 9999 shifted by its offset
        raise InputError(f"{what} {shown(raw)} is outside the supported range {SUPPORTED}") from None
    return check_bounds(parsed, what, raw)


def check_bounds(instant: datetime, what: str, raw: object = None) -> datetime:
    """`instant` when it lies in `[EARLIEST, LATEST]`, else InputError (quoting `raw` when given).
    A naive `instant` passes through: `Window` refuses it."""
    if instant.tzinfo is not None and not EARLIEST <= instant <= LATEST:
        given = shown(raw) if raw is not None else instant.isoformat()
        raise InputError(f"{what} {given} is outside the supported range {SUPPORTED}")
    return instant


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

    Given bounds must lie in `[EARLIEST, LATEST]` (InputError otherwise).
    """
    if period_start is not None:
        check_bounds(period_start, "period start")
    if period_end is not None:
        check_bounds(period_end, "period end")
    if period_end is None:
        period_end = start_of_today(now)
        if period_start is None:
            try:
                length = config.default_window()
            except OverflowError:  # more days than a timedelta holds
                length = timedelta.max
            if length > period_end - EARLIEST:
                raise ConfigError(f"DYNO_DEFAULT_WINDOW_DAYS reaches out of the supported range {SUPPORTED}")
            period_start = period_end - length
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
