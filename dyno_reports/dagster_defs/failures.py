"""Failure bookkeeping: every partition of a failed Dagster run ends with a FAILED `report_run` header.

- The failure hook (on every report asset) covers errors in the asset body (e.g.
  invalid options, unknown tenant) and in the IO manager.
- The run failure / cancel sensors cover runs whose process died or was killed,
  where hooks never fire.
Both call `fail_run_partitions`, which is idempotent: partitions that already
have a header from this Dagster run (the executor records its own FAILED runs)
are left alone; IN_PROGRESS headers of the run become FAILED; the rest get a
FAILED header inserted with `dagster_run_id` set.
"""

from collections.abc import Mapping
from typing import Any

from dagster import (
    DagsterRun,
    DagsterRunStatus,
    HookContext,
    PartitionKeyRange,
    PartitionsDefinition,
    RunStatusSensorContext,
    SkipReason,
    failure_hook,
    partition_loading_context,
    run_failure_sensor,
    run_status_sensor,
)
from sqlalchemy import Engine, select, update

from dyno_reports import executor, periods
from dyno_reports.errors import InputError
from dyno_reports.dagster_defs.partitions import report_partitions, start_date, target_of
from dyno_reports.dagster_defs.resources import ReportDatabase
from dyno_reports.reports import REGISTRY
from dyno_reports.storage.tables import report_run

DB_RESOURCE = "dyno_db"
PARTITION_TAG = "dagster/partition"
RANGE_START_TAG = "dagster/asset_partition_range_start"
RANGE_END_TAG = "dagster/asset_partition_range_end"


def run_partition_keys(instance: Any, run: DagsterRun, partitions_def: PartitionsDefinition) -> list[str]:
    """The partition keys a run targeted, from its tags (single key or a range)."""
    tags = run.tags
    if PARTITION_TAG in tags:
        return [tags[PARTITION_TAG]]
    if RANGE_START_TAG in tags and RANGE_END_TAG in tags:
        with partition_loading_context(dynamic_partitions_store=instance):
            keys = partitions_def.get_partition_keys_in_range(PartitionKeyRange(tags[RANGE_START_TAG], tags[RANGE_END_TAG]))
        return sorted(str(k) for k in keys)
    return []


def run_options(run_config: Mapping[str, Any], report_type: str) -> Any:
    return (((run_config or {}).get("ops") or {}).get(report_type) or {}).get("config", {}).get("options")


def fail_run_partitions(
    engine: Engine, instance: Any, run: DagsterRun, report_type: str, message: str, options: Any = None
) -> int:
    """Leave a FAILED header for every partition of `run` lacking one; returns how many headers changed."""
    partitions_def = report_partitions(REGISTRY[report_type].cadence, start_date())
    with engine.begin() as conn:
        changed = conn.execute(
            update(report_run)
            .where(report_run.c.dagster_run_id == run.run_id, report_run.c.report_type == report_type,
                   report_run.c.status == "IN_PROGRESS")
            .values(status="FAILED", error_message=message[: executor.ERROR_MESSAGE_LIMIT])
        ).rowcount
        recorded = {
            (str(t), s)
            for t, s in conn.execute(
                select(report_run.c.tenant_id, report_run.c.period_start).where(
                    report_run.c.dagster_run_id == run.run_id, report_run.c.report_type == report_type
                )
            )
        }
    for key in run_partition_keys(instance, run, partitions_def):
        target = target_of(partitions_def, key)
        if (target.tenant_id, target.period_start) in recorded:
            continue
        window = periods.Window(target.period_start, target.period_end)
        try:
            executor.record_input_failure(
                engine, report_type, target.tenant_id, window, options, message, dagster_run_id=run.run_id
            )
        except InputError:  # not a tenant UUID: nothing a header could describe
            continue
        changed += 1
    return changed


@failure_hook(required_resource_keys={DB_RESOURCE})
def report_failure_hook(context: HookContext) -> None:
    """Body or IO manager failed: record FAILED headers for the partitions still lacking one."""
    report_type = context.op.name
    if report_type not in REGISTRY:
        return
    run = context.instance.get_run_by_id(context.run_id)
    message = executor.describe_error(context.op_exception) if context.op_exception else "Dagster step failed"
    options = (context.op_config or {}).get("options")
    changed = fail_run_partitions(context.resources.dyno_db.engine(), context.instance, run, report_type, message, options)
    context.log.info(f"{report_type}: {changed} FAILED report_run header(s) recorded for Dagster run {context.run_id}")


def _reap(context: RunStatusSensorContext, dyno_db: ReportDatabase, message: str):
    run = context.dagster_run
    reports = [key.to_user_string() for key in (run.asset_selection or ()) if key.to_user_string() in REGISTRY]
    changed = sum(
        fail_run_partitions(dyno_db.engine(), context.instance, run, report_type, message, run_options(run.run_config, report_type))
        for report_type in reports
    )
    return SkipReason(f"{changed} report_run header(s) marked FAILED for Dagster run {run.run_id}")


@run_failure_sensor(name="report_run_failure_reaper", monitor_all_code_locations=False, minimum_interval_seconds=30)
def report_run_failure_reaper(context: RunStatusSensorContext, dyno_db: ReportDatabase):
    """A failed run (including a process killed and then failed by run monitoring): FAILED headers."""
    reason = context.failure_event.message if context.failure_event else "unknown"
    return _reap(context, dyno_db, f"Dagster run {context.dagster_run.run_id} failed: {reason}")


@run_status_sensor(run_status=DagsterRunStatus.CANCELED, name="report_run_cancel_reaper", minimum_interval_seconds=30)
def report_run_cancel_reaper(context: RunStatusSensorContext, dyno_db: ReportDatabase):
    """A canceled (terminated) run: FAILED headers for its partitions."""
    return _reap(context, dyno_db, f"Dagster run {context.dagster_run.run_id} was canceled")
