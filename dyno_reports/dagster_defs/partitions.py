"""Partitions: `period` (the slot a key names, per cadence) x `tenant` (dynamic).

Multi-partition keys are ordered by dimension name, so a key reads
`2025-06-02|<tenant uuid>` (weekly: the Monday of the UTC week), `2025-06-01|...`
(monthly: the month's first day) or `FY2026-Q1|...` (quarterly: a fiscal quarter's
label). A key names a slot every tenant shares; each tenant resolves it in its own
calendar (`slots.py`): the week containing that local date, that local month, its
fiscal quarter of that label.

Weeks and months are Dagster time windows, with `end_offset=1`: the slot of the
current UTC week or month is listed too. A tenant east of UTC, or whose week
starts on another day, closes that slot before UTC does (a Tuesday-start
tenant's week of key `2025-06-02` ends on 2025-06-03 local), and the earliest
close of a slot always falls inside its UTC period, so with the current period
listed every slot exists as soon as any tenant has closed it. The UI therefore
shows the current period as missing for every tenant; running it for a tenant
whose period has not closed is refused (assets.py), nothing written.

Quarters are a `StaticPartitionsDefinition` of fiscal-quarter labels, sorted
(`FY2025-Q4` < `FY2026-Q1`): every label that names, for some fiscal year
(start month 1..12, named by its start or its end), a quarter ending after the
first period, up to `FY<this year + 2>`. Static rather than dynamic: the labels
depend only on the date, not on which tenants exist, so nothing (no sensor) has
to add them before a schedule can request them. The last label year, two years
ahead, keeps every label that can close in the next 16 months listed even if the
code location is not reloaded: the earliest close of a label not listed,
`FY<this year + 3>-Q1` of a February-start year named by its end, is May of the
year after next. The set is rebuilt with the definitions, like the rolling start.
Budget: with a rolling year, 16 or 17 labels per tenant (for a calendar-year
tenant 8 of them still ahead), 34,000 partitions at most at 2,000 tenants
(docs/scaling.md).

The first period is `DYNO_DAGSTER_START_DATE` when set, else rolling: the first
day of the month `DYNO_DAGSTER_HISTORY_MONTHS` (default 12) months back. Read
when the definitions are built, not at import.

Why rolling: an asset has periods x tenants partitions, and that product is
the partition budget (docs/scaling.md): Dagster advises at most about 100,000
per asset. A fixed start grows the weekly assets by 52 partitions per tenant a
year without bound; a rolling year keeps them at 53 per tenant. The start moves
once a month, so definitions change only then.
"""

import os
from datetime import UTC, date, datetime
from functools import cache

from dagster import (
    DynamicPartitionsDefinition,
    MonthlyPartitionsDefinition,
    MultiPartitionsDefinition,
    PartitionsDefinition,
    StaticPartitionsDefinition,
    WeeklyPartitionsDefinition,
)

from dyno_reports.core.errors import ConfigError
from dyno_reports.core.tenant_calendar import NAMED_BY, TenantCalendar

START_DATE_ENV = "DYNO_DAGSTER_START_DATE"
HISTORY_MONTHS_ENV = "DYNO_DAGSTER_HISTORY_MONTHS"
DEFAULT_HISTORY_MONTHS = 12
TENANT = "tenant"
PERIOD = "period"
MULTI_KEY_SEPARATOR = "|"
LABEL_YEARS_AHEAD = 2  # quarter labels up to FY<this year + 2>

tenant_partitions = DynamicPartitionsDefinition(name=TENANT)


def start_date(today: date | None = None) -> str:
    """First period start (ISO date); weekly partitions begin on the first Monday from it."""
    raw = os.environ.get(START_DATE_ENV)
    if raw:
        try:
            date.fromisoformat(raw)
        except ValueError:
            raise ConfigError(f"{START_DATE_ENV} must be an ISO date like 2024-01-01, got {raw!r}") from None
        return raw
    months_raw = os.environ.get(HISTORY_MONTHS_ENV) or str(DEFAULT_HISTORY_MONTHS)
    if not months_raw.isdigit() or not 1 <= int(months_raw) <= 120:
        raise ConfigError(f"{HISTORY_MONTHS_ENV} must be a whole number of months from 1 to 120, got {months_raw!r}")
    today = today or datetime.now(UTC).date()
    months = today.year * 12 + today.month - 1 - int(months_raw)
    return date(months // 12, months % 12 + 1, 1).isoformat()


def start_covering(partition_keys: list[str]) -> str:
    """The configured start, moved back if needed so that the periods of the keys given are partitions.

    For bookkeeping of old runs: a rolling start may have moved past their periods since. A quarter label
    `FY<y>-Q<n>` names, whatever the fiscal year, a quarter ending after <y - 1>-01-01.
    """
    periods = [key.split(MULTI_KEY_SEPARATOR, 1)[0] for key in partition_keys]  # keys read `period|tenant`
    return min([start_date(), *(f"{int(p[2:6]) - 1:04d}-01-01" if p.startswith("FY") else p for p in periods)])


@cache
def quarter_labels(start: str, last_year: int) -> tuple[str, ...]:
    """Every fiscal-quarter label naming, for some fiscal year setting, a quarter that ends after `start`,
    up to FY<last_year>; sorted (which is their order in time for any one setting)."""
    first_day, labels = date.fromisoformat(start), set()
    for start_month in range(1, 13):
        for named_by in NAMED_BY:
            calendar = TenantCalendar(fiscal_year_start_month=start_month, fiscal_year_named_by=named_by)
            quarter = calendar.period("quarter", first_day)
            while int(quarter.label[2:6]) <= last_year:
                labels.add(quarter.label)
                quarter = calendar.shift(quarter, 1)
    return tuple(sorted(labels))


def period_partitions(cadence: str, start: str, today: date | None = None) -> PartitionsDefinition:
    """The `period` dimension of a cadence (see the module docstring); `today` dates the quarter labels."""
    if cadence == "quarter":
        last_year = (today or datetime.now(UTC).date()).year + LABEL_YEARS_AHEAD
        return _quarter_partitions(start, last_year)
    return _time_partitions(cadence, start)


@cache
def _time_partitions(cadence: str, start: str) -> PartitionsDefinition:
    if cadence == "week":  # weeks start Monday; end_offset=1: the current UTC week is listed
        return WeeklyPartitionsDefinition(start_date=start, day_offset=1, timezone="UTC", end_offset=1)
    if cadence == "month":
        return MonthlyPartitionsDefinition(start_date=start, timezone="UTC", end_offset=1)
    raise ConfigError(f"unknown report cadence {cadence!r}")


@cache
def _quarter_partitions(start: str, last_year: int) -> StaticPartitionsDefinition:
    return StaticPartitionsDefinition(list(quarter_labels(start, last_year)))


def report_partitions(cadence: str, start: str, today: date | None = None) -> MultiPartitionsDefinition:
    """One shared definition per cadence (assets of one cadence can share a job)."""
    return _report_partitions(period_partitions(cadence, start, today))


@cache
def _report_partitions(period_def: PartitionsDefinition) -> MultiPartitionsDefinition:
    return MultiPartitionsDefinition({PERIOD: period_def, TENANT: tenant_partitions})
