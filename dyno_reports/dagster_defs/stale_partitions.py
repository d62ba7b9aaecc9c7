"""Stale runs as asset partitions, and the refresh runs that cover them, batched like the schedules.

A stale run (`staleness.StaleRun`) is a partition's question when its window is exactly the tenant's period
of a slot of one of its report's assets (`cli_runs.period_key`: the tenant's calendar, a slot the asset
lists, closed by now), its tenant is a registered `tenant` partition, and the period is due (closed at least
the CRM's longest write ago). Anything else (a custom window from the CLI, an unregistered tenant) is skipped
and counted. Its options come from its `input_params`; non-default ones become the run config of the asset.

Batches: per asset and options, each tenant's stale slots are cut into maximal runs of consecutive slots (a
Dagster range over slot x tenant is the cross product of the two ranges, so a gap would refresh partitions
that are not stale), each at most MAX_PARTITIONS_PER_RUN long; tenants with the same slot run are then
grouped as the schedules group tenants (`schedules.contiguous_batches`: consecutive in registration order),
at most MAX_PARTITIONS_PER_RUN partitions a run. One tenant's periods are thus in one run (up to 100).
"""

import hashlib
import json
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from dagster import AssetKey, RunRequest, partition_loading_context

from dyno_reports.core import config
from dyno_reports.core.tenant_calendar import TenantCalendar
from dyno_reports.dagster_defs.assets import MAX_PARTITIONS_PER_RUN
from dyno_reports.dagster_defs.cadences import CADENCE_NAMES, asset_name
from dyno_reports.dagster_defs.cli_runs import period_key
from dyno_reports.dagster_defs.partitions import period_partitions
from dyno_reports.dagster_defs.run_partitions import RANGE_END_TAG, RANGE_START_TAG
from dyno_reports.dagster_defs.schedules import contiguous_batches, report_run_tags
from dyno_reports.freshness.staleness import StaleRun
from dyno_reports.reports import registry

REASON_TAG = "dyno/reason"
WHY_TAG = "dyno/stale_because"
# why a stale run is not refreshed by the sensor -> how the tick's summary says it
SKIPPED = {
    "window": "not a partition's question (a custom window)",
    "tenant": "tenant not a registered partition",
    "not_due": "period closed less than the CRM's longest write ago",
}


@dataclass(frozen=True)
class StalePartition:
    """A stale run that is the question of partition `<slot>|<tenant>` of `asset`."""

    asset: str
    cadence: str
    slot: str
    tenant_id: str
    options: dict[str, Any]  # the run's options, canonical; {} when they are the report's defaults
    run: StaleRun

    @property
    def key(self) -> str:
        return f"{self.slot}|{self.tenant_id}"

    def why(self) -> list[str]:
        """Short reasons for a tag: late rows, stages, version."""
        run = self.run
        kinds = [("late rows", run.late_rows > 0), ("stages", run.scope_changed)]
        kinds.append(("version", run.version != run.current_version))
        return [kind for kind, found in kinds if found]


def stale_partition(
    run: StaleRun, start: str, calendar: TenantCalendar, registered: set[str], now: datetime
) -> StalePartition | str:
    """The partition whose question the stale run is, or why none is: a key of SKIPPED."""
    report = registry().get(run.report_type)
    cadences = report.cadences if report is not None else ()
    found = next(((c, key[0]) for c in cadences if (key := period_key(c, start, calendar, run, now))), None)
    if report is None or found is None:
        return "window"
    if str(run.tenant_id) not in registered:
        return "tenant"
    if run.period_end > now - config.crm_max_write():
        return "not_due"
    options = (run.input_params or {}).get("options") or {}
    default = report.options_from(None).canonical()
    if json.dumps(options, sort_keys=True) == json.dumps(default, sort_keys=True):
        options = {}
    cadence, slot = found
    return StalePartition(asset_name(report, cadence), cadence, slot, str(run.tenant_id), options, run)


def refresh_requests(
    partitions: Iterable[StalePartition], tenants: Sequence[str], start: str, now: datetime
) -> list[RunRequest]:
    """The runs refreshing `partitions`, batched (module docstring); `tenants` in registration order."""
    groups: dict[tuple[str, str], list[StalePartition]] = defaultdict(list)
    for partition in partitions:
        groups[(partition.asset, json.dumps(partition.options, sort_keys=True))].append(partition)
    requests = []
    for (_asset, _options), members in sorted(groups.items()):
        cadence = members[0].cadence
        with partition_loading_context(effective_dt=now):
            slots = list(period_partitions(cadence, start, now.date()).get_partition_keys())
        index = {slot: i for i, slot in enumerate(slots)}
        for (first, last), span_tenants in sorted(_tenant_spans(members, index).items()):
            size = max(1, MAX_PARTITIONS_PER_RUN // (last - first + 1))
            for batch in contiguous_batches(tenants, span_tenants, size):
                batched = set(batch)
                covered = [p for p in members if p.tenant_id in batched and first <= index[p.slot] <= last]
                requests.append(_request(covered, slots[first], slots[last], batch))
    return requests


def _tenant_spans(members: Sequence[StalePartition], index: Mapping[str, int]) -> dict[tuple[int, int], set[str]]:
    """(first, last) slot index -> the tenants whose stale slots include exactly that maximal run of
    consecutive slots (cut every MAX_PARTITIONS_PER_RUN slots)."""
    by_tenant: dict[str, set[int]] = defaultdict(set)
    for partition in members:
        by_tenant[partition.tenant_id].add(index[partition.slot])
    spans: dict[tuple[int, int], set[str]] = defaultdict(set)
    for tenant_id, indexes in by_tenant.items():
        runs: list[list[int]] = []
        for i in sorted(indexes):
            if runs and i == runs[-1][-1] + 1 and len(runs[-1]) < MAX_PARTITIONS_PER_RUN:
                runs[-1].append(i)
            else:
                runs.append([i])
        for run in runs:
            spans[(run[0], run[-1])].add(tenant_id)
    return spans


def _request(covered: Sequence[StalePartition], first_slot: str, last_slot: str, batch: Sequence[str]) -> RunRequest:
    """One run over `first_slot`..`last_slot` x `batch` (every partition of it stale: `covered`)."""
    asset, cadence, options = covered[0].asset, covered[0].cadence, covered[0].options
    why = sorted({reason for p in covered for reason in p.why()})
    stale_runs = sorted(str(p.run.run_id) for p in covered)
    digest = hashlib.sha256(json.dumps([asset, options, stale_runs]).encode()).hexdigest()[:16]
    start, end = f"{first_slot}|{batch[0]}", f"{last_slot}|{batch[-1]}"
    return RunRequest(
        run_key=f"stale|{asset}|{start}..{end}|{digest}",
        job_name=f"{CADENCE_NAMES[cadence]}_reports",
        asset_selection=[AssetKey(asset)],
        run_config=options_config(asset, options),
        tags={
            RANGE_START_TAG: start,
            RANGE_END_TAG: end,
            REASON_TAG: "stale",
            WHY_TAG: ", ".join(why),
            "dyno/cadence": cadence,
            "dyno/tenants": str(len(batch)),
            "dyno/partitions": str(len(covered)),
            **report_run_tags(),
        },
    )


def options_config(asset: str, options: Mapping[str, Any]) -> dict[str, Any] | None:
    """The run config giving the asset `options` (`run_config.py`); None for the defaults. Options at None
    are left out: unset is the default."""
    given = {name: value for name, value in options.items() if value is not None}
    return {"ops": {asset: {"config": given}}} if given else None
