"""Every private or undocumented Dagster API dyno_reports uses, in one place, for the pinned dagster 1.13.27.

"Private" here: imports from `dagster._...` or undocumented `dagster_postgres` modules,
attributes with a leading underscore, and `DagsterInstance` / context methods that
Dagster does not mark `@public` (not in its API docs). Each function says what it
relies on, the public alternative, and why that is not used. None of this is
covered by Dagster's deprecation policy: on any Dagster upgrade, run
dyno_reports_tests/test_dagster_private.py (it checks each use) and re-verify this
module. Costs quoted from `python -m benchmarks.dagster_private` were measured on a
temporary SQLite instance; the others name their source.
"""

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from dagster import AssetKey, DagsterEventType, DagsterRun, EventLogRecord, OutputContext, RunsFilter
from dagster._serdes import ConfigurableClassData as ConfigurableClassData
from sqlalchemy import Engine

if TYPE_CHECKING:
    # The type `define_asset_job` returns; not exported at dagster's top level (public alternative: no annotation).
    from dagster._core.definitions.unresolved_asset_job_definition import (
        UnresolvedAssetJobDefinition as UnresolvedAssetJobDefinition,
    )

# ConfigurableClassData (above) is the type of `inst_data` in a custom storage's `from_config_value`, the
# classmethod `storage: custom` in dagster.yaml calls; dagster exports no public name for it.

PINNED_DAGSTER = "1.13.27"


def postgres_storage_config(config_value: Mapping[str, Any]) -> tuple[str, Any]:
    """(postgres URL, token provider) of a `storage.postgres` config, as `DagsterPostgresStorage` reads it.

    Relies on `dagster_postgres.utils.pg_url_from_config` and `get_token_provider_from_config` (undocumented).
    Public alternative: `DagsterPostgresStorage.from_config_value`, which builds its own class, not ours;
    re-parsing the config by hand would drift from dagster-postgres's (url vs fields, IAM tokens)."""
    from dagster_postgres.utils import get_token_provider_from_config, pg_url_from_config  # only where configured

    return pg_url_from_config(config_value), get_token_provider_from_config(config_value)


def postgres_engine(postgres_url: str, token_provider: Any, **engine_kwargs: Any) -> Engine:
    """An engine built as dagster-postgres builds its own (`dagster_postgres.utils.create_pg_engine`,
    undocumented: psycopg2 URL, the token provider's password hook). Public alternative: `create_engine`,
    which would lose the token provider's handling."""
    from dagster_postgres.utils import create_pg_engine  # only where configured

    return create_pg_engine(postgres_url, token_provider, **engine_kwargs)


def replace_storage_engine(storage: Any, engine: Engine) -> None:
    """Make a dagster-postgres run, event log or schedule storage use `engine` (a pooled one).

    Relies on the storages keeping their engine in `_engine` and opening every connection from it
    (dagster-postgres 0.29.27). Public alternative: none in-process (`optimize_for_webserver` does the same
    replacement, for the webserver only, with one connection where storing a materialisation nests two).
    Not using it costs a new connection per stored event: 87 -> 34 ms per partition on a 100-tenant weekly
    batch (`python -m benchmarks.dagster_storage`, docs/scaling.md)."""
    storage._engine = engine


def step_context_of(context: OutputContext) -> Any:
    """The step's execution context behind an IO manager's `OutputContext`; None outside a run
    (an OutputContext built directly in tests raises).

    Relies on `OutputContext.step_context` (not `@public`). Public alternatives: the instance through
    `InitResourceContext.instance` (`setup_for_execution`), and per-partition metadata through the asset
    body's `context.add_asset_metadata(..., partition_key=...)`. Not used: the IO manager, not the body,
    executes each partition, so the metadata exists only in `handle_output`; `OutputContext.add_output_metadata`
    copies one dict onto every partition of the run."""
    try:
        return context.step_context
    except Exception:
        return None


def add_partition_metadata(step_context: Any, asset_key: AssetKey, partition_key: str, metadata: dict) -> None:
    """`step_context.add_asset_metadata(metadata, asset_key=..., partition_key=...)` without its range check.

    Relies on `StepExecutionContext._metadata_accumulator` and its `with_additional_asset_metadata`, which
    the public method updates after checking that the key is one of the run's partitions. That check
    resolves the whole range again (three dynamic-partition queries on fresh connections): 42 ms per call,
    i.e. per partition (benchmarks/README.md, "Where the time goes"). The key comes from this step's own
    output, so the check cannot fail. Falls back to the public method when the attribute is gone."""
    accumulator = getattr(step_context, "_metadata_accumulator", None)
    if accumulator is None or not hasattr(accumulator, "with_additional_asset_metadata"):
        step_context.add_asset_metadata(metadata, asset_key=asset_key, partition_key=partition_key)
        return
    step_context._metadata_accumulator = accumulator.with_additional_asset_metadata(
        asset_key=asset_key, metadata=metadata, partition_key=partition_key
    )


def run_group_ids(instance: Any, run_id: str) -> list[str]:
    """The ids of the runs in `run_id`'s re-execution group: its root and every run with that root.

    Relies on `DagsterInstance.get_run_group` (not `@public`), which raises `DagsterRunNotFoundError` when
    the root was deleted (passed on). Public alternative: `get_run_record_by_id` + `get_run_records` filtered
    on the `dagster/root_run_id` tag; not a cost reason (4.4 vs 6.2 ms for a family of 3 among 500 runs):
    kept because it is Dagster's own definition of the group, the one its UI shows."""
    group = instance.get_run_group(run_id)
    return [run.run_id for run in group[1]] if group else []


def backfill_status(instance: Any, backfill_id: str) -> str | None:
    """The status (a `BulkActionStatus` value: "CANCELING", "CANCELED"...) of backfill `backfill_id`, or None.

    Relies on `DagsterInstance.get_backfill` and `PartitionBackfill.status` (`dagster._core.execution.backfill`,
    private). Public alternative: GraphQL `partitionBackfillOrError`, which needs the webserver, from inside a
    run worker, before every partition."""
    backfill = instance.get_backfill(backfill_id)
    return backfill.status.value if backfill is not None else None


def mark_run_canceling(instance: Any, run: DagsterRun, message: str) -> None:
    """Record that `run` is CANCELING (a RUN_CANCELING event), so that it ends CANCELED.

    Relies on `DagsterInstance.report_run_canceling` (not `@public`). Public alternative: GraphQL
    `terminateRun`, which needs the webserver and sends the run worker (this process) a SIGINT mid-partition."""
    instance.report_run_canceling(run, message=message)


def planned_partitions(instance: Any, run_id: str, asset_key: AssetKey) -> set[str | None]:
    """The partitions of `asset_key` run `run_id` planned (its ASSET_MATERIALIZATION_PLANNED events).

    Relies on `DagsterInstance.get_asset_partitions_for_run` (not `@public`). Public alternative: none that
    selects by run (`fetch_materializations` takes an asset and partitions, not a run, and planned events are
    not materialisations)."""
    planned = instance.get_asset_partitions_for_run(run_id, of_type=DagsterEventType.ASSET_MATERIALIZATION_PLANNED)
    return set(planned.get(asset_key, set()))


def plan_step_keys(instance: Any, snapshot_id: str) -> list[str]:
    """The step keys of a run's execution plan snapshot (`DagsterRun.execution_plan_snapshot_id`).

    Relies on `DagsterInstance.get_execution_plan_snapshot` and `ExecutionPlanSnapshot.steps[].key` (not
    `@public`). Public alternative: the job's definition in the code location (`Definitions.get_job_def`),
    which needs the code loaded and gives today's job, not what the run planned."""
    return [step.key for step in instance.get_execution_plan_snapshot(snapshot_id).steps]


def run_event_records(
    instance: Any, run_id: str, of_type: DagsterEventType, limit: int | None = None
) -> list[EventLogRecord]:
    """The event log records of type `of_type` of run `run_id`, oldest first, at most `limit`.

    Relies on `DagsterInstance.get_records_for_run` (not `@public`) and its `.records`. Public alternatives
    select by asset (`fetch_materializations`) or by event type across all runs (`fetch_run_status_changes`),
    never by run: one query per partition of a run instead of one per run."""
    return list(instance.get_records_for_run(run_id, of_type=of_type, limit=limit).records)


def run_ids(instance: Any, filters: RunsFilter) -> list[str]:
    """The ids of the runs matching `filters`, newest first.

    Relies on `DagsterInstance.get_run_ids` (not `@public`). Public alternative: `get_run_records`, which loads
    each run whole (config, tags): 33 ms against 2 ms for 500 ended runs, and the sweep lists every run ended
    in its lookback (24 h) at every tick, twice."""
    return list(instance.get_run_ids(filters))


def add_run_tags(instance: Any, run_id: str, tags: Mapping[str, str]) -> None:
    """Add (or overwrite) `tags` on run `run_id`.

    Relies on `DagsterInstance.add_run_tags` (not `@public`). Public alternative: the sensor cursor, which is
    one value per sensor, not per run; sweep.py says why the sweep records done per run."""
    instance.add_run_tags(run_id, tags)
