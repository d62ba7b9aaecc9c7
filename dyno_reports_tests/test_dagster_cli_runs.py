"""Runs made outside Dagster reported as materialisations (real PostgreSQL, in-process Dagster, temporary instance).

`report_runs_from_cli_sensor` (dagster_defs/cli_runs.py) is evaluated with
`build_sensor_context`; its events are stored in the instance as the daemon does
(`report_runless_asset_event`), then read back with `fetch_materializations`.
"CLI runs" are `executor.execute` runs without a Dagster run id, as `dyno-reports run` makes them.
"""

import hashlib
import uuid
from datetime import timedelta

import pandas as pd
import pytest
from dagster import (
    AssetIn,
    AssetKey,
    AssetRecordsFilter,
    DagsterEventType,
    DefaultSensorStatus,
    SensorResult,
    SkipReason,
    TableMetadataValue,
    asset,
    build_sensor_context,
    materialize,
)
from sqlalchemy import insert

from dyno_reports.core import periods
from dyno_reports.dagster_defs.assets import report_assets
from dyno_reports.dagster_defs.cli_runs import cli_runs_sensor
from dyno_reports.dagster_defs.partitions import report_partitions
from dyno_reports.dagster_defs.resources import ReportDatabase
from dyno_reports.engine import executor, run_records, run_request
from dyno_reports.reports import registry
from dyno_reports.storage.tables import report_run
from dyno_reports_tests.conftest import url_string
from dyno_reports_tests.support.dagster import instance_with_tenants, report_resources
from dyno_reports_tests.support.history import DEAL_IDS, PIPELINE_IDS, T0, TenantData, load
from dyno_reports_tests.support.knowledge import knowledge
from dyno_reports_tests.support.reaper import fail_and_reap

D = timedelta(days=1)
START = "2025-01-01"
REPORT = "pipeline_overview"  # weekly
NO_SETTLE = timedelta(0)


def tenant_with_deals(engine) -> str:
    data = TenantData()
    lead, proposal, won, _lost = data.add_pipeline(PIPELINE_IDS[0], ["open", "open", "won", "lost"])
    data.add_deal(DEAL_IDS[0], [(T0 - 3 * D, lead, 100), (T0 + D, proposal, "250.55")])
    data.add_deal(DEAL_IDS[1], [(T0 - 10 * D, lead, 40)])
    data.add_deal(DEAL_IDS[2], [(T0 - 20 * D, lead, 70), (T0 + 2 * D, won, 70)])
    load(engine, data)
    return str(data.tenant_id)


@pytest.fixture(scope="module")
def tenant(engine) -> str:
    return tenant_with_deals(engine)


@pytest.fixture(scope="module")
def unregistered(engine) -> str:
    """A crm.tenant that is not (yet) a `tenant` partition of the instance."""
    return tenant_with_deals(engine)


@pytest.fixture
def url(database_url) -> str:
    return url_string(database_url)


@pytest.fixture
def instance(tenant):
    with instance_with_tenants(tenant) as instance:
        yield instance


def cli_run(engine, tenant, start, end, report_type=REPORT, options=None):
    """A run as `dyno-reports run` makes it: no Dagster run id."""
    with engine.connect() as conn:
        request = run_request.build_request(
            conn, report_type, tenant, period_start=start, period_end=end, options=options
        )
    result = executor.execute(engine, request)
    assert result.succeeded and request.dagster_run_id is None
    return result.run_id


def tick(url, instance, cursor, settle=NO_SETTLE, batch=500):
    """One evaluation; its events stored as the sensor daemon stores them. Returns (result, the next cursor)."""
    resources = {"dyno_db": ReportDatabase(database_url=url)}
    with build_sensor_context(instance=instance, cursor=cursor, resources=resources) as context:
        result = cli_runs_sensor(START, settle=settle, batch=batch)(context)
    if isinstance(result, SensorResult):
        for event in result.asset_events:
            instance.report_runless_asset_event(event)
        return result, result.cursor
    return result, cursor


def caught_up(url, instance) -> str | None:
    """A cursor past every run of earlier tests (the module shares one database)."""
    return tick(url, instance, None)[1]


def latest(instance, partition_key, report_type=REPORT):
    records = instance.fetch_materializations(AssetRecordsFilter(AssetKey(report_type), [partition_key]), limit=5)
    return [r.asset_materialization for r in records.records]


def test_the_sensor_is_on_by_default_in_the_definitions():
    from dyno_reports.definitions import defs

    sensor_def = defs.get_repository_def().get_sensor_def("report_runs_from_cli_sensor")
    assert sensor_def.default_status == DefaultSensorStatus.RUNNING


def test_a_cli_run_of_a_weekly_partition_is_reported_once_with_its_run_id(url, engine, tenant, instance):
    cursor = caught_up(url, instance)
    run_id = cli_run(engine, tenant, T0, T0 + 7 * D)
    month_run = cli_run(engine, tenant, T0 - D, T0 + 29 * D, report_type="win_loss")  # June: a monthly report's
    key, month_key = f"2025-06-02|{tenant}", f"2025-06-01|{tenant}"

    result, cursor = tick(url, instance, cursor)

    assert {e.partition for e in result.asset_events} == {key, month_key}
    assert result.skip_reason.skip_message == "2 CLI run(s) read: 2 reported as materialisations, 0 skipped"
    (stored,) = latest(instance, key)  # round trip through the instance's event storage
    assert stored.metadata["run_id"].value == str(run_id) and stored.metadata["source"].value == "cli"
    assert stored.metadata["dagster/row_count"].value == 2 and stored.metadata["deal_count"].value == 2
    assert stored.metadata["options"].value == {"include_closed": False, "pipeline_ids": None}
    assert isinstance(stored.metadata["preview"], TableMetadataValue)
    assert stored.description.startswith(f"report run {run_id} made outside Dagster")
    assert latest(instance, month_key, "win_loss")[0].metadata["run_id"].value == str(month_run)

    again, _ = tick(url, instance, cursor)  # nothing new since
    assert isinstance(again, SkipReason) and again.skip_message == "no new report run made outside Dagster"
    reset, _ = tick(url, instance, None)  # a reset cursor reads every run again and reports none twice
    assert reset.asset_events == [] and len(latest(instance, key)) == 1


def so_far_run(engine, tenant, start, end) -> uuid.UUID:
    """A SUCCEEDED header of a run made before its period ended (`input_params.so_far`), written directly."""
    run_id = uuid.uuid4()
    options = registry()[REPORT].options_from(None).canonical()
    with engine.begin() as conn:
        conn.execute(
            insert(report_run).values(
                run_id=run_id,
                tenant_id=uuid.UUID(tenant),
                report_type=REPORT,
                period_start=start,
                period_end=end,
                period_grain="week",
                input_params={"options": options, "period_grain": "week", "so_far": True},
                input_fingerprint=hashlib.sha256(run_id.bytes).hexdigest(),
                status="SUCCEEDED",
                **knowledge(start),
            )
        )
    return run_id


def test_runs_that_are_not_one_default_partition_are_skipped_and_counted(url, engine, tenant, unregistered, instance):
    cursor = caught_up(url, instance)
    week = T0 + 7 * D
    cli_run(engine, tenant, week, week + 7 * D, options={"include_closed": True})  # options
    cli_run(engine, tenant, week, week + 3 * D)  # custom window
    cli_run(engine, tenant, week + D, week + 8 * D)  # seven days from a Tuesday
    cli_run(engine, tenant, T0 - D, T0 + 29 * D)  # a month, for a weekly report
    cli_run(engine, tenant, T0 - 161 * D, T0 - 154 * D)  # the week of 2024-12-23: before the first partition
    cli_run(engine, unregistered, week, week + 7 * D)  # tenant not registered
    so_far_run(engine, tenant, week, week + 7 * D)
    window = periods.Window(week, week + 7 * D)
    run_records.record_input_failure(engine, REPORT, tenant, window, None, "a FAILED run")  # FAILED: not even read

    result, _ = tick(url, instance, cursor)

    assert result.asset_events == []
    assert result.skip_reason.skip_message == (
        "7 CLI run(s) read: 0 reported as materialisations, 7 skipped (4 not one partition of the report's asset, "
        "1 so-far runs, 1 non-default options, 1 tenant not a registered partition)"
    )
    assert latest(instance, f"2025-06-09|{tenant}") == [] and latest(instance, f"2025-06-09|{unregistered}") == []


def materialize_week(url, instance, key, config=None):
    asset_def = next(a for a in report_assets(START) if a.key == AssetKey(REPORT))
    run_config = {"ops": {REPORT: {"config": config}}} if config is not None else None
    result = materialize(
        [asset_def], partition_key=key, instance=instance, resources=report_resources(url), run_config=run_config
    )
    assert result.success
    return result.asset_materializations_for_node(REPORT)[0].metadata["run_id"].value


def test_a_newer_dagster_materialisation_is_not_overridden(url, engine, tenant, instance):
    cursor = caught_up(url, instance)
    key = f"2025-06-16|{tenant}"
    cli_run(engine, tenant, T0 + 14 * D, T0 + 21 * D)
    dagster_run = materialize_week(url, instance, key)  # after the CLI run

    result, _ = tick(url, instance, cursor)

    assert result.asset_events == [] and result.skip_reason.skip_message == (
        "1 CLI run(s) read: 0 reported as materialisations, 1 skipped (1 partition materialised later or already "
        "reported)"
    )
    assert latest(instance, key)[0].metadata["run_id"].value == dagster_run


def test_a_partition_the_failure_reaper_reported_after_the_cli_run_is_not_overridden(url, engine, tenant, instance):
    """A Dagster run committed the partition, a CLI run followed, then the reaper reported the Dagster run's commit:
    its materialisation names an older run but was recorded later, so it stands."""
    from dyno_reports.definitions import build_definitions

    cursor = caught_up(url, instance)
    key = f"2025-06-30|{tenant}"
    job = build_definitions().resolve_job_def("weekly_reports")
    run = instance.create_run_for_job(job, tags={"dagster/partition": key}, asset_selection={AssetKey(REPORT)})
    with engine.connect() as conn:
        request = run_request.build_request(
            conn, REPORT, tenant, period_start=T0 + 28 * D, period_end=T0 + 35 * D, dagster_run_id=run.run_id
        )
    committed = executor.execute(engine, request).run_id  # by the Dagster run's worker, which then died
    cli_run(engine, tenant, T0 + 28 * D, T0 + 35 * D)
    fail_and_reap(instance, run, url)

    result, _ = tick(url, instance, cursor)

    assert result.asset_events == [] and "1 partition materialised later" in result.skip_reason.skip_message
    assert latest(instance, key)[0].metadata["run_id"].value == str(committed)


def test_of_a_partitions_cli_runs_the_latest_wins_across_ticks_and_within_one(url, engine, tenant, instance):
    cursor = before = caught_up(url, instance)
    first, second = (cli_run(engine, tenant, T0 + 21 * D, T0 + 28 * D) for _ in range(2))

    one, cursor = tick(url, instance, cursor, batch=1)  # reports `first`, after `second` was generated
    other, cursor = tick(url, instance, cursor, batch=1)  # a CLI report's record time is not its run's: reported
    third, fourth = (cli_run(engine, tenant, T0 + 21 * D, T0 + 28 * D) for _ in range(2))
    both, _ = tick(url, instance, cursor)  # one tick reads both: the later one is reported

    reported = [e.metadata["run_id"].value for e in [*one.asset_events, *other.asset_events, *both.asset_events]]
    assert reported == [str(first), str(second), str(fourth)] and third != fourth
    assert both.skip_reason.skip_message.endswith("1 skipped (1 partition materialised later or already reported)")
    replay, _ = tick(url, instance, before, batch=1)  # a reset cursor: `first` again, older than the CLI report
    assert replay.asset_events == [] and replay.skip_reason.skip_message.endswith(
        "1 skipped (1 partition materialised later or already reported)"
    )


def test_a_run_younger_than_the_settle_time_waits_for_a_later_tick(url, engine, tenant, instance):
    cursor = caught_up(url, instance)
    cli_run(engine, tenant, T0 + 28 * D, T0 + 35 * D)

    result, _ = tick(url, instance, cursor, settle=timedelta(minutes=2))

    assert isinstance(result, SkipReason) and result.skip_message == "no new report run made outside Dagster"
    assert len(tick(url, instance, cursor)[0].asset_events) == 1  # the cursor did not move past it


def test_downstream_reads_the_reported_cli_runs_facts(url, engine, tenant, instance):
    key = f"2025-07-07|{tenant}"
    cursor = caught_up(url, instance)
    materialize_week(url, instance, key, {"include_closed": True})  # 4 rows: the won and lost stages too
    cli_run_id = cli_run(engine, tenant, T0 + 35 * D, T0 + 42 * D)  # later, default options: 2 rows
    tick(url, instance, cursor)
    seen: list[pd.DataFrame] = []

    @asset(partitions_def=report_partitions("week", START), ins={"facts": AssetIn(key=AssetKey(REPORT))})
    def summary(facts: pd.DataFrame) -> None:
        seen.append(facts)

    upstream = next(a for a in report_assets(START) if a.key == AssetKey(REPORT))
    result = materialize(
        [upstream, summary],
        selection=[summary.key],
        partition_key=key,
        instance=instance,
        resources=report_resources(url),
    )

    assert result.success and len(seen[0]) == 2  # the CLI run's facts, not the Dagster run's 4
    (loaded,) = [e for e in result.all_events if e.event_type == DagsterEventType.LOADED_INPUT]
    assert loaded.event_specific_data.metadata["report_runs"].value == {key: str(cli_run_id)}
