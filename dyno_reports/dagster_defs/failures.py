"""One truth after any failure or kill: Dagster's materialisations and `report_run` agree.

The invariant, for every partition a Dagster run targeted, once the failure hook
or the reconciliation sweep has run: the partition is materialised in Dagster with a report
run_id in its metadata exactly when its latest Dagster-launched `report_run` is
SUCCEEDED and carries that run_id; a partition that never ran has a FAILED
header; no header stays IN_PROGRESS. `reconcile_run` restores it:

- partitions with no header from this run get a FAILED one (`dagster_run_id` set), unless a run
  of its family (`family.py`: its root and every re-execution of it) committed them: a re-execution
  skips those, and a run reconciled late must not fail what its retry has done since;
- except a partition whose period had not closed for its tenant when the Dagster run was created
  (its end, in the tenant's calendar, after the run's creation, or less than the CRM's longest write
  before it: `PartitionTarget.due_at`): such a run was asked too early,
  the asset refused it with nothing written, and nothing is written for it here either; it is not a
  partition that "never ran", it was never due;
- IN_PROGRESS headers of the run become FAILED (a transaction cut off before its
  rollback reached the server);
- committed SUCCEEDED partitions that Dagster never materialised (the step failed
  on another partition, or the run worker was killed between a commit and the
  step's end) are reported as runless materialisations with the same metadata.

The failure hook calls it inside the run (errors in the body or IO manager); the
reconciliation sweep (`sweep.py`) calls it for every run that ended, including runs
whose process died, where hooks never fire, until it succeeds. It is idempotent, and
one reconciliation of a run runs at a time (an advisory lock on its id). Its
queries select by `dagster_run_id`, which spans the tenants of one batch run; each
row then carries its own tenant. A run's partitions resolve in their tenants'
calendars (`slots.py`, one query for the calendars).
"""

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

from dagster import (
    AssetKey,
    AssetMaterialization,
    AssetRecordsFilter,
    DagsterEventType,
    DagsterRun,
    HookContext,
    MetadataValue,
    failure_hook,
)
from sqlalchemy import Engine, Row, and_, exists, func, select, update
from sqlalchemy.orm import aliased

from dyno_reports.core.errors import InputError
from dyno_reports.dagster_defs.cadences import asset_named
from dyno_reports.dagster_defs.dagster_private import run_event_records
from dyno_reports.dagster_defs.family import family_reuse
from dyno_reports.dagster_defs.metadata import partition_metadata
from dyno_reports.dagster_defs.partitions import report_partitions, start_covering
from dyno_reports.dagster_defs.run_config import options_of
from dyno_reports.dagster_defs.run_partitions import run_partition_keys, tagged_keys
from dyno_reports.dagster_defs.slots import PartitionTarget, targets_of
from dyno_reports.engine import run_records
from dyno_reports.storage.tables import report_run

DB_RESOURCE = "dyno_db"
# The class of the two-int advisory key space that reconciliation locks use (reuse.QUESTION_LOCK_CLASS is another).
RECONCILE_LOCK_CLASS = 727_110_022


def reconcile_run(
    engine: Engine, instance: Any, run: DagsterRun, asset: str, message: str, options: Any = None
) -> tuple[int, int]:
    """Restore the invariant for `run`'s partitions of the report asset `asset` (a report_type, or
    `<report_type>_quarterly`...); returns (headers marked FAILED, materialisations reported)."""
    target = asset_named(asset)
    if target is None:
        return 0, 0
    partitions_def = report_partitions(target.cadence, start_covering(tagged_keys(run)))
    keys = run_partition_keys(instance, run, partitions_def, asset)
    with engine.connect() as conn:
        targets = targets_of(conn, target.cadence, keys)
    reuse = family_reuse(instance, run.run_id)
    due = {key: t for key, t in targets.items() if t.due_at(reuse.since or datetime.now(UTC))}
    report_type = target.report.report_type
    with _one_at_a_time(engine, run):
        failed = _fail_unrecorded(engine, run, reuse.family, report_type, due, message, options)
        reported = _report_committed(engine, instance, run, asset, report_type, targets)
    return failed, reported


@contextmanager
def _one_at_a_time(engine: Engine, run: DagsterRun) -> Iterator[None]:
    """The failure hook and a sweep tick (or a tick and one that timed out) may meet on one run: they take turns
    on a transaction-scoped advisory lock on its id, held by a connection of its own, and the second finds the
    first's headers instead of adding its own."""
    with engine.begin() as conn:
        conn.execute(select(func.pg_advisory_xact_lock(RECONCILE_LOCK_CLASS, func.hashtext(run.run_id))))
        yield


def _fail_unrecorded(
    engine: Engine,
    run: DagsterRun,
    family: frozenset[str],
    report_type: str,
    targets: dict[str, PartitionTarget],
    message: str,
    options: Any,
) -> int:
    with engine.begin() as conn:
        changed = conn.execute(
            update(report_run)
            .where(
                report_run.c.dagster_run_id == run.run_id,
                report_run.c.report_type == report_type,
                report_run.c.status == "IN_PROGRESS",
            )
            .values(status="FAILED", error_message=run_records.storable_message(message))
        ).rowcount
        recorded = {
            (str(tenant_id), period_start)
            for tenant_id, period_start, dagster_run_id, status in conn.execute(
                select(
                    report_run.c.tenant_id, report_run.c.period_start, report_run.c.dagster_run_id, report_run.c.status
                ).where(report_run.c.dagster_run_id.in_(sorted(family)), report_run.c.report_type == report_type)
            )
            if dagster_run_id == run.run_id or status == "SUCCEEDED"  # a relative's commit counts
        }
    for target in targets.values():
        if (target.tenant_id, target.period_start) in recorded:
            continue
        try:
            run_records.record_input_failure(
                engine, report_type, target.tenant_id, target.window, options, message, dagster_run_id=run.run_id
            )
        except InputError:  # not a tenant UUID: nothing a header could describe
            continue
        changed += 1
    return changed


def _latest_succeeded(engine: Engine, run: DagsterRun, report_type: str) -> Sequence[Row[Any, Any, Any]]:
    """SUCCEEDED headers of `run` that no later Dagster-launched run of the same partition superseded."""
    newer = aliased(report_run)
    with engine.connect() as conn:
        return conn.execute(
            select(report_run.c.run_id, report_run.c.tenant_id, report_run.c.period_start).where(
                report_run.c.dagster_run_id == run.run_id,
                report_run.c.report_type == report_type,
                report_run.c.status == "SUCCEEDED",
                ~exists().where(
                    and_(
                        newer.c.tenant_id == report_run.c.tenant_id,
                        newer.c.report_type == report_run.c.report_type,
                        newer.c.period_start.is_not_distinct_from(report_run.c.period_start),
                        newer.c.period_end == report_run.c.period_end,
                        newer.c.dagster_run_id.is_not(None),
                        newer.c.generated_at > report_run.c.generated_at,
                    )
                ),
            )
        ).all()


def _report_committed(
    engine: Engine, instance: Any, run: DagsterRun, asset: str, report_type: str, targets: dict[str, PartitionTarget]
) -> int:
    key_of = {(t.tenant_id, t.period_start): k for k, t in targets.items()}
    asset_key = AssetKey(asset)
    by_run = _materialised_by_run(instance, run, asset_key)
    reported = 0
    for header in _latest_succeeded(engine, run, report_type):
        partition_key = key_of.get((str(header.tenant_id), header.period_start))
        if partition_key is None or str(header.run_id) in by_run:
            continue
        latest = instance.fetch_materializations(AssetRecordsFilter(asset_key, [partition_key]), limit=1).records
        metadata = latest[0].asset_materialization.metadata if latest else {}
        if "run_id" in metadata and metadata["run_id"].value == str(header.run_id):
            continue
        event_metadata = partition_metadata(
            engine, header.tenant_id, header.run_id, period_label=targets[partition_key].described()
        )
        event_metadata["dagster_run_id"] = MetadataValue.text(run.run_id)
        instance.report_runless_asset_event(
            AssetMaterialization(
                asset_key=asset_key,
                partition=partition_key,
                metadata=event_metadata,
                description=f"committed by Dagster run {run.run_id}, which then failed",
            )
        )
        reported += 1
    return reported


def _materialised_by_run(instance: Any, run: DagsterRun, asset_key: AssetKey) -> set[str]:
    """The report run_ids `run` itself materialised: one event-log query, where a SUCCESS run of N
    partitions would otherwise need N (one per partition's latest materialisation)."""
    records = run_event_records(instance, run.run_id, DagsterEventType.ASSET_MATERIALIZATION)
    materialised = set()
    for record in records:
        event = record.event_log_entry.asset_materialization
        if event is not None and event.asset_key == asset_key and "run_id" in event.metadata:
            materialised.add(str(event.metadata["run_id"].value))
    return materialised


@failure_hook(required_resource_keys={DB_RESOURCE})
def report_failure_hook(context: HookContext) -> None:
    """Body or IO manager failed: FAILED headers for the rest, materialisations for what committed."""
    asset = context.op.name
    if asset_named(asset) is None:
        return
    run = context.instance.get_run_by_id(context.run_id)
    if run is None:
        return
    message = run_records.describe_error(context.op_exception) if context.op_exception else "Dagster step failed"
    options = options_of(context.op_config)
    failed, reported = reconcile_run(context.resources.dyno_db.engine(), context.instance, run, asset, message, options)
    context.log.info(
        f"{asset}: {failed} FAILED report_run header(s) recorded, "
        f"{reported} committed partition(s) reported as materialised, for Dagster run {context.run_id}"
    )
