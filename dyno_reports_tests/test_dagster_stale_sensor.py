"""The stale sensor (dagster_defs/freshness.py): batching of stale partitions (no DB, a throwaway Dagster
instance), and ticks over a fleet of 200 tenants on real PostgreSQL (the stale check, in-process Dagster:
`build_sensor_context`, refresh runs by `materialize`).
"""

import time
import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from dagster import (
    AssetKey,
    AssetRecordsFilter,
    PartitionKeyRange,
    build_sensor_context,
    materialize,
    partition_loading_context,
)

from dyno_reports.dagster_defs.freshness import SENSOR_NAME
from dyno_reports.dagster_defs.partitions import report_partitions
from dyno_reports.dagster_defs.resources import ReportDatabase
from dyno_reports.dagster_defs.run_partitions import RANGE_END_TAG, RANGE_START_TAG
from dyno_reports.dagster_defs.schedules import MAX_RUNTIME_TAG
from dyno_reports.dagster_defs.slots import DEFAULT_CALENDAR
from dyno_reports.dagster_defs.stale_partitions import refresh_requests, stale_partition
from dyno_reports.engine import executor, run_request
from dyno_reports.freshness.staleness import StaleRun
from dyno_reports.storage.tables import deal_history
from dyno_reports_tests.conftest import url_string
from dyno_reports_tests.support.dagster import instance_with_tenants, report_asset_of, report_resources
from dyno_reports_tests.support.history import DEAL_IDS, Row, load_rows, load_small_tenant

START = "2026-01-05"
REPORT = "pipeline_overview"  # weekly
W = timedelta(weeks=1)
NOW = datetime.now(UTC)
MONDAY = datetime.combine(NOW.date() - timedelta(days=NOW.weekday()), datetime.min.time(), UTC)
WEEKS = [MONDAY - k * W for k in (3, 2, 1)]  # the last three closed weeks: inside the lookback
OLD_WEEK = MONDAY - 20 * W  # ended more than 90 days ago


def keys_of(request, instance) -> list[str]:
    with partition_loading_context(dynamic_partitions_store=instance):
        keys = report_partitions("week", START).get_partition_keys_in_range(
            PartitionKeyRange(request.tags[RANGE_START_TAG], request.tags[RANGE_END_TAG])
        )
    return [str(k) for k in keys]


def stale_run(tenant_id: str, week: datetime, version: int = 1) -> StaleRun:
    options = {"include_closed": False, "pipeline_ids": None}
    return StaleRun(
        run_id=uuid.uuid4(), tenant_id=uuid.UUID(tenant_id), report_type=REPORT, period_start=week,
        period_end=week + W, period_grain="week", input_params={"options": options}, input_fingerprint="0" * 64,
        known_at=week + W, dagster_run_id=None, late_rows=0, earliest_valid_from=None, scope_changed=False,
        version=version, current_version=2, settled_rows=0, unsettled_to=None, known_from=None,
    )  # fmt: skip


def test_a_version_bump_over_200_tenants_is_refreshed_in_runs_of_at_most_100_partitions_a_tenant_each():
    tenants = [str(uuid.UUID(int=i + 1)) for i in range(200)]
    weeks = [MONDAY - k * W for k in range(13, 0, -1)]  # 13 weeks x 200 tenants, all stale
    with instance_with_tenants(*tenants) as instance:
        found = [
            stale_partition(stale_run(t, w), START, DEFAULT_CALENDAR, set(tenants), NOW) for t in tenants for w in weeks
        ]
        requests = refresh_requests(found, tenants, START, NOW)
        batches = [keys_of(request, instance) for request in requests]
    assert all(len(keys) <= 100 for keys in batches) and len(requests) == 29  # 7 tenants x 13 weeks a run
    assert sorted(k for keys in batches for k in keys) == sorted(p.key for p in found)
    for keys in batches:  # each tenant's 13 weeks in one run
        assert len(keys) % 13 == 0
    assert {r.tags["dyno/stale_because"] for r in requests} == {"version"}
    assert len({r.run_key for r in requests}) == 29


def test_a_tenants_stale_weeks_with_a_gap_are_two_ranges_and_nothing_between_is_run():
    tenants = [str(uuid.UUID(int=i + 1)) for i in range(3)]
    weeks = [MONDAY - k * W for k in (6, 5, 2)]
    with instance_with_tenants(*tenants) as instance:
        found = [stale_partition(stale_run(tenants[1], w), START, DEFAULT_CALENDAR, set(tenants), NOW) for w in weeks]
        batches = [keys_of(r, instance) for r in refresh_requests(found, tenants, START, NOW)]
    assert sorted(batches) == sorted([[p.key for p in found[:2]], [found[2].key]])


def test_a_custom_window_or_an_unregistered_tenant_is_no_partitions_question():
    tenant = str(uuid.UUID(int=1))
    custom = stale_run(tenant, WEEKS[0])
    custom = StaleRun(**{**custom.__dict__, "period_end": WEEKS[0] + timedelta(days=10)})
    assert stale_partition(custom, START, DEFAULT_CALENDAR, {tenant}, NOW) == "window"
    assert stale_partition(stale_run(tenant, WEEKS[0]), START, DEFAULT_CALENDAR, set(), NOW) == "tenant"


@pytest.fixture(scope="module")
def fleet(engine) -> list[str]:
    """200 tenants with one open deal each and a SUCCEEDED pipeline_overview run of each of WEEKS; the first
    tenant also has a run of OLD_WEEK and one of a custom window (runs made before the late rows)."""
    tenants = [load_small_tenant(engine, 10 + i) for i in range(200)]
    with engine.connect() as conn:
        for i, tenant_id in enumerate(tenants):
            windows = [(week, week + W) for week in WEEKS]
            if i in (7, 120):
                windows += [(OLD_WEEK, OLD_WEEK + W), (WEEKS[0], WEEKS[0] + timedelta(days=10))]
            for start, end in windows:
                request = run_request.build_request(conn, REPORT, tenant_id, period_start=start, period_end=end)
                conn.rollback()
                assert executor.execute(engine, request, connection=conn).succeeded
    return tenants


@pytest.fixture
def env(database_url, monkeypatch) -> str:
    monkeypatch.setenv("DYNO_DATABASE_URL", url_string(database_url))
    monkeypatch.setenv("DYNO_DAGSTER_START_DATE", START)
    monkeypatch.setenv("DYNO_CRM_MAX_WRITE_SECONDS", "0")  # K = a run's start: a row written now is late at once
    monkeypatch.delenv("DYNO_STALE_REFRESH_ALL", raising=False)
    return url_string(database_url)


def tick(instance, cursor: str | None = None):
    from dyno_reports.definitions import build_definitions

    repository = build_definitions().get_repository_def()
    with build_sensor_context(
        instance=instance, cursor=cursor, repository_def=repository, resources={"dyno_db": ReportDatabase()}
    ) as context:
        return repository.get_sensor_def(SENSOR_NAME).evaluate_tick(context)


def backdate(engine, tenant_id: str, valid_from: datetime, recorded_at: datetime | None = None) -> None:
    """A correction of the tenant's deal dated `valid_from`, written now (or at `recorded_at`)."""
    from dyno_reports_tests.support.history import TenantData

    data = TenantData(tenant_id=uuid.UUID(tenant_id))
    with engine.connect() as conn:
        stage, owner = conn.execute(
            deal_history.select().with_only_columns(deal_history.c.stage_id, deal_history.c.owner_principal_id)
            .where(deal_history.c.tenant_id == data.tenant_id).limit(1)
        ).one()  # fmt: skip
    late = Row(DEAL_IDS[0], valid_from, stage, owner, Decimal(999), recorded_at=recorded_at or datetime.now(UTC))
    load_rows(engine, data, [late])


def test_late_rows_for_3_of_200_tenants_refresh_exactly_their_partitions_inside_the_lookback(env, engine, fleet):
    a, b, c, d = fleet[30], fleet[7], fleet[120], fleet[60]
    week = {w: w.date().isoformat() for w in WEEKS}
    with instance_with_tenants(*fleet) as instance:
        first = tick(instance)
        assert not first.run_requests  # every run current on unchanged data
        backdate(engine, a, WEEKS[1] + timedelta(days=2))  # A: its last two weeks
        backdate(engine, b, WEEKS[0] + timedelta(days=1))  # B: three weeks, and its custom window (skipped)
        backdate(engine, c, OLD_WEEK + timedelta(days=1))  # C: three weeks, the old week (listed), custom
        backdate(engine, d, MONDAY + timedelta(minutes=1))  # D: dated after every run's end: nothing
        refresh = tick(instance, first.cursor)
        requests = refresh.run_requests
        batches = {r.run_key: keys_of(r, instance) for r in requests}
        expected = [f"{week[w]}|{a}" for w in WEEKS[1:]] + [f"{week[w]}|{t}" for t in (b, c) for w in WEEKS]
        assert sorted(k for keys in batches.values() for k in keys) == sorted(expected)
        for tenant_id in (a, b, c):  # a tenant's periods together, in one run
            assert sum(1 for keys in batches.values() if any(k.endswith(tenant_id) for k in keys)) == 1
        for request in requests:
            assert request.job_name == "weekly_reports" and request.asset_selection == [AssetKey(REPORT)]
            assert request.tags["dyno/reason"] == "stale" and request.tags["dyno/stale_because"] == "late rows"
            assert request.tags[MAX_RUNTIME_TAG] == "21600" and request.run_config in (None, {})
        pending = tick(instance, refresh.cursor)  # nothing new: the refreshes are pending
        assert not pending.run_requests
        assert pending.skip_message == (
            "11 stale run(s): 8 partition(s) to refresh in 3 run(s) (0 requested now, 3 already requested), "
            "1 older than the lookback (listed, not run), 0 waiting for rows recorded less than the CRM's longest "
            "write ago, 2 skipped (2 not a partition's question (a custom window))"
        )
        for request in requests:
            assert materialize(
                [report_asset_of(REPORT, START)], instance=instance, tags=request.tags, resources=report_resources(env)
            ).success
        after = tick(instance, pending.cursor)
        assert not after.run_requests and after.skip_message.startswith("3 stale run(s): 0 partition(s) to refresh")
        records = instance.fetch_materializations(AssetRecordsFilter(AssetKey(REPORT), [f"{week[WEEKS[2]]}|{a}"]), 1)
        metadata = records.records[0].asset_materialization.metadata
        summary = "1 row changed, 0 added, 0 removed, 1 unchanged; total_amount +959.00"  # 40 -> 999
        assert metadata["diff_summary"].value == summary
        assert uuid.UUID(metadata["replaced_run_id"].value) != uuid.UUID(metadata["run_id"].value)


def test_an_older_stale_partition_is_refreshed_only_when_the_operator_asks(env, engine, fleet, monkeypatch):
    c = fleet[120]
    with instance_with_tenants(*fleet) as instance:
        backdate(engine, c, OLD_WEEK + timedelta(days=2))  # stale again, if refreshed before
        listed = tick(instance)
        assert not any(
            k.startswith(OLD_WEEK.date().isoformat()) for r in listed.run_requests for k in keys_of(r, instance)
        )
        monkeypatch.setenv("DYNO_STALE_REFRESH_ALL", "1")
        asked = tick(instance, listed.cursor)
        keys = [k for r in asked.run_requests for k in keys_of(r, instance)]
        assert f"{OLD_WEEK.date().isoformat()}|{c}" in keys


def test_a_stale_run_waits_while_its_late_rows_are_younger_than_the_crms_longest_write(env, engine, fleet, monkeypatch):
    tenant_id = fleet[199]
    with instance_with_tenants(*fleet) as instance:
        tick(instance)  # settle what earlier tests left
        monkeypatch.setenv("DYNO_CRM_MAX_WRITE_SECONDS", "600")
        backdate(engine, tenant_id, WEEKS[2] + timedelta(days=1), recorded_at=datetime.now(UTC))
        waiting = tick(instance)
        assert not [k for r in waiting.run_requests for k in keys_of(r, instance) if k.endswith(tenant_id)]
        monkeypatch.setenv("DYNO_CRM_MAX_WRITE_SECONDS", "1")
        time.sleep(1.1)  # the row's transaction is now older than the CRM's longest write
        due = tick(instance, waiting.cursor)
        assert f"{WEEKS[2].date().isoformat()}|{tenant_id}" in [
            k for r in due.run_requests for k in keys_of(r, instance)
        ]
