"""A Dagster batch run's database work (real PostgreSQL, in-process `materialize`): one connection for the
step's partitions, one query of metadata per partition."""

from datetime import timedelta

import pytest
from dagster import AssetKey, instance_for_test, materialize
from sqlalchemy import event

from dyno_reports.dagster_defs.assets import report_assets
from dyno_reports.dagster_defs.io_manager import ReportRunIOManager
from dyno_reports.dagster_defs.metadata import partition_metadata
from dyno_reports.dagster_defs.resources import ReportDatabase
from dyno_reports.engine import executor, run_request
from dyno_reports.storage import db
from dyno_reports_tests.conftest import url_string
from dyno_reports_tests.support.history import DEAL_IDS, PIPELINE_IDS, T0, TenantData, load

D = timedelta(days=1)
START = "2025-01-01"
WEEKS = ["2025-05-12", "2025-05-19", "2025-05-26", "2025-06-02"]


@pytest.fixture(scope="module")
def tenant(engine) -> TenantData:
    data = TenantData()
    lead, proposal, _won, _lost = data.add_pipeline(PIPELINE_IDS[0], ["open", "open", "won", "lost"])
    data.add_deal(DEAL_IDS[0], [(T0 - 3 * D, lead, 100), (T0 + D, proposal, 250)])
    load(engine, data)
    return data


def tenant_name(data: TenantData) -> str:
    return f"test {data.tenant_id}"  # as support.history.load names it


def checkouts_of_a_run(url: str, tenant: TenantData, weeks: list[str]) -> tuple[int, dict]:
    """Connections checked out of the shared pool while one run materialises `weeks`; its materialisations."""
    checkouts: list[str] = []
    shared = db.engine_for(url)  # the pooled engine the resource, the IO manager and the checks all use
    listener = lambda *_args: checkouts.append("checkout")  # noqa: E731
    asset = next(a for a in report_assets(START) if a.key == AssetKey("pipeline_overview"))
    key = str(tenant.tenant_id)
    event.listen(shared, "checkout", listener)
    try:
        with instance_for_test() as instance:
            instance.add_dynamic_partitions("tenant", [key])
            result = materialize(
                [asset],
                instance=instance,
                resources={
                    "dyno_db": ReportDatabase(database_url=url),
                    "report_io_manager": ReportRunIOManager(database_url=url),
                },
                tags={
                    "dagster/asset_partition_range_start": f"{weeks[0]}|{key}",
                    "dagster/asset_partition_range_end": f"{weeks[-1]}|{key}",
                },
            )
    finally:
        event.remove(shared, "checkout", listener)
    assert result.success
    return len(checkouts), {
        m.partition: m.metadata for m in result.asset_materializations_for_node("pipeline_overview")
    }


def test_a_batch_run_checks_out_as_many_connections_for_four_partitions_as_for_one(database_url, tenant, monkeypatch):
    url = url_string(database_url)
    monkeypatch.setenv("DYNO_DAGSTER_START_DATE", START)
    one, _ = checkouts_of_a_run(url, tenant, WEEKS[:1])
    four, materialised = checkouts_of_a_run(url, tenant, WEEKS)
    assert sorted(materialised) == [f"{w}|{tenant.tenant_id}" for w in WEEKS]
    assert {m["tenant"].value for m in materialised.values()} == {tenant_name(tenant)}
    assert four == one, (one, four)  # before: two more per partition (the run's, then its metadata's)


def test_metadata_of_a_partition_is_two_queries_and_the_tenant_name_is_looked_up_once(engine, tenant):
    with engine.connect() as conn:
        request = run_request.build_request(
            conn, "pipeline_overview", tenant.tenant_id, period_start=T0, period_end=T0 + 7 * D
        )
    results = [executor.execute(engine, request) for _ in range(2)]
    statements: list[str] = []
    listener = lambda _c, _cur, statement, *_a: statements.append(statement)  # noqa: E731
    tenant_names: dict = {}
    with engine.connect() as conn:
        event.listen(engine, "before_cursor_execute", listener)
        try:
            metadata = [
                partition_metadata(
                    engine, tenant.tenant_id, r.run_id, 10, r, connection=conn, tenant_names=tenant_names
                )
                for r in results
            ]
        finally:
            event.remove(engine, "before_cursor_execute", listener)
        assert not conn.in_transaction()  # left ready for the caller's next run
    # per partition: its preview (the tenant's name read with the first) and the lookup of the answer it
    # replaced, plus its diff with that answer when there was one: the second run replaced the first (one
    # question); the first may have replaced a run of the module's other test
    previews = [s for s in statements if s.startswith("SELECT reporting.report_pipeline_overview_fact")]
    lookups = [s for s in statements if s.startswith("SELECT earlier.run_id")]
    diffs = [s for s in statements if s.startswith("WITH paired")]
    assert len(previews) == len(lookups) == 2 and "crm.tenant" in previews[0] and "crm.tenant" not in previews[1]
    assert "replaced_run_id" in metadata[1] and len(diffs) == sum("replaced_run_id" in m for m in metadata)
    assert len(statements) == 4 + len(diffs)
    assert tenant_names == {tenant.tenant_id: tenant_name(tenant)}
    for result, shown in zip(results, metadata, strict=True):
        assert shown["run_id"].value == str(result.run_id) and shown["tenant"].value == tenant_name(tenant)
        assert shown["preview_shown"].value == "2 fact rows"
        pipelines = {record.data["pipeline"] for record in shown["preview"].value.records}
        assert pipelines == {f"pipeline 0 ({str(PIPELINE_IDS[0])[:8]})"}  # a pipeline's name beside its short id
