"""The IO manager that writes report runs: one executor run (header + facts, one transaction) per partition.

The asset body hands over a `StepWork`: validated `run_request.RunRequest`s keyed by
partition key (or the `RefusedPartition` a partition's input got, or a
`TooEarlyPartition`: its period has not closed for its tenant, and nothing at all
is recorded for it), with the local period each key stands for. `handle_output` first computes the
partitions one pass can answer together (a range run's periods of one tenant: engine/multi_period.py, one
pass over the tenant's history), then executes them in partition order on one connection, each in its own
transaction with its own `report_run`
row (`dagster_run_id` = this Dagster run), and attaches metadata to each
partition's materialisation separately (its `period`: the key's local period),
through the step's per-partition asset metadata (`add_output_metadata` would copy
one dict onto every partition).

One partition's failure does not stop the others. If any failed, the step ends
with one `Failure` naming them; Dagster then records no materialisation for the
step, and the failure hook reports the committed partitions itself
(`failures.reconcile_run`), so Dagster and `report_run` agree.

Committed work is never redone: a partition the Dagster run family already
committed is skipped (`family.py`: its materialisation names that run), and each
run passes `reuse` to the executor (an overlapping request of the same question
waits for it and takes its result). A lost connection is retried for the piece
of work it cut (`retrying.py`); once the attempts are spent, the step fails with
one `Failure` naming the database and the partitions not done. The run stops
between partitions once Dagster asks (`stopping.py`).
"""

import contextlib
import dataclasses
import functools
import time
from typing import Any
from uuid import UUID

from dagster import ConfigurableIOManager, Failure, InputContext, MetadataValue, OutputContext
from pydantic import Field
from sqlalchemy import Connection, Engine
from sqlalchemy.exc import DBAPIError

from dyno_reports.core.errors import InputError
from dyno_reports.dagster_defs.dagster_private import add_partition_metadata, step_context_of
from dyno_reports.dagster_defs.family import committed_by_family, family_reuse
from dyno_reports.dagster_defs.metadata import partition_metadata
from dyno_reports.dagster_defs.resources import engine_for
from dyno_reports.dagster_defs.retrying import DatabaseOutage, LostConnection, Reconnecting, outage_failure
from dyno_reports.dagster_defs.step_work import RefusedPartition, StepWork, TooEarlyPartition
from dyno_reports.dagster_defs.stopping import RunWatch, signals_cancel_runs
from dyno_reports.engine import executor, multi_period, run_records, run_request
from dyno_reports.engine.reuse import Reuse
from dyno_reports.storage import db

FAILURES_SHOWN = 5
PROGRESS_SECONDS = 5.0


class ReportRunIOManager(ConfigurableIOManager):
    """Runs `executor.execute` per partition and records the outcome as materialisation metadata."""

    database_url: str | None = Field(
        default=None, description="SQLAlchemy URL; empty = DYNO_DATABASE_URL, else the embedded PostgreSQL"
    )
    preview_rows: int = Field(default=10, description="fact rows shown in the preview table")

    def handle_output(self, context: OutputContext, obj: StepWork) -> None:
        engine = engine_for(self.database_url)
        instance = _instance_of(context)
        watch = RunWatch(instance, context.run_id)
        runs = _PartitionRuns(engine, context, obj, self.preview_rows, family_reuse(instance, context.run_id))
        work = obj.partitions
        progress = _Progress(context, len(work))
        # One connection for every partition of the step (each still its own transaction), replaced when lost.
        with signals_cancel_runs(watch), Reconnecting(engine, context.log, watch) as database:
            runs.committed = database.run(runs.read_committed, "reading what this run family committed")
            database.run(runs.compute_passes, "reading each tenant's history once for its partitions")
            for partition_key in sorted(work):
                watch.check(f"partition {partition_key}")
                try:
                    database.run(functools.partial(runs.run, key=partition_key), f"partition {partition_key}")
                except DatabaseOutage as exc:
                    not_done = [key for key in sorted(work) if key not in runs.done]
                    raise outage_failure(exc, not_done, runs.failed, FAILURES_SHOWN) from None
                progress.step(partition_key, runs.failed)
        if runs.skipped or runs.reused:
            context.log.info(
                f"not computed again: {len(runs.skipped)} partition(s) this run family had committed, "
                f"{len(runs.reused)} answered by an overlapping run (their materialisations name those runs)"
            )
        if runs.failed:
            raise _partitions_failed(runs.failed, len(work))

    def load_input(self, context: InputContext) -> Any:
        """The upstream partition(s)' facts as a pandas DataFrame (loading.py; pandas is imported only here)."""
        from dyno_reports.dagster_defs.loading import load_facts

        return load_facts(engine_for(self.database_url), context)


class _PartitionRuns:
    """A step's partitions as they are done; kept across the retries of a lost connection, so a partition
    that committed is described again, never run again."""

    def __init__(self, engine: Engine, context: OutputContext, step: StepWork, preview_rows: int, reuse: Reuse) -> None:
        self.engine, self.context, self.preview_rows, self.reuse = engine, context, preview_rows, reuse
        self.work, self.periods = step.partitions, step.periods
        self.committed: dict[tuple[UUID, str], UUID] = {}  # by the run family, before this step started
        self.results: dict[str, executor.RunResult] = {}
        self.skipped: dict[str, UUID] = {}  # partition key -> the family's committed run
        self.reused: set[str] = set()
        self.failed: dict[str, str] = {}
        self.done: set[str] = set()
        self.tenant_names: dict[UUID, str | None] = {}  # for the whole step: a batch repeats its tenants
        self.computed: dict[str, multi_period.Computed] = {}  # partition key -> its facts from a shared pass

    def read_committed(self, conn: Connection) -> dict[tuple[UUID, str], UUID]:
        requests = [w for w in self.work.values() if isinstance(w, run_request.RunRequest)]
        report_type = requests[0].report.report_type if requests else ""
        return committed_by_family(conn, report_type, self.reuse) if requests else {}

    def compute_passes(self, conn: Connection) -> None:
        """The facts of the partitions still to run that one pass answers together (several periods of one
        tenant), one pass each; a pass cut by a lost connection is done again (LostConnection)."""
        pending = [
            (key, work)
            for key, work in sorted(self.work.items())
            if isinstance(work, run_request.RunRequest) and self._to_compute(key, work)
        ]
        keys, requests = [key for key, _ in pending], [work for _, work in pending]

        def done(group: list[int], facts: list[multi_period.Computed], seconds: float) -> None:
            lost = next((f.error for f in facts if isinstance(f, multi_period.PassFailed)), None)
            if isinstance(lost, DBAPIError) and db.is_lost_connection(lost):
                raise LostConnection(str(lost))
            self.computed |= {keys[i]: f for i, f in zip(group, facts, strict=True)}
            self.context.log.info(
                f"{len(group)} partition(s) of tenant {requests[group[0]].tenant_id} computed in one pass over "
                f"its history ({seconds:.1f} s)"
            )

        multi_period.computed_passes(self.engine, conn, requests, done=done)

    def _to_compute(self, key: str, request: run_request.RunRequest) -> bool:
        committed = (request.tenant_id, request.fingerprint()) in self.committed
        return key not in self.results and key not in self.computed and not committed

    def run(self, conn: Connection, key: str) -> None:
        work = self.work[key]
        if isinstance(work, TooEarlyPartition):  # nothing recorded: the reconciliation skips it too
            self.failed[key] = work.message
        elif isinstance(work, RefusedPartition):
            _record_refusal(self.engine, work, self.context.run_id)
            self.failed[key] = str(work.error)
        else:
            self._run_request(conn, key, dataclasses.replace(work, dagster_run_id=self.context.run_id))
        self.done.add(key)

    def _run_request(self, conn: Connection, key: str, request: run_request.RunRequest) -> None:
        committed = self.committed.get((request.tenant_id, request.fingerprint()))
        if committed is not None:  # not run again; its numbers are read back
            self.skipped[key] = committed
            self._describe(conn, key, request.tenant_id, committed, None)
            return
        result = self.results.get(key) or self._execute(conn, key, request)
        if result.succeeded:
            self._describe(conn, key, request.tenant_id, result.run_id, result)
        else:
            self.failed[key] = f"report run {result.run_id} FAILED: {result.error_message}"

    def _execute(self, conn: Connection, key: str, request: run_request.RunRequest) -> executor.RunResult:
        computed = self.computed.get(key)
        result = executor.execute(self.engine, request, connection=conn, reuse=self.reuse, computed=computed)
        if result.connection_lost:  # rolled back, or committed with its answer lost: the retry finds it
            raise LostConnection(result.error_message)
        self.results[key] = result
        if result.reused:
            self.reused.add(key)
        return result

    def _describe(
        self, conn: Connection, key: str, tenant_id: UUID, run_id: UUID, result: executor.RunResult | None
    ) -> None:
        metadata = partition_metadata(
            self.engine,
            tenant_id,
            run_id,
            self.preview_rows,
            result,
            connection=conn,
            tenant_names=self.tenant_names,
            period_label=self.periods.get(key),
        )
        _add_partition_metadata(self.context, key, metadata, len(self.work))


def _instance_of(context: OutputContext) -> Any:
    step_context = step_context_of(context)  # None outside a run (direct IO manager tests): no instance, no family
    return step_context.instance if step_context is not None else None


def _record_refusal(engine: Any, refused: RefusedPartition, dagster_run_id: str) -> None:
    with contextlib.suppress(InputError):  # not a tenant UUID: nothing a header could describe
        run_records.record_input_failure(
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
        allow_retries=False,  # refused inputs and SQL errors fail again; lost connections were retried already
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
        step_context = step_context_of(context)  # None outside a run: only one partition can be described
        if step_context is not None:
            add_partition_metadata(step_context, context.asset_key, partition_key, metadata)
            return
    if partitions == 1:
        context.add_output_metadata(metadata)
