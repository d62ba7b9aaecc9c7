"""Local time in a tenant's time zone: which zone names are known, and the instant a local date or a local
wall-clock time stands for.

The one rule (docs/definitions.md, "Periods in the tenant's calendar"): a local wall-clock time W stands for
the first instant whose local wall-clock time is at or after W. So local midnight of a date D is the first
instant whose local date is D or later: 00:00 of D when it exists, the first instant after a DST gap that
swallows it, the first of the two when it occurs twice. Zones with 30- and 45-minute offsets and any
historical transition follow from the same rule. Every instant returned is UTC-aware.
"""

import re
import zoneinfo
from datetime import UTC, date, datetime, time, timedelta
from functools import cache
from zoneinfo import ZoneInfo

from dyno_reports.core import periods
from dyno_reports.core.errors import InputError, shown

# An IANA zone name as both sides check it (migration 0009's reporting.is_time_zone_name holds the same
# rule): letters, digits, '_', '+', '-' in '/'-separated parts, starting with a letter. Besides these, tzdata
# has files that name no zone: `localtime` (the machine's own zone), `posixrules`, and the posix/ and right/
# copies of every zone.
ZONE_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_+-]*(?:/[A-Za-z0-9_+-]+)*")
NOT_ZONES = frozenset({"localtime", "posixrules"})
NOT_ZONE_FOLDERS = ("posix/", "right/")
# A wall-clock time stands for an instant at most this far from it (offsets stay within about 16 hours).
_FARTHEST_OFFSET = timedelta(days=2)
_EARLIEST_WALL = periods.EARLIEST.replace(tzinfo=None) - _FARTHEST_OFFSET
_LATEST_WALL = periods.LATEST.replace(tzinfo=None) + _FARTHEST_OFFSET
_MICROSECOND = timedelta(microseconds=1)


def is_zone_name(name: str) -> bool:
    """`name` has the shape of an IANA zone name and is not one of tzdata's files that name no zone."""
    return bool(ZONE_NAME.fullmatch(name)) and name not in NOT_ZONES and not name.startswith(NOT_ZONE_FOLDERS)


@cache
def known_zone_names() -> frozenset[str]:
    """Every IANA zone name this Python's time zone database knows (exact case); lists the database (about
    40 ms), so `zone_named` does not use it."""
    return frozenset(name for name in zoneinfo.available_timezones() if is_zone_name(name))


def zone_named(name: object) -> ZoneInfo:
    """The zone of an IANA name; InputError for anything else (a POSIX rule such as 'EST5EDT,M3.2.0,M11.1.0',
    an offset such as '+05', a wrong case, a name this Python's tzdata does not know). The name's shape is
    checked first, so only an IANA-shaped name is looked up (zoneinfo caches what it loads)."""
    if isinstance(name, str) and is_zone_name(name):
        try:
            return ZoneInfo(name)
        except (zoneinfo.ZoneInfoNotFoundError, ValueError, OSError):  # no such file, not a zone file, a folder
            pass
    raise InputError(
        f"unknown time zone {shown(name)}: not an IANA time zone name known to this Python's time zone"
        " database (e.g. 'UTC', 'Europe/Paris', 'America/Los_Angeles')"
    )


def wall_clock(instant: datetime, zone: ZoneInfo) -> datetime:
    """The local date and time of an aware instant, naive (through UTC: astimezone to an instant's own zone
    would return it unchanged, even a wall-clock time that zone skips)."""
    return instant.astimezone(UTC).astimezone(zone).replace(tzinfo=None)


def first_instant_at(wall: datetime, zone: ZoneInfo) -> datetime:
    """The first instant whose local wall-clock time is at or after the naive `wall` (UTC-aware).

    Where `wall` exists, zoneinfo's two readings (fold 0 and 1) name its occurrences: the earlier wins.
    Where it falls in a gap, fold 0 reads it with the offset before the gap and fold 1 with the offset
    after, so the gap's end lies between the two readings: bisected to the microsecond (a gap that does
    not start exactly at `wall` ends earlier than fold 0's reading).
    """
    if not _EARLIEST_WALL <= wall <= _LATEST_WALL:
        raise InputError(f"{wall.isoformat()} is outside the supported range {periods.SUPPORTED}")
    readings = [wall.replace(tzinfo=zone, fold=fold).astimezone(UTC) for fold in (0, 1)]
    occurrences = [instant for instant in readings if wall_clock(instant, zone) == wall]
    if occurrences:
        return min(occurrences)
    low, high = min(readings), max(readings)
    while wall_clock(low, zone) >= wall:  # never for tzdata's zones: kept so the bisection's ends hold
        low -= _FARTHEST_OFFSET
    while wall_clock(high, zone) < wall:
        high += _FARTHEST_OFFSET
    while high - low > _MICROSECOND:
        middle = low + (high - low) // 2
        if wall_clock(middle, zone) >= wall:
            high = middle
        else:
            low = middle
    return high


def local_midnight(day: date, zone: ZoneInfo) -> datetime:
    """00:00 of `day` in `zone`: the first instant whose local date is `day` or later (UTC-aware)."""
    return first_instant_at(datetime.combine(day, time()), zone)


def parse_local_instant(raw: str, what: str, zone: ZoneInfo) -> datetime:
    """A bound as given: an ISO date is local midnight, a timestamp with an offset (or Z) is taken as given,
    one without an offset is local (the first-instant rule). ASCII and nothing around it; refused outside the
    supported range. The one parser of window bounds (in UTC: the default calendar's `parse_bound`)."""
    try:
        if not raw.isascii() or raw != raw.strip():
            raise ValueError("not canonical")
        if len(raw) == 10:
            parsed = datetime.combine(date.fromisoformat(raw), time())
        else:
            parsed = datetime.fromisoformat(raw.replace("Z", "+00:00"))
    except ValueError:
        raise InputError(
            f"{what} {shown(raw)} is not an ISO date or timestamp (e.g. 2025-06-02 or 2025-06-02T00:00:00Z)"
        ) from None
    try:
        instant = parsed.astimezone(UTC) if parsed.tzinfo is not None else first_instant_at(parsed, zone)
    except (OverflowError, InputError):  # year 1 or 9999 shifted by an offset, or far outside the range
        raise InputError(f"{what} {shown(raw)} is outside the supported range {periods.SUPPORTED}") from None
    return periods.check_bounds(instant, what, raw)
