"""What a Dagster run targeted, read back from the run itself: its report assets, their partition keys (from
the run's tags) and the options its config named. For the bookkeeping after a run (failures.py, sweep.py).
"""

from collections.abc import Mapping
from typing import Any

from dagster import (
    AssetKey,
    DagsterInvalidInvocationError,
    DagsterRun,
    PartitionKeyRange,
    PartitionsDefinition,
    partition_loading_context,
)

from dyno_reports.dagster_defs.cadences import report_assets_by_name
from dyno_reports.dagster_defs.dagster_private import plan_step_keys, planned_partitions
from dyno_reports.dagster_defs.run_config import options_of

PARTITION_TAG = "dagster/partition"
RANGE_START_TAG = "dagster/asset_partition_range_start"
RANGE_END_TAG = "dagster/asset_partition_range_end"


def tagged_keys(run: DagsterRun) -> list[str]:
    """The partition key, or the range's first key, the run's tags name."""
    return [run.tags[tag] for tag in (PARTITION_TAG, RANGE_START_TAG) if tag in run.tags]


def run_partition_keys(instance: Any, run: DagsterRun, partitions_def: PartitionsDefinition, asset: str) -> list[str]:
    """The partition keys a run targeted, from its tags (single key or a range).

    A range resolves against the tenants registered now; when one of its ends is no longer registered (a
    tenant gone from crm.tenant, removed by the tenant sensor), the partitions the run planned instead."""
    tags = run.tags
    if PARTITION_TAG in tags:
        return [tags[PARTITION_TAG]]
    if RANGE_START_TAG in tags and RANGE_END_TAG in tags:
        try:
            with partition_loading_context(dynamic_partitions_store=instance):
                keys = partitions_def.get_partition_keys_in_range(
                    PartitionKeyRange(tags[RANGE_START_TAG], tags[RANGE_END_TAG])
                )
        except DagsterInvalidInvocationError:
            planned = planned_partitions(instance, run.run_id, AssetKey(asset))
            keys = [key for key in planned if key is not None]
        return sorted(str(k) for k in keys)
    return []


def run_options(run_config: Mapping[str, Any], asset: str) -> dict[str, Any]:
    """The report options a run's config named for the asset's op (config fields left unset are the defaults)."""
    return options_of((((run_config or {}).get("ops") or {}).get(asset) or {}).get("config"))


def reports_of_run(instance: Any, run: DagsterRun) -> list[str]:
    """The report assets a run targeted: its asset selection, else (a run of a whole job) its plan's steps."""
    names = [key.to_user_string() for key in (run.asset_selection or ())]
    if not names and run.execution_plan_snapshot_id:
        names = plan_step_keys(instance, run.execution_plan_snapshot_id)
    known = report_assets_by_name()
    return sorted(name for name in set(names) if name in known)
