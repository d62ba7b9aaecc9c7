"""The IO manager that writes report runs: one executor run (header + facts, one transaction) per partition.

The asset body hands over validated `executor.RunRequest`s keyed by partition key
(or the `RefusedPartition` a partition's input got). `handle_output` executes
them in partition order on one connection, each in its own transaction with its own `report_run`
row (`dagster_run_id` = this Dagster run), and attaches metadata to each
partition's materialisation separately, through the step's per-partition asset
metadata (`add_output_metadata` would copy one dict onto every partition).

One partition's failure does not stop the others. If any failed, the step ends
with one `Failure` naming them; Dagster then records no materialisation for the
step, and the failure hook reports the committed partitions itself
(`failures.reconcile_run`), so Dagster and `report_run` agree.
"""

import contextlib
import dataclasses
import time
from typing import Any
from uuid import UUID

from dagster import AssetKey, ConfigurableIOManager, Failure, InputContext, MetadataValue, OutputContext
from pydantic import Field

from dyno_reports import db, executor, periods
from dyno_reports.dagster_defs.metadata import partition_metadata
from dyno_reports.dagster_defs.resources import engine_for
from dyno_reports.errors import InputError

FAILURES_SHOWN = 5
PROGRESS_SECONDS = 5.0


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
    preview_rows: int = Field(default=10, description="fact rows shown in the preview table")

    def handle_output(self, context: OutputContext, obj: dict[str, executor.RunRequest | RefusedPartition]) -> None:
        engine = engine_for(self.database_url)
        failed: dict[str, str] = {}
        progress = _Progress(context, len(obj))
        tenant_names: dict[UUID, str | None] = {}  # for the whole step: a batch repeats its tenants
        # One connection for every partition of the step (each still its own transaction); transient
        # connection failures are retried before the first one.
        with db.connect(engine) as conn:
            for partition_key in sorted(obj):
                work = obj[partition_key]
                if isinstance(work, RefusedPartition):
                    failed[partition_key] = str(work.error)
                    _record_refusal(engine, work, context.run_id)
                else:
                    request = dataclasses.replace(work, dagster_run_id=context.run_id)
                    result = executor.execute(engine, request, connection=conn)
                    if result.succeeded:
                        metadata = partition_metadata(
                            engine,
                            work.tenant_id,
                            result.run_id,
                            self.preview_rows,
                            result,
                            connection=conn,
                            tenant_names=tenant_names,
                        )
                        _add_partition_metadata(context, partition_key, metadata, len(obj))
                    else:
                        failed[partition_key] = f"report run {result.run_id} FAILED: {result.error_message}"
                progress.step(partition_key, failed)
        if failed:
            raise _partitions_failed(failed, len(obj))

    def load_input(self, context: InputContext) -> Any:
        """The upstream partition(s)' facts as a pandas DataFrame (loading.py; pandas is imported only here)."""
        from dyno_reports.dagster_defs.loading import load_facts

        return load_facts(engine_for(self.database_url), context)


def _record_refusal(engine: Any, refused: RefusedPartition, dagster_run_id: str) -> None:
    with contextlib.suppress(InputError):  # not a tenant UUID: nothing a header could describe
        executor.record_input_failure(
            engine,
            refused.report_type,
            refused.tenant_id,
            refused.window,
            refused.options,
            str(refused.error),
            dagster_run_id=dagster_run_id,
        )


def _partitions_failed(failed: dict[str, str], total: int) -> Failure:
    shown = [f"{key}: {message}" for key, message in list(failed.items())[:FAILURES_SHOWN]]
    more = f" (and {len(failed) - FAILURES_SHOWN} more)" if len(failed) > FAILURES_SHOWN else ""
    return Failure(
        description=f"{len(failed)} of {total} partition(s) failed{more}: " + "; ".join(shown),
        metadata={"failed_partitions": MetadataValue.json(failed)},
        allow_retries=False,  # refused inputs and SQL errors fail again: only DatabaseUnavailable is retried
    )


class _Progress:
    """One log line every PROGRESS_SECONDS and one at the end: each line is an event Dagster stores (~17 ms)."""

    def __init__(self, context: OutputContext, total: int) -> None:
        self.context, self.total, self.done = context, total, 0
        self.started = self.last = time.monotonic()

    def step(self, partition_key: str, failed: dict[str, str]) -> None:
        self.done += 1
        now = time.monotonic()
        if self.done == self.total or now - self.last >= PROGRESS_SECONDS:
            self.last = now
            self.context.log.info(
                f"{self.done}/{self.total} partition(s) done in {now - self.started:.1f} s "
                f"({len(failed)} failed or refused); last {partition_key}"
            )


def _add_partition_metadata(context: OutputContext, partition_key: str, metadata: dict, partitions: int) -> None:
    if context.has_asset_key and context.has_asset_partitions:
        try:
            step_context = context.step_context
        except Exception:  # built outside a run (direct IO manager tests): only one partition can be described
            step_context = None
        if step_context is not None:
            _add_asset_metadata(step_context, context.asset_key, partition_key, metadata)
            return
    if partitions == 1:
        context.add_output_metadata(metadata)


def _add_asset_metadata(step_context: Any, asset_key: AssetKey, partition_key: str, metadata: dict) -> None:
    """`step_context.add_asset_metadata`, without re-deriving the run's partition range on every call.

    The public method checks that the key is one of the run's partitions by loading
    the whole range again: three dynamic-partition queries, each on a fresh
    connection of Dagster's storage, about 40 ms per partition (measured in
    benchmarks/dagster_ops). The key comes from this step's own output context,
    so that check cannot fail here; the accumulator below is what the public
    method then updates (dagster 1.13, pinned). Falls back to the public method.
    """
    accumulator = getattr(step_context, "_metadata_accumulator", None)
    if accumulator is None or not hasattr(accumulator, "with_additional_asset_metadata"):
        step_context.add_asset_metadata(metadata, asset_key=asset_key, partition_key=partition_key)
        return
    step_context._metadata_accumulator = accumulator.with_additional_asset_metadata(
        asset_key=asset_key, metadata=metadata, partition_key=partition_key
    )
