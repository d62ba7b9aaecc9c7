"""Dagster and `report_run` agree on a Dagster run's partitions: the invariant of failures.py, asserted (test helper).

Reads the report database (`engine`) and the Dagster instance; writes nothing.
"""

from collections import defaultdict

from dagster import AssetKey, AssetRecordsFilter, DagsterInstance
from sqlalchemy import Engine, select

from dyno_reports.storage.tables import report_run


def headers_by_partition(engine: Engine, dagster_run_id: str, report_type: str) -> dict[str, list]:
    """The run's report_run headers by partition key (`<period start>|<tenant>`), oldest first."""
    with engine.connect() as conn:
        headers = conn.execute(
            select(report_run)
            .where(report_run.c.dagster_run_id == dagster_run_id, report_run.c.report_type == report_type)
            .order_by(report_run.c.generated_at)
        ).all()
    by_key: dict[str, list] = defaultdict(list)
    for header in headers:
        by_key[f"{header.period_start.date().isoformat()}|{header.tenant_id}"].append(header)
    return dict(by_key)


def materialised_run_ids(instance: DagsterInstance, report_type: str, partition_key: str) -> list[str]:
    """The report run ids the partition's materialisations name, latest first."""
    records = instance.fetch_materializations(
        AssetRecordsFilter(AssetKey(report_type), [partition_key]), limit=1000
    ).records
    return [str(r.asset_materialization.metadata["run_id"].value) for r in records]


def assert_books_agree(
    engine: Engine,
    instance: DagsterInstance,
    dagster_run_id: str,
    report_type: str,
    partition_keys: list[str],
    one_header_each: bool = False,
) -> None:
    """Every partition in `partition_keys` (and no other) has a header of the run, none IN_PROGRESS; where its latest
    is SUCCEEDED the partition's latest materialisation names it, and no FAILED header is ever materialised."""
    by_key = headers_by_partition(engine, dagster_run_id, report_type)
    assert sorted(by_key) == sorted(partition_keys), "partitions without a header, or headers of other partitions"
    for key, headers in by_key.items():
        assert all(h.status in ("SUCCEEDED", "FAILED") for h in headers), f"{key}: a header stays IN_PROGRESS"
        assert not one_header_each or len(headers) == 1, f"{key}: {len(headers)} headers"
        named = materialised_run_ids(instance, report_type, key)
        if headers[-1].status == "SUCCEEDED":
            assert named[:1] == [str(headers[-1].run_id)], f"{key}: committed, latest materialisation {named[:1]}"
        assert not {str(h.run_id) for h in headers if h.status == "FAILED"} & set(named), f"{key}: FAILED materialised"
