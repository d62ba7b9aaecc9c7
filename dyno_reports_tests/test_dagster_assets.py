"""The Dagster assets on real PostgreSQL: materialisations, failures, multi-partition runs, sensors, schedules, checks.

Everything runs in-process (`materialize`, `build_*_context`) on a throwaway
migrated database and a temporary Dagster instance.
"""

import uuid
from datetime import UTC, datetime, timedelta

import pytest
from dagster import (
    AssetKey,
    DagsterEventType,
    DagsterInvalidConfigError,
    SensorResult,
    build_sensor_context,
    instance_for_test,
    materialize,
)
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, insert, select, text, update

from dyno_reports.core import periods
from dyno_reports.dagster_defs.assets import report_assets
from dyno_reports.dagster_defs.resources import ReportDatabase
from dyno_reports.dagster_defs.tenants import tenant_partitions_sensor
from dyno_reports.engine import executor, multi_period, run_records, run_request
from dyno_reports.reports import registry
from dyno_reports.reports.fact_checks import facts_not_from_succeeded_runs, negative_metric_facts
from dyno_reports.reports.pipeline_overview.checks import stages_missing_from_overview
from dyno_reports.storage.tables import pipeline_overview_fact, report_run
from dyno_reports_tests.conftest import url_string
from dyno_reports_tests.support.dagster import instance_with_tenants, report_resources
from dyno_reports_tests.support.history import DEAL_IDS, PIPELINE_IDS, T0, TenantData, load
from dyno_reports_tests.support.knowledge import A_SCOPE_DIGEST
from dyno_reports_tests.support.reaper import fail_and_reap

D = timedelta(days=1)
START = "2025-01-01"
REPORT = "pipeline_overview"
QUARTERLY = ("deal_velocity", "pipeline_movement", "weighted_pipeline", "win_loss")


@pytest.fixture(scope="module")
def tenant(engine) -> str:
    data = TenantData()
    lead, proposal, _won, _lost = data.add_pipeline(PIPELINE_IDS[0], ["open", "open", "won", "lost"])
    data.add_deal(DEAL_IDS[0], [(T0 - 3 * D, lead, 100), (T0 + D, proposal, 250)])
    data.add_deal(DEAL_IDS[1], [(T0 - 10 * D, lead, 40)])
    load(engine, data)
    return str(data.tenant_id)


@pytest.fixture
def env(database_url, monkeypatch):
    """Point the default resources at the test database, as DYNO_DATABASE_URL does in production."""
    monkeypatch.setenv("DYNO_DATABASE_URL", url_string(database_url))
    monkeypatch.setenv("DYNO_DAGSTER_START_DATE", START)
    return url_string(database_url)


@pytest.fixture
def instance(tenant):
    with instance_with_tenants(tenant) as instance:
        yield instance


def asset_of(report_type: str):
    return next(a for a in report_assets(START) if a.key == AssetKey(report_type))


def materialize_week(env: str, instance, tenant: str, week: str, config: dict | None = None, **kwargs):
    """One partition of REPORT, with `config` as its run config when given."""
    run_config = {"ops": {REPORT: {"config": config}}} if config is not None else None
    return materialize(
        [asset_of(REPORT)],
        partition_key=f"{week}|{tenant}",
        instance=instance,
        resources=report_resources(env),
        run_config=run_config,
        **kwargs,
    )


def headers_of(engine, dagster_run_id: str) -> list:
    with engine.connect() as conn:
        return conn.execute(
            select(report_run).where(report_run.c.dagster_run_id == dagster_run_id).order_by(report_run.c.period_start)
        ).all()


def test_every_registered_report_is_an_asset_with_its_cadence():
    from dyno_reports.definitions import defs

    repository = defs.get_repository_def()
    # one process per run: jobs, and the implicit asset job that backfills use, run steps in the run worker
    assert {job.executor_def.name for job in repository.get_all_jobs()} == {"in_process"}
    graph = repository.asset_graph
    quarterly = {f"{name}_quarterly" for name, report in registry().items() if "quarter" in report.cadences}
    assert quarterly == {f"{name}_quarterly" for name in QUARTERLY}
    crm = {f"crm/{name}" for name in ("tenant", "principal", "pipeline", "stage", "deal", "deal_history")}
    assert {k.to_user_string() for k in graph.get_all_asset_keys()} == set(registry()) | quarterly | crm
    for name, report in registry().items():
        node = graph.get(AssetKey(name))
        assert node.group_name == "dyno_reports" and node.description.startswith(report.description)
        assert "once its period has closed in the tenant's time zone" in node.description
        period = node.partitions_def.partitions_defs[0]
        assert period.name == "period" and period.partitions_def.cron_schedule == (
            "0 0 * * 1" if report.cadence == "week" else "0 0 1 * *"
        )
        assert period.partitions_def.end_offset == 1  # the current UTC period is listed: zones east close it first
    for name in quarterly:  # same group, IO manager, checks, pool and backfill policy as the monthly asset
        node, monthly = graph.get(AssetKey(name)), graph.get(AssetKey(name.removesuffix("_quarterly")))
        assert node.group_name == monthly.group_name and node.pools == monthly.pools
        assert node.backfill_policy == monthly.backfill_policy
        assert {c.name for c in node.check_keys} == {c.name for c in monthly.check_keys}
        assert "FY2026-Q1|<tenant>" in node.description
        labels = node.partitions_def.partitions_defs[0].partitions_def.get_partition_keys()
        assert labels == sorted(labels) and "FY2026-Q1" in labels


def test_materialize_one_partition_writes_header_facts_and_metadata(env, engine, tenant, instance):
    key = f"2025-06-02|{tenant}"
    result = materialize_week(env, instance, tenant, "2025-06-02")
    assert result.success
    (header,) = headers_of(engine, result.run_id)
    assert header.status == "SUCCEEDED" and str(header.tenant_id) == tenant
    assert header.period_start == T0 and header.period_end == T0 + 7 * D and header.period_grain == "week"
    with engine.connect() as conn:
        facts = conn.execute(
            select(pipeline_overview_fact).where(pipeline_overview_fact.c.run_id == header.run_id)
        ).all()
    assert len(facts) == 2 and sum(f.deal_count for f in facts) == 2  # two open stages, two deals at E
    (mat,) = result.asset_materializations_for_node(REPORT)
    assert mat.partition == key
    md = mat.metadata
    assert md["run_id"].value == str(header.run_id)
    assert md["dagster/row_count"].value == 2
    assert md["deal_count"].value == 2 and md["total_amount"].value == 290.0 and md["entered_count"].value == 1
    preview = md["preview"].value  # a table: names beside short ids, decimals exact as text
    assert [c.name for c in preview.schema.columns][:3] == ["pipeline", "stage", "deal_count"]
    assert [r.data["pipeline"] for r in preview.records] == [f"pipeline 0 ({str(PIPELINE_IDS[0])[:8]})"] * 2
    assert all(r.data["stage"].startswith("open ") for r in preview.records)
    assert sorted(r.data["total_amount"] for r in preview.records) == ["250.00", "40.00"]
    assert md["preview_shown"].value == "2 fact rows"
    assert md["tenant"].value.startswith("test ")  # the tenant's name beside its id


def test_typed_options_in_natural_yaml_reach_the_run(env, engine, tenant, instance):
    result = materialize_week(env, instance, tenant, "2025-06-09", {"include_closed": True})
    assert result.success
    (header,) = headers_of(engine, result.run_id)
    assert header.input_params["options"] == {"include_closed": True, "pipeline_ids": None}


def test_the_run_config_schema_is_the_options_model(env, instance, tenant):
    with pytest.raises(DagsterInvalidConfigError, match="include_closed"):
        materialize_week(env, instance, tenant, "2025-06-09", {"include_closed": "yes"})
    with pytest.raises(DagsterInvalidConfigError, match="options"):  # the old JSON-string field is gone
        materialize_week(env, instance, tenant, "2025-06-09", {"options": "{}"})


def test_refused_options_fail_with_one_clear_message_and_a_failed_header(env, engine, tenant, instance):
    result = materialize_week(
        env, instance, tenant, "2025-06-09", {"pipeline_ids": ["not-a-uuid"]}, raise_on_error=False
    )
    assert not result.success
    (failure,) = [e for e in result.all_events if e.event_type == DagsterEventType.STEP_FAILURE]
    error = failure.step_failure_data.user_failure_data
    assert error.description.startswith("pipeline_overview: invalid options: option 'pipeline_ids")
    (header,) = headers_of(engine, result.run_id)
    assert header.status == "FAILED" and "pipeline_ids" in header.error_message
    assert header.period_start == T0 + 7 * D
    with engine.connect() as conn:
        assert (
            conn.execute(select(pipeline_overview_fact).where(pipeline_overview_fact.c.run_id == header.run_id)).first()
            is None
        )


def test_failed_execution_is_recorded_once(env, engine, tenant, instance, monkeypatch):
    """The executor records its own FAILED run; the failure hook must not add a second header."""
    monkeypatch.setattr(executor, "headline_of", lambda *a: 1 / 0)
    result = materialize_week(env, instance, tenant, "2025-06-16", raise_on_error=False)
    assert not result.success
    (header,) = headers_of(engine, result.run_id)
    assert header.status == "FAILED" and "ZeroDivisionError" in header.error_message


def test_multi_period_run_of_one_tenant_gives_each_partition_its_row_and_metadata(env, engine, tenant, instance):
    weeks = ["2025-05-12", "2025-05-19", "2025-05-26", "2025-06-02"]
    result = materialize(
        [asset_of(REPORT)],
        instance=instance,
        resources=report_resources(env),
        tags={
            "dagster/asset_partition_range_start": f"{weeks[0]}|{tenant}",
            "dagster/asset_partition_range_end": f"{weeks[-1]}|{tenant}",
        },
    )
    assert result.success
    headers = headers_of(engine, result.run_id)
    assert [h.period_start.date().isoformat() for h in headers] == weeks
    assert {h.status for h in headers} == {"SUCCEEDED"}
    mats = {m.partition: m.metadata for m in result.asset_materializations_for_node(REPORT)}
    assert sorted(mats) == [f"{w}|{tenant}" for w in weeks]
    by_start = {h.period_start.date().isoformat(): str(h.run_id) for h in headers}
    assert {w: mats[f"{w}|{tenant}"]["run_id"].value for w in weeks} == by_start  # distinct, per partition
    assert mats[f"2025-05-12|{tenant}"]["deal_count"].value == 0  # deals were created later
    assert mats[f"2025-06-02|{tenant}"]["deal_count"].value == 2


def test_a_range_run_reads_the_tenants_history_once_and_writes_each_partitions_single_run_facts(
    env, engine, tenant, instance, monkeypatch
):
    passes = []
    compute = multi_period.compute
    monkeypatch.setattr(multi_period, "compute", lambda conn, asked: passes.append(len(asked)) or compute(conn, asked))
    weeks = ["2025-05-26", "2025-06-02", "2025-06-09", "2025-06-16"]
    result = materialize(
        [asset_of(REPORT)],
        instance=instance,
        resources=report_resources(env),
        tags={
            "dagster/asset_partition_range_start": f"{weeks[0]}|{tenant}",
            "dagster/asset_partition_range_end": f"{weeks[-1]}|{tenant}",
        },
    )
    assert result.success and passes == [4]
    for header in headers_of(engine, result.run_id):
        with engine.connect() as conn:
            request = run_request.build_request(
                conn, REPORT, tenant, period_start=header.period_start, period_end=header.period_end
            )
        alone = executor.execute(engine, request)
        assert facts_of(engine, header.run_id) == facts_of(engine, alone.run_id) and alone.fact_rows > 0


def facts_of(engine, run_id) -> set:
    columns = [c for c in pipeline_overview_fact.c if c.name not in ("run_id",)]
    with engine.connect() as conn:
        return set(conn.execute(select(*columns).where(pipeline_overview_fact.c.run_id == run_id)).all())


def test_backfill_policy_batches_partitions_per_run():
    policy = asset_of(REPORT).backfill_policy
    assert policy.max_partitions_per_run and policy.max_partitions_per_run > 1


def test_tenant_sensor_registers_new_tenants(env, tenant):
    with instance_for_test() as instance:
        context = build_sensor_context(instance=instance, resources={"dyno_db": ReportDatabase(database_url=env)})
        result = tenant_partitions_sensor(context)
        assert isinstance(result, SensorResult)
        (request,) = result.dynamic_partitions_requests
        assert request.partitions_def_name == "tenant" and tenant in request.partition_keys
        instance.add_dynamic_partitions("tenant", list(request.partition_keys))
        assert tenant_partitions_sensor(context).__class__.__name__ == "SkipReason"


def test_run_failure_sensor_fails_partitions_of_a_killed_run(env, engine, tenant, instance):
    from dyno_reports.definitions import build_definitions

    job = build_definitions().resolve_job_def("weekly_reports")
    key = f"2025-06-23|{tenant}"
    run = instance.create_run_for_job(job, tags={"dagster/partition": key}, asset_selection={AssetKey(REPORT)})
    fail_and_reap(instance, run, env)  # twice: still one header
    (header,) = headers_of(engine, run.run_id)
    assert header.status == "FAILED" and run.run_id in header.error_message
    assert header.period_start == datetime(2025, 6, 23, tzinfo=UTC)


def test_asset_checks_run_in_the_run_and_pass_on_its_facts(env, engine, tenant, instance):
    result = materialize(
        [asset_of(REPORT)],
        partition_key=f"2025-06-30|{tenant}",
        instance=instance,
        resources=report_resources(env),
    )
    evaluations = {e.check_name: e for e in result.get_asset_check_evaluations()}
    assert set(evaluations) == {"facts_from_succeeded_runs", "metrics_not_negative", "stage_rows_complete"}
    assert all(e.passed and e.metadata["report_runs_checked"].value == 1 for e in evaluations.values())


def test_asset_check_queries_see_only_this_dagster_runs_bad_facts(engine, tenant):
    """Facts the database guards would refuse, slipped in with triggers off, under one Dagster run id."""
    bad_run, dagster_run_id = uuid.uuid4(), f"bad-{uuid.uuid4()}"
    request = run_request.RunRequest(
        registry()[REPORT],
        uuid.UUID(tenant),
        periods.Window(T0, T0 + 7 * D),
        registry()[REPORT].options_model(),
        dagster_run_id,
        known_at=T0 + 7 * D,
    )
    with engine.begin() as conn:
        conn.execute(text("SET LOCAL session_replication_role = replica"))  # no triggers: a FAILED run with facts
        conn.execute(
            insert(report_run).values(**run_records.header_values(request, bad_run, "FAILED"), error_message="x")
        )
        conn.execute(
            insert(pipeline_overview_fact).values(
                run_id=bad_run,
                tenant_id=uuid.UUID(tenant),
                pipeline_id=PIPELINE_IDS[0],
                stage_id=uuid.uuid4(),
                deal_count=1,
                total_amount=1,
                avg_amount=1,
                avg_days_in_stage=-3,
                entered_count=0,
            )
        )

    def count(query) -> int:
        with engine.connect() as conn:
            return conn.execute(query).scalar_one()

    try:
        assert count(facts_not_from_succeeded_runs(registry()[REPORT], dagster_run_id)) == 1
        assert count(negative_metric_facts(registry()[REPORT], dagster_run_id)) == 1
        assert count(facts_not_from_succeeded_runs(registry()[REPORT], "another-run")) == 0
        with engine.begin() as conn:
            conn.execute(text("SET LOCAL session_replication_role = replica"))
            conn.execute(
                update(report_run)
                .where(report_run.c.run_id == bad_run)
                .values(status="SUCCEEDED", scope_digest=A_SCOPE_DIGEST)
            )
        # the run covers the tenant's two open stages; its only fact row names neither of them
        assert count(stages_missing_from_overview(dagster_run_id)) == 2
    finally:
        with engine.begin() as conn:
            conn.execute(text("SET LOCAL session_replication_role = replica"))
            conn.execute(text("DELETE FROM reporting.report_pipeline_overview_fact WHERE run_id = :r"), {"r": bad_run})
            conn.execute(text("DELETE FROM reporting.report_run WHERE run_id = :r"), {"r": bad_run})


PIPELINE_SPELLINGS = st.one_of(
    st.sampled_from([str(PIPELINE_IDS[0]), str(PIPELINE_IDS[0]).upper(), str(PIPELINE_IDS[1]), str(uuid.uuid4())]),
    st.text(max_size=40),
    st.from_regex("\\A[0-9a-f\u0660-\u0669]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\\Z"),
)


# the fixtures are shared by every example on purpose: one database, one instance, one environment
@settings(max_examples=15, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(include_closed=st.booleans(), pipeline_ids=st.none() | st.lists(PIPELINE_SPELLINGS, max_size=3))
def test_any_run_config_runs_or_fails_clearly(env, engine, tenant, instance, include_closed, pipeline_ids):
    """The Dagster side of the input fuzz: config of the right shape, values anywhere."""
    config = {"include_closed": include_closed, "pipeline_ids": pipeline_ids}
    result = materialize_week(env, instance, tenant, "2025-06-09", config, raise_on_error=False)
    (header,) = headers_of(engine, result.run_id)  # one header either way, never a partial write
    if result.success:
        assert header.status == "SUCCEEDED"
        return
    (failure,) = [e for e in result.all_events if e.event_type == DagsterEventType.STEP_FAILURE]
    error = failure.step_failure_data.user_failure_data  # a Failure of ours, not an unexpected exception
    assert error is not None and len(error.description) <= 500
    # refused by the options model for every partition, or by the tenant's own pipelines for this one
    assert error.description.startswith(("pipeline_overview: invalid options", "1 of 1 partition(s) failed"))
    assert header.status == "FAILED" and "pipeline" in header.error_message
    with engine.connect() as conn:
        assert conn.execute(select(func.count()).where(pipeline_overview_fact.c.run_id == header.run_id)).scalar() == 0
