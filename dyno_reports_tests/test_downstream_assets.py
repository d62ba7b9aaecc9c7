"""Downstream Dagster assets reading report facts as pandas DataFrames (real PostgreSQL, in-process `materialize`).

The IO manager's `load_input`: which run a partition stands for (the materialisation's
run, else the latest SUCCEEDED run with default options), the frame's columns and
types, a range of periods through a partition mapping, and the error when a
partition has no run.
"""

import warnings
from datetime import timedelta
from decimal import Decimal

import pandas as pd
import pytest
from dagster import (
    AssetIn,
    AssetKey,
    BetaWarning,
    DagsterEventType,
    DimensionPartitionMapping,
    IdentityPartitionMapping,
    MultiPartitionMapping,
    TimeWindowPartitionMapping,
    asset,
    materialize,
)
from sqlalchemy import select

from dyno_reports.dagster_defs.assets import report_assets
from dyno_reports.dagster_defs.partitions import report_partitions
from dyno_reports.engine import executor, run_request
from dyno_reports.reports import registry
from dyno_reports.storage.tables import pipeline_overview_fact
from dyno_reports_tests.conftest import url_string
from dyno_reports_tests.support.dagster import instance_with_tenants, report_resources
from dyno_reports_tests.support.history import DEAL_IDS, PIPELINE_IDS, T0, TenantData, load

D = timedelta(days=1)
START = "2025-01-01"
REPORT = "pipeline_overview"
FACT_COLUMNS = list(registry()[REPORT].fact_columns)


def last_three_weeks() -> MultiPartitionMapping:
    """Reads the upstream week and the two weeks before it, of the same tenant (MultiPartitionMapping is beta)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", BetaWarning)
        return MultiPartitionMapping(
            {
                "period": DimensionPartitionMapping("period", TimeWindowPartitionMapping(start_offset=-2)),
                "tenant": DimensionPartitionMapping("tenant", IdentityPartitionMapping()),
            }
        )


@pytest.fixture(scope="module")
def tenant(engine) -> str:
    data = TenantData()
    lead, proposal, won, _lost = data.add_pipeline(PIPELINE_IDS[0], ["open", "open", "won", "lost"])
    data.add_deal(DEAL_IDS[0], [(T0 - 3 * D, lead, 100), (T0 + D, proposal, "250.55")])
    data.add_deal(DEAL_IDS[1], [(T0 - 10 * D, lead, 40)])
    data.add_deal(DEAL_IDS[2], [(T0 - 20 * D, lead, 70), (T0 + 2 * D, won, 70)])
    data.add_deal(DEAL_IDS[3], [(T0 + 8 * D, proposal, 5)])
    load(engine, data)
    return str(data.tenant_id)


@pytest.fixture
def url(database_url) -> str:
    return url_string(database_url)


@pytest.fixture
def instance(tenant):
    with instance_with_tenants(tenant) as instance:
        yield instance


def upstream():
    return next(a for a in report_assets(START) if a.key == AssetKey(REPORT))


def downstream(partition_mapping=None):
    """A weekly tenant x period asset reading REPORT; the frames it got are appended to `seen`."""
    seen: list[pd.DataFrame] = []

    @asset(
        partitions_def=report_partitions("week", START),
        ins={"facts": AssetIn(key=AssetKey(REPORT), partition_mapping=partition_mapping)},
    )
    def pipeline_summary(facts: pd.DataFrame) -> None:
        seen.append(facts)

    return pipeline_summary, seen


def run_downstream(url, instance, summary, partition_key, **kwargs):
    return materialize(
        [upstream(), summary],
        selection=[summary.key],
        partition_key=partition_key,
        instance=instance,
        resources=report_resources(url),
        **kwargs,
    )


def run_directly(engine, tenant, start, options=None):
    with engine.connect() as conn:
        request = run_request.build_request(
            conn, REPORT, tenant, period_start=start, period_end=start + 7 * D, options=options
        )
    result = executor.execute(engine, request)
    assert result.succeeded
    return result.run_id


def facts_in_db(engine, run_id) -> list[dict]:
    table = pipeline_overview_fact
    with engine.connect() as conn:
        rows = conn.execute(
            select(*(table.c[c] for c in FACT_COLUMNS)).where(table.c.run_id == run_id).order_by(table.c.stage_id)
        ).all()
    return [{k: (str(v) if k.endswith("_id") else v) for k, v in row._mapping.items()} for row in rows]


def records(frame: pd.DataFrame) -> list[dict]:
    return [{k: (None if v is pd.NA else v) for k, v in row.items()} for row in frame.to_dict("records")]


def test_same_partition_reads_the_materialised_run_as_a_typed_frame(url, engine, tenant, instance):
    key = f"2025-06-02|{tenant}"
    materialised = materialize(
        [upstream()],
        partition_key=key,
        instance=instance,
        resources=report_resources(url),
        run_config={"ops": {REPORT: {"config": {"include_closed": True}}}},
    )
    (mat,) = materialised.asset_materializations_for_node(REPORT)
    named_run = mat.metadata["run_id"].value
    run_directly(engine, tenant, T0)  # a later run with default options: the materialisation's run still wins

    summary, seen = downstream()
    assert run_downstream(url, instance, summary, key).success

    (frame,) = seen
    assert list(frame.columns) == FACT_COLUMNS
    assert records(frame) == facts_in_db(engine, named_run)
    assert len(frame) == 4  # include_closed: the won and lost stages too, as the materialised run had them
    assert frame["deal_count"].dtype == "int64" and frame["entered_count"].dtype == "int64"
    assert all(isinstance(v, Decimal) for v in frame["total_amount"])
    assert frame["total_amount"].sum() == Decimal("360.55")  # 40 + 250.55 + 70 (won), exact
    assert list(frame["stage_id"]) == sorted(frame["stage_id"])


def test_a_range_of_weeks_reads_one_frame_with_period_columns(url, engine, tenant, instance):
    weeks = [T0 + 7 * D * i for i in range(3)]
    runs = [run_directly(engine, tenant, week) for week in weeks]  # no materialisation: the latest default run
    summary, seen = downstream(last_three_weeks())
    assert run_downstream(url, instance, summary, f"2025-06-16|{tenant}").success

    (frame,) = seen
    assert list(frame.columns) == ["tenant_id", "period_start", "period_end", *FACT_COLUMNS]
    assert set(frame["tenant_id"]) == {tenant}
    assert sorted(set(frame["period_start"])) == [pd.Timestamp(w) for w in weeks]
    assert str(frame["period_end"].dtype) == "datetime64[ns, UTC]" or "UTC" in str(frame["period_end"].dtype)
    for week, run_id in zip(weeks, runs, strict=True):
        part = frame[frame["period_start"] == pd.Timestamp(week)]
        assert (part["period_end"] == pd.Timestamp(week + 7 * D)).all()
        assert records(part[FACT_COLUMNS]) == facts_in_db(engine, run_id)
    by_week = frame.groupby("period_start")["deal_count"].sum().tolist()
    assert by_week == [2, 3, 3]  # open deals at each week's end: deal 3 arrives on June 10


def test_a_partition_without_a_succeeded_run_fails_naming_it(url, engine, tenant, instance):
    run_directly(engine, tenant, T0 + 42 * D)  # July 14: a run of the week before, not of July 21
    run_directly(engine, tenant, T0 + 49 * D, options={"include_closed": True})  # other options: not the one read
    summary, seen = downstream()
    key = f"2025-07-21|{tenant}"
    result = run_downstream(url, instance, summary, key, raise_on_error=False)

    assert not result.success and seen == []
    (failure,) = [e for e in result.all_events if e.event_type == DagsterEventType.STEP_FAILURE]
    description = failure.step_failure_data.user_failure_data.description
    assert description.startswith("pipeline_overview: no SUCCEEDED run for partition(s) ")
    assert key in description
