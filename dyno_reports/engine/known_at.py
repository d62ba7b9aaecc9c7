"""K, what a run knows of the CRM (docs/definitions.md, "As known at"): the history rows recorded at or before K.

- `resolve_known_at`: K as given (`run --as-known-at`, Dagster's `as_known_at`: text read as a window bound is,
  an offset-less timestamp in the tenant's zone; a datetime is an instant), else the run's start minus the
  CRM's longest write transaction (`config.crm_max_write`, 10 minutes). A K after the run's start is refused.
- `not_final`: why a window whose end is after K is refused without `--so-far` (its run would not be final:
  rows dated before its end may still be written).

K is taken on this process's clock, the CRM's `recorded_at` on the database server's: a skew between the
two eats into the margin of the CRM's longest write.
"""

from datetime import UTC, datetime, timedelta

from dyno_reports.core import config, periods
from dyno_reports.core.errors import InputError, shown
from dyno_reports.core.tenant_calendar import TenantCalendar

WHAT = "as-known-at"


def resolve_known_at(calendar: TenantCalendar, given: str | datetime | None, now: datetime) -> datetime:
    """K of a run validated at `now`: `given` (refused when after `now`), else `now` minus the CRM's longest write."""
    if given is None:
        return now - config.crm_max_write()
    if isinstance(given, datetime):
        if given.tzinfo is None:
            raise InputError(f"{WHAT} {given.isoformat()} has no time zone: give an instant")
        known = periods.check_bounds(given, WHAT).astimezone(UTC)
    else:
        known = calendar.parse_bound(given, WHAT)
    if known > now:
        raise InputError(
            f"{WHAT} {shown(given) if isinstance(given, str) else known.isoformat()} is after now "
            f"({_second(now)}): a run can only know the CRM as it was at a moment that has come"
        )
    return known


def not_final(
    end: datetime, known_at: datetime, now: datetime, given: bool, advice: str = "pass --so-far to run it so far"
) -> str:
    """The refusal of a window that ends after K (`given`: K came from the caller, not the default)."""
    if end > now:
        return (
            f"period end {end.isoformat()} is after now ({_second(now)}): the period has not ended and its numbers "
            f"can still change; {advice}"
        )
    if given:
        return (
            f"period end {end.isoformat()} is after as-known-at {known_at.isoformat()}: rows dated before the end "
            f"could still be written after that moment, so the answer known then is not final; {advice}"
        )
    return (
        f"period end {end.isoformat()} is less than {_duration(config.crm_max_write())} before now "
        f"({_second(now)}): the CRM may still be writing rows dated before it (its longest write "
        f"transaction, DYNO_CRM_MAX_WRITE_SECONDS), so its numbers can still change; {advice}"
    )


def _second(instant: datetime) -> str:
    return instant.replace(microsecond=0).isoformat()


def _duration(length: timedelta) -> str:
    seconds = int(length.total_seconds())
    return f"{seconds // 60} minutes" if seconds % 60 == 0 and seconds >= 120 else f"{seconds} seconds"
