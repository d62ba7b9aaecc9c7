"""What the asset body hands the IO manager for one step: each partition's work (a validated request, a refusal
that gets a FAILED header, or a too-early partition that gets nothing) and the local period each key stands for.
"""

import dataclasses
from typing import Any

from dyno_reports.core import periods
from dyno_reports.core.errors import InputError
from dyno_reports.engine import run_request


@dataclasses.dataclass(frozen=True)
class RefusedPartition:
    """A partition whose inputs the executor refused (e.g. a tenant no longer in crm.tenant)."""

    report_type: str
    tenant_id: str
    window: periods.Window
    options: dict[str, Any]
    error: InputError


@dataclasses.dataclass(frozen=True)
class TooEarlyPartition:
    """A partition whose period has not closed in its tenant's zone: refused, and nothing is recorded."""

    message: str


PartitionWork = run_request.RunRequest | RefusedPartition | TooEarlyPartition


@dataclasses.dataclass(frozen=True)
class StepWork:
    """What the asset body hands over: the work by partition key, and the local period each key stands for
    (`week of 2025-06-02 (Australia/Sydney)`, the metadata's `period`)."""

    partitions: dict[str, PartitionWork]
    periods: dict[str, str] = dataclasses.field(default_factory=dict)
