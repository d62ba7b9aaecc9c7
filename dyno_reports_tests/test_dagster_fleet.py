"""Fleet-scale ticks and batch runs, in-process Dagster on real PostgreSQL.

A schedule tick for N tenants asks for ceil(N / 100) runs that together cover
every tenant once; a batch run gives every tenant its own `report_run` and
materialisation, and one refused tenant does not stop the others.
"""

import uuid
from datetime import UTC, date, datetime, timedelta

import pytest
from dagster import (
    AssetKey,
    AssetRecordsFilter,
    PartitionKeyRange,
    build_schedule_context,
    instance_for_test,
    materialize,
    partition_loading_context,
)
from sqlalchemy import select

from dyno_reports.core.errors import ConfigError
from dyno_reports.dagster_defs.assets import report_assets
from dyno_reports.dagster_defs.io_manager import ReportRunIOManager
from dyno_reports.dagster_defs.partitions import (
    HISTORY_MONTHS_ENV,
    START_DATE_ENV,
    report_partitions,
    start_covering,
    start_date,
)
from dyno_reports.dagster_defs.resources import ReportDatabase
from dyno_reports.dagster_defs.schedules import RANGE_END_TAG, RANGE_START_TAG, TENANTS_PER_RUN
from dyno_reports.storage.tables import report_run
from dyno_reports_tests.conftest import url_string
from dyno_reports_tests.support.history import DEAL_IDS, PIPELINE_IDS, T0, TenantData, load

START = "2025-01-01"
REPORT = "pipeline_overview"
FLEET = 2000


@pytest.fixture(scope="module")
def real_tenants(engine) -> list[str]:
    tenants = []
    for amount in (100, 250):
        data = TenantData()
        lead, _proposal, _won, _lost = data.add_pipeline(PIPELINE_IDS[0], ["open", "open", "won", "lost"])
        data.add_deal(DEAL_IDS[0], [(T0 - timedelta(days=3), lead, amount)])
        load(engine, data)
        tenants.append(str(data.tenant_id))
    return tenants


@pytest.fixture
def env(database_url, monkeypatch) -> str:
    monkeypatch.setenv("DYNO_DATABASE_URL", url_string(database_url))
    monkeypatch.setenv("DYNO_DAGSTER_START_DATE", START)
    return url_string(database_url)


def tick(instance, schedule_name: str, at: datetime) -> list:
    from dyno_reports.definitions import build_definitions

    repository = build_definitions().get_repository_def()
    # closed by `with`: its resources' generator, left to the garbage collector, would reset Dagster's
    # current-instance context variable to a finished test's instance whenever it ran
    with build_schedule_context(
        instance=instance,
        scheduled_execution_time=at,
        repository_def=repository,
        resources={"dyno_db": ReportDatabase()},
    ) as context:
        return list(repository.get_schedule_def(schedule_name).evaluate_tick(context).run_requests)


def keys_of(request, instance, cadence: str) -> list[str]:
    with partition_loading_context(dynamic_partitions_store=instance):
        keys = report_partitions(cadence, START).get_partition_keys_in_range(
            PartitionKeyRange(request.tags[RANGE_START_TAG], request.tags[RANGE_END_TAG])
        )
    return [str(k) for k in keys]


@pytest.mark.parametrize(
    "schedule_name, cadence, at, period",
    [
        # the first ticks after the period's close plus the CRM's longest write (10 minutes)
        ("weekly_reports_schedule", "week", datetime(2025, 6, 9, 1, tzinfo=UTC), "2025-06-02"),
        ("monthly_reports_schedule", "month", datetime(2025, 7, 1, 1, tzinfo=UTC), "2025-06-01"),
    ],
)
def test_a_tick_for_2000_tenants_asks_for_20_runs_covering_each_tenant_once(env, schedule_name, cadence, at, period):
    tenants = [str(uuid.UUID(int=i + 1)) for i in range(FLEET)]
    with instance_for_test() as instance:
        instance.add_dynamic_partitions("tenant", tenants)
        requests = tick(instance, schedule_name, at)
        assert len(requests) == FLEET // TENANTS_PER_RUN == 20  # the goal: at most N / 50
        covered = [key for r in requests for key in keys_of(r, instance, cadence)]
        assert sorted(covered) == sorted(f"{period}|{t}" for t in tenants)
        assert len({r.run_key for r in requests}) == len(requests)
        assert all(r.tags["dyno/period"] == period for r in requests)
        instance.add_dynamic_partitions("tenant", [str(uuid.uuid4())])  # a tenant registered later: one more run
        again = tick(instance, schedule_name, at)
        assert len(again) == len(requests) + 1 and {r.run_key for r in requests} <= {r.run_key for r in again}


def test_a_batch_run_gives_each_tenant_its_run_and_one_refused_tenant_stops_none(env, engine, real_tenants):
    unknown = str(uuid.uuid4())  # registered in Dagster, missing from crm.tenant
    tenants = [real_tenants[0], unknown, real_tenants[1]]
    url = env
    with instance_for_test() as instance:
        instance.add_dynamic_partitions("tenant", tenants)
        (request,) = tick(instance, "weekly_reports_schedule", datetime(2025, 6, 9, 1, tzinfo=UTC))
        asset = next(a for a in report_assets(START) if a.key == AssetKey(REPORT))
        result = materialize(
            [asset],
            instance=instance,
            tags=request.tags,
            raise_on_error=False,
            resources={
                "dyno_db": ReportDatabase(database_url=url),
                "report_io_manager": ReportRunIOManager(database_url=url),
            },
        )
        assert not result.success
        with engine.connect() as conn:
            headers = {
                str(h.tenant_id): h
                for h in conn.execute(select(report_run).where(report_run.c.dagster_run_id == result.run_id))
            }
        assert set(headers) == set(tenants)
        assert headers[unknown].status == "FAILED" and "unknown tenant" in headers[unknown].error_message
        for tenant in real_tenants:
            assert headers[tenant].status == "SUCCEEDED"
            (record,) = instance.fetch_materializations(
                AssetRecordsFilter(AssetKey(REPORT), [f"2025-06-02|{tenant}"]), limit=5
            ).records
            metadata = record.asset_materialization.metadata
            assert metadata["run_id"].value == str(headers[tenant].run_id)
            assert metadata["dagster_run_id"].value == result.run_id
        assert not instance.fetch_materializations(
            AssetRecordsFilter(AssetKey(REPORT), [f"2025-06-02|{unknown}"]), limit=5
        ).records


def test_the_first_period_rolls_a_year_back_unless_fixed(monkeypatch):
    monkeypatch.delenv(START_DATE_ENV, raising=False)
    monkeypatch.delenv(HISTORY_MONTHS_ENV, raising=False)
    assert start_date(date(2026, 11, 26)) == "2025-11-01"
    assert start_date(date(2026, 1, 1)) == "2025-01-01"
    monkeypatch.setenv(HISTORY_MONTHS_ENV, "3")
    assert start_date(date(2026, 2, 10)) == "2025-11-01"
    monkeypatch.setenv(HISTORY_MONTHS_ENV, "0")
    with pytest.raises(ConfigError, match=HISTORY_MONTHS_ENV):
        start_date()
    monkeypatch.setenv(START_DATE_ENV, "2024-07-01")
    assert start_date(date(2026, 11, 26)) == "2024-07-01"
    assert start_covering(["2023-05-01|t"]) == "2023-05-01"  # bookkeeping of a run older than the start


def test_asset_backfills_batch_tenants_of_one_period_and_periods_of_one_tenant(env):
    """Dagster's own chunking of an asset backfill under our backfill policy (its daemon calls this)."""
    from dagster._core.definitions.automation_tick_evaluation_context import build_run_requests_with_backfill_policies
    from dagster._core.definitions.events import AssetKeyPartitionKey

    from dyno_reports.definitions import build_definitions

    graph = build_definitions().get_repository_def().asset_graph
    tenants = [str(uuid.UUID(int=i + 1)) for i in range(250)]
    weeks = [(date(2025, 1, 6) + timedelta(weeks=i)).isoformat() for i in range(26)]
    with instance_for_test() as instance:
        instance.add_dynamic_partitions("tenant", tenants)

        def runs_for(keys: list[str]) -> list:
            wanted = [AssetKeyPartitionKey(AssetKey(REPORT), key) for key in keys]
            with partition_loading_context(dynamic_partitions_store=instance):
                return build_run_requests_with_backfill_policies(wanted, graph, instance)

        every_tenant = runs_for([f"2025-06-02|{t}" for t in tenants])
        assert len(every_tenant) == 3  # ceil(250 / 100)
        covered = [k for r in every_tenant for k in keys_of(r, instance, "week")]
        assert sorted(covered) == sorted(f"2025-06-02|{t}" for t in tenants)
        assert len(runs_for([f"{w}|{tenants[7]}" for w in weeks])) == 1  # a tenant's half year: one run
