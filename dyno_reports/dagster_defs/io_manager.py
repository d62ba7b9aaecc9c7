"""The IO manager that writes report runs: one executor run (header + facts, one transaction) per partition.

The asset body hands over validated `executor.RunRequest`s keyed by partition key
(or the `RefusedPartition` a partition's input got). `handle_output` executes
them in partition order, each in its own transaction with its own `report_run`
row (`dagster_run_id` = this Dagster run), and attaches metadata to each
partition's materialisation separately, through the step's per-partition asset
metadata (`add_output_metadata` would copy one dict onto every partition).

One partition's failure does not stop the others. If any failed, the step ends
with one `Failure` naming them; Dagster then records no materialisation for the
step, and the failure hook reports the committed partitions itself
(`failures.reconcile_run`), so Dagster and `report_run` agree.
"""

import dataclasses
from typing import Any

from dagster import ConfigurableIOManager, Failure, InputContext, MetadataValue, OutputContext
from pydantic import Field

from dyno_reports import executor, periods
from dyno_reports.dagster_defs.metadata import partition_metadata
from dyno_reports.dagster_defs.resources import engine_for
from dyno_reports.errors import InputError

FAILURES_SHOWN = 5


@dataclasses.dataclass(frozen=True)
class RefusedPartition:
    """A partition whose inputs the executor refused (e.g. a tenant no longer in crm.tenant)."""

    report_type: str
    tenant_id: str
    window: periods.Window
    options: dict[str, Any]
    error: InputError


class ReportRunIOManager(ConfigurableIOManager):
    """Runs `executor.execute` per partition and records the outcome as materialisation metadata."""

    database_url: str | None = Field(
        default=None, description="SQLAlchemy URL; empty = DYNO_DATABASE_URL, else the embedded PostgreSQL"
    )
    preview_rows: int = Field(default=10, description="fact rows shown in the markdown preview")

    def handle_output(self, context: OutputContext, obj: dict[str, executor.RunRequest | RefusedPartition]) -> None:
        engine = engine_for(self.database_url)
        failed: dict[str, str] = {}
        for partition_key in sorted(obj):
            work = obj[partition_key]
            if isinstance(work, RefusedPartition):
                failed[partition_key] = str(work.error)
                _record_refusal(engine, work, context.run_id)
                continue
            result = executor.execute(engine, dataclasses.replace(work, dagster_run_id=context.run_id))
            context.log.info(f"{partition_key}: report run {result.run_id} {result.status} ({result.fact_rows} fact rows)")
            if not result.succeeded:
                failed[partition_key] = f"report run {result.run_id} FAILED: {result.error_message}"
                continue
            metadata = partition_metadata(engine, work.tenant_id, result.run_id, self.preview_rows)
            _add_partition_metadata(context, partition_key, metadata, len(obj))
        if failed:
            raise _partitions_failed(failed, len(obj))

    def load_input(self, context: InputContext) -> Any:
        raise NotImplementedError("report facts live in reporting.<fact table>; query them by report_run.run_id")


def _record_refusal(engine: Any, refused: RefusedPartition, dagster_run_id: str) -> None:
    try:
        executor.record_input_failure(
            engine, refused.report_type, refused.tenant_id, refused.window, refused.options, str(refused.error),
            dagster_run_id=dagster_run_id,
        )
    except InputError:  # not a tenant UUID: nothing a header could describe
        pass


def _partitions_failed(failed: dict[str, str], total: int) -> Failure:
    shown = [f"{key}: {message}" for key, message in list(failed.items())[:FAILURES_SHOWN]]
    more = f" (and {len(failed) - FAILURES_SHOWN} more)" if len(failed) > FAILURES_SHOWN else ""
    return Failure(
        description=f"{len(failed)} of {total} partition(s) failed{more}: " + "; ".join(shown),
        metadata={"failed_partitions": MetadataValue.json(failed)},
    )


def _add_partition_metadata(context: OutputContext, partition_key: str, metadata: dict, partitions: int) -> None:
    if context.has_asset_key and context.has_asset_partitions:
        try:
            step_context = context.step_context
        except Exception:  # built outside a run (direct IO manager tests): only one partition can be described
            step_context = None
        if step_context is not None:
            step_context.add_asset_metadata(metadata, asset_key=context.asset_key, partition_key=partition_key)
            return
    if partitions == 1:
        context.add_output_metadata(metadata)
