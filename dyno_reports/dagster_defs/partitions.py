"""Partitions: `period` (weekly from Monday, or monthly, per report cadence) x `tenant` (dynamic).

Multi-partition keys are ordered by dimension name, so a key reads
`2025-06-02|<tenant uuid>`. The first period is `DYNO_DAGSTER_START_DATE` when
set, else rolling: the first day of the month `DYNO_DAGSTER_HISTORY_MONTHS`
(default 12) months back. Read when the definitions are built, not at import.

Why rolling: an asset has periods x tenants partitions, and that product is
the partition budget (docs/scaling.md): Dagster advises at most about 100,000
per asset. A fixed start grows the weekly assets by 52 partitions per tenant a
year without bound; a rolling year keeps them at 53 per tenant. The start moves
once a month, so definitions change only then.
"""

import os
from dataclasses import dataclass
from datetime import UTC, date, datetime
from functools import cache

from dagster import (
    DynamicPartitionsDefinition,
    MonthlyPartitionsDefinition,
    MultiPartitionKey,
    MultiPartitionsDefinition,
    PartitionsDefinition,
    TimeWindowPartitionsDefinition,
    WeeklyPartitionsDefinition,
)

from dyno_reports.errors import ConfigError

START_DATE_ENV = "DYNO_DAGSTER_START_DATE"
HISTORY_MONTHS_ENV = "DYNO_DAGSTER_HISTORY_MONTHS"
DEFAULT_HISTORY_MONTHS = 12
TENANT = "tenant"
PERIOD = "period"
MULTI_KEY_SEPARATOR = "|"

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

    For bookkeeping of old runs: a rolling start may have moved past their periods since.
    """
    periods = [key.split(MULTI_KEY_SEPARATOR, 1)[0] for key in partition_keys]  # keys read `period|tenant`
    return min([start_date(), *periods])


@cache
def period_partitions(cadence: str, start: str) -> TimeWindowPartitionsDefinition:
    if cadence == "week":
        return WeeklyPartitionsDefinition(start_date=start, day_offset=1, timezone="UTC")  # weeks start Monday
    if cadence == "month":
        return MonthlyPartitionsDefinition(start_date=start, timezone="UTC")
    raise ConfigError(f"unknown report cadence {cadence!r}")


@cache
def report_partitions(cadence: str, start: str) -> MultiPartitionsDefinition:
    """One shared definition per cadence (assets of one cadence can share a job)."""
    return MultiPartitionsDefinition({PERIOD: period_partitions(cadence, start), TENANT: tenant_partitions})


@dataclass(frozen=True)
class PartitionTarget:
    """What one partition means for the executor: a tenant and a window `[start, end)`."""

    partition_key: str
    tenant_id: str
    period_start: datetime
    period_end: datetime


def target_of(partitions_def: PartitionsDefinition, partition_key: str) -> PartitionTarget:
    assert isinstance(partitions_def, MultiPartitionsDefinition)
    key = (
        partition_key
        if isinstance(partition_key, MultiPartitionKey)
        else partitions_def.get_partition_key_from_str(partition_key)
    )
    parts = key.keys_by_dimension
    period_def = next(d.partitions_def for d in partitions_def.partitions_defs if d.name == PERIOD)
    assert isinstance(period_def, TimeWindowPartitionsDefinition)
    window = period_def.time_window_for_partition_key(parts[PERIOD])
    return PartitionTarget(str(key), parts[TENANT], window.start, window.end)
