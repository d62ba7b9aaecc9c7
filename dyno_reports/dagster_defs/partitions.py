"""Partitions: `period` (weekly from Monday, or monthly, per report cadence) x `tenant` (dynamic).

Multi-partition keys are ordered by dimension name, so a key reads
`2025-06-02|<tenant uuid>`. The first period is `DYNO_DAGSTER_START_DATE`
(default 2024-01-01), read when the definitions are built, not at import.
"""

import os
from dataclasses import dataclass
from datetime import date, datetime
from functools import lru_cache

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

DEFAULT_START_DATE = "2024-01-01"
START_DATE_ENV = "DYNO_DAGSTER_START_DATE"
TENANT = "tenant"
PERIOD = "period"

tenant_partitions = DynamicPartitionsDefinition(name=TENANT)


def start_date() -> str:
    """First period start (ISO date); weekly partitions begin on the first Monday from it."""
    raw = os.environ.get(START_DATE_ENV) or DEFAULT_START_DATE
    try:
        date.fromisoformat(raw)
    except ValueError:
        raise ConfigError(f"{START_DATE_ENV} must be an ISO date like 2024-01-01, got {raw!r}") from None
    return raw


@lru_cache(maxsize=None)
def period_partitions(cadence: str, start: str) -> TimeWindowPartitionsDefinition:
    if cadence == "week":
        return WeeklyPartitionsDefinition(start_date=start, day_offset=1, timezone="UTC")  # weeks start Monday
    if cadence == "month":
        return MonthlyPartitionsDefinition(start_date=start, timezone="UTC")
    raise ConfigError(f"unknown report cadence {cadence!r}")


@lru_cache(maxsize=None)
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
    key = partition_key if isinstance(partition_key, MultiPartitionKey) else partitions_def.get_partition_key_from_str(partition_key)
    parts = key.keys_by_dimension
    period_def = next(d.partitions_def for d in partitions_def.partitions_defs if d.name == PERIOD)
    assert isinstance(period_def, TimeWindowPartitionsDefinition)
    window = period_def.time_window_for_partition_key(parts[PERIOD])
    return PartitionTarget(str(key), parts[TENANT], window.start, window.end)
