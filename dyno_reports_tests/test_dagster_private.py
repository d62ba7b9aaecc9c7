"""What dagster_defs/dagster_private.py relies on still holds in the pinned Dagster (no DB: in-memory instance).

Each private or undocumented use is checked twice where it can be: the symbol and its
signature as the module calls it, and the behaviour, on an ephemeral (in-memory)
instance and an in-process run. A failure here after a Dagster upgrade means: re-verify
dagster_private.py against the new release before anything else.
"""

import inspect
import time
import uuid

import dagster
import dagster_postgres
import pytest
from dagster import (
    AssetExecutionContext,
    AssetKey,
    ConfigurableIOManager,
    DagsterEventType,
    DagsterInstance,
    DagsterRun,
    DagsterRunStatus,
    InputContext,
    OutputContext,
    RunsFilter,
    StaticPartitionsDefinition,
    asset,
    build_output_context,
    define_asset_job,
    materialize,
)
from sqlalchemy import Engine

from dyno_reports.dagster_defs import dagster_private as private

UPGRADE = "re-verify dyno_reports/dagster_defs/dagster_private.py (every private Dagster use) on upgrade"
PARTITIONS = StaticPartitionsDefinition(["a", "b"])
RANGE_TAGS = {"dagster/asset_partition_range_start": "a", "dagster/asset_partition_range_end": "b"}


def test_the_pinned_versions_are_the_ones_verified():
    assert dagster.__version__ == private.PINNED_DAGSTER == "1.13.27", f"dagster {dagster.__version__}: {UPGRADE}"
    assert dagster_postgres.__version__ == "0.29.27", f"dagster-postgres {dagster_postgres.__version__}: {UPGRADE}"


@pytest.mark.parametrize(
    ("method", "parameters"),
    [
        ("get_run_group", ["run_id"]),
        ("get_backfill", ["backfill_id"]),
        ("report_run_canceling", ["run", "message"]),
        ("get_asset_partitions_for_run", ["run_id", "of_type"]),
        ("get_execution_plan_snapshot", ["snapshot_id"]),
        ("get_records_for_run", ["run_id", "cursor", "of_type", "limit", "ascending"]),
        ("get_run_ids", ["filters", "cursor", "limit"]),
        ("add_run_tags", ["run_id", "new_tags"]),
    ],
)
def test_instance_methods_keep_their_signatures(method, parameters):
    assert list(inspect.signature(getattr(DagsterInstance, method)).parameters)[1:] == parameters, UPGRADE


def test_postgres_storages_keep_their_engine_in_underscore_engine():
    from dagster_postgres.event_log import PostgresEventLogStorage
    from dagster_postgres.run_storage import PostgresRunStorage
    from dagster_postgres.schedule_storage import PostgresScheduleStorage

    connects = {PostgresRunStorage: "connect", PostgresEventLogStorage: "_connect", PostgresScheduleStorage: "connect"}
    for storage, connect in connects.items():  # every connection comes from `_engine`, set in __init__
        assert "self._engine = create_pg_engine(" in inspect.getsource(storage.__init__), (storage, UPGRADE)
        assert "return create_pg_connection(self._engine)" in inspect.getsource(vars(storage)[connect]), UPGRADE


def test_postgres_config_and_engine_helpers():
    url, token_provider = private.postgres_storage_config({"postgres_url": "postgresql+psycopg2://u:p@h:5432/d"})
    assert (url, token_provider) == ("postgresql+psycopg2://u:p@h:5432/d", None)
    engine = private.postgres_engine(url, None, pool_size=2, pool_pre_ping=True)  # built lazily: no connection
    assert isinstance(engine, Engine) and engine.pool.size() == 2  # type: ignore[attr-defined]
    engine.dispose()
    assert {"module_name", "class_name", "config_yaml"} <= set(private.ConfigurableClassData._fields)


def test_define_asset_job_returns_the_unresolved_type_we_annotate():
    from dagster._core.definitions.unresolved_asset_job_definition import UnresolvedAssetJobDefinition

    assert isinstance(define_asset_job("j", selection=["x"]), UnresolvedAssetJobDefinition), UPGRADE


class PerPartitionIOManager(ConfigurableIOManager):
    """Describes each partition of a range run separately, as the report IO manager does."""

    def handle_output(self, context: OutputContext, obj: object) -> None:
        step_context = private.step_context_of(context)
        assert step_context is not None and step_context.instance is not None
        # Else add_partition_metadata falls back to the public method, which the checks below cannot tell apart.
        assert hasattr(step_context._metadata_accumulator, "with_additional_asset_metadata"), UPGRADE
        for key in sorted(context.asset_partition_keys):
            private.add_partition_metadata(step_context, context.asset_key, key, {"partition": key})

    def load_input(self, context: InputContext) -> object:
        raise NotImplementedError


@asset(partitions_def=PARTITIONS, io_manager_key="per_partition")
def private_probe(context: AssetExecutionContext) -> int:
    return len(context.partition_keys)


@pytest.fixture(scope="module")
def ran() -> tuple[DagsterInstance, str]:
    instance = DagsterInstance.ephemeral()
    result = materialize(
        [private_probe], instance=instance, resources={"per_partition": PerPartitionIOManager()}, tags=RANGE_TAGS
    )
    assert result.success
    return instance, result.run_id


def test_step_context_carries_per_partition_metadata(ran):
    instance, _run_id = ran
    for key in ("a", "b"):
        records = instance.fetch_materializations(dagster.AssetRecordsFilter(AssetKey("private_probe"), [key]), limit=1)
        assert records.records[0].asset_materialization.metadata["partition"].value == key, UPGRADE
    assert private.step_context_of(build_output_context()) is None  # outside a run


def test_run_reading_helpers(ran):
    instance, run_id = ran
    run = _run(instance, run_id)
    assert run.execution_plan_snapshot_id is not None
    assert private.plan_step_keys(instance, run.execution_plan_snapshot_id) == ["private_probe"], UPGRADE
    assert private.planned_partitions(instance, run_id, AssetKey("private_probe")) == {"a", "b"}, UPGRADE
    materialized = private.run_event_records(instance, run_id, DagsterEventType.ASSET_MATERIALIZATION)
    assert sorted(str(r.partition_key) for r in materialized) == ["a", "b"]
    assert len(private.run_event_records(instance, run_id, DagsterEventType.ASSET_MATERIALIZATION, limit=1)) == 1
    assert private.run_ids(instance, RunsFilter(statuses=[DagsterRunStatus.SUCCESS])) == [run_id], UPGRADE


def test_run_group_tags_and_canceling():
    instance = DagsterInstance.ephemeral()
    root = instance.add_run(DagsterRun(job_name="j", run_id=str(uuid.uuid4())))
    tags = {"dagster/root_run_id": root.run_id, "dagster/parent_run_id": root.run_id}  # a re-execution's
    child = DagsterRun(
        job_name="j", run_id=str(uuid.uuid4()), tags=tags, root_run_id=root.run_id, parent_run_id=root.run_id
    )
    instance.add_run(child)
    assert sorted(private.run_group_ids(instance, child.run_id)) == sorted([root.run_id, child.run_id]), UPGRADE
    private.add_run_tags(instance, child.run_id, {"dyno/reconciled": "FAILURE"})
    assert _run(instance, child.run_id).tags["dyno/reconciled"] == "FAILURE", UPGRADE
    private.mark_run_canceling(instance, child, "backfill cancelled")
    assert _run(instance, child.run_id).status == DagsterRunStatus.CANCELING, UPGRADE


def _run(instance: DagsterInstance, run_id: str) -> DagsterRun:
    run = instance.get_run_by_id(run_id)
    assert run is not None
    return run


def test_backfill_status_values():
    from dagster._core.execution.backfill import BulkActionStatus, PartitionBackfill

    instance = DagsterInstance.ephemeral()
    assert private.backfill_status(instance, "missing") is None
    for status in (BulkActionStatus.CANCELING, BulkActionStatus.CANCELED):
        backfill_id = f"b{status.value.lower()}"
        instance.add_backfill(
            PartitionBackfill(backfill_id, status, from_failure=False, tags={}, backfill_timestamp=time.time())
        )
        assert private.backfill_status(instance, backfill_id) == status.value, UPGRADE
