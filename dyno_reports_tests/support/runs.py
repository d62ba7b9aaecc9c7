"""Dagster runs of pipeline_overview as a schedule tick creates them, and what their worker commits (test helper).

Writes to the report database it is given and to the Dagster instance it is given.
"""

import uuid
from datetime import UTC, date, datetime, timedelta

from dagster import AssetKey, DagsterInstance, DagsterRun
from sqlalchemy import Engine, insert

from dyno_reports.dagster_defs.run_partitions import RANGE_END_TAG, RANGE_START_TAG
from dyno_reports.engine import executor, run_records, run_request
from dyno_reports.storage.tables import report_run
from dyno_reports_tests.support.history import DEAL_IDS, PIPELINE_IDS, TenantData, load

REPORT = "pipeline_overview"  # weekly
FIRST_WEEK = date(2025, 1, 6)


def small_tenants(engine: Engine, count: int) -> list[str]:
    """`count` tenants with one open deal each, in creation order."""
    created = []
    for amount in range(10, 10 * (count + 1), 10):
        data = TenantData()
        lead, *_ = data.add_pipeline(PIPELINE_IDS[0], ["open", "won", "lost"])
        data.add_deal(DEAL_IDS[0], [(datetime(2024, 12, 2, tzinfo=UTC), lead, amount)])
        load(engine, data)
        created.append(str(data.tenant_id))
    return created


def week(i: int) -> str:
    return (FIRST_WEEK + timedelta(weeks=i)).isoformat()


def batch_run(instance: DagsterInstance, period: str, tenants: list[str], **run_args) -> DagsterRun:
    """A batch run of REPORT over `period` x tenants[0]..tenants[-1], as a schedule tick creates it."""
    from dyno_reports.definitions import build_definitions

    job = build_definitions().resolve_job_def("weekly_reports")
    tags = {RANGE_START_TAG: f"{period}|{tenants[0]}", RANGE_END_TAG: f"{period}|{tenants[-1]}"}
    if "root_run_id" in run_args:  # a re-execution: the tags Dagster sets on one
        tags |= {"dagster/parent_run_id": run_args["parent_run_id"], "dagster/root_run_id": run_args["root_run_id"]}
    return instance.create_run_for_job(job, tags=tags, asset_selection={AssetKey(REPORT)}, **run_args)


def request(engine: Engine, tenant_id: str, period: str, dagster_run_id: str) -> run_request.RunRequest:
    start = datetime.fromisoformat(period).replace(tzinfo=UTC)
    with engine.connect() as conn:
        return run_request.build_request(
            conn,
            REPORT,
            tenant_id,
            period_start=start,
            period_end=start + timedelta(weeks=1),
            dagster_run_id=dagster_run_id,
        )


def commit(engine: Engine, tenant_id: str, period: str, dagster_run_id: str) -> str:
    """What the run's worker commits for one partition (no materialisation yet)."""
    return str(executor.execute(engine, request(engine, tenant_id, period, dagster_run_id)).run_id)


def leave_in_progress(engine: Engine, tenant_id: str, period: str, dagster_run_id: str) -> None:
    """A header a cut-off transaction could leave behind."""
    values = run_records.header_values(request(engine, tenant_id, period, dagster_run_id), uuid.uuid4(), "IN_PROGRESS")
    with engine.begin() as conn:
        conn.execute(insert(report_run).values(**values))
