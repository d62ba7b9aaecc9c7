"""What Dagster shows of a report run's provenance: code versions, the CRM tables upstream, run tags (no DB),
and a partition's materialisation metadata, `known_at`, `report_version` and, after a refresh, the run it
replaced and the diff (real PostgreSQL, in-process `materialize`).
"""

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from dagster import AssetKey, AssetRecordsFilter, materialize

from dyno_reports.core.errors import ConfigError
from dyno_reports.dagster_defs.crm_assets import crm_asset_specs
from dyno_reports.dagster_defs.schedules import MAX_RUNTIME_TAG, tick_requests
from dyno_reports.reports import registry
from dyno_reports.storage.tables import crm_metadata
from dyno_reports_tests.support.dagster import instance_with_tenants, report_asset_of, report_resources
from dyno_reports_tests.support.history import DEAL_IDS, PIPELINE_IDS, T0, Row, TenantData, load, load_rows

D = timedelta(days=1)
CRM_TABLES = ("tenant", "principal", "pipeline", "stage", "deal", "deal_history")


def definitions():
    from dyno_reports.definitions import build_definitions

    return build_definitions().get_repository_def()


def test_each_report_asset_has_its_report_version_as_code_version_and_the_crm_tables_upstream():
    graph = definitions().asset_graph
    crm_keys = {AssetKey(["crm", name]) for name in CRM_TABLES}
    reports = [node for node in graph.asset_nodes if node.key not in crm_keys]
    assert len(reports) >= len(registry())
    for node in reports:
        report_type = node.metadata["report_type"]
        assert node.code_version == str(registry()[report_type].report_version)
        assert set(node.parent_keys) == crm_keys
    for key in crm_keys:
        assert graph.get(key).is_external and not graph.get(key).is_materializable


def test_the_crm_assets_carry_the_column_schema_of_the_source_contract():
    specs = {spec.key: spec for spec in crm_asset_specs()}
    assert set(specs) == {AssetKey(["crm", name]) for name in CRM_TABLES}
    for table in crm_metadata.tables.values():
        spec = specs[AssetKey(["crm", table.name])]
        assert spec.group_name == "crm" and spec.description
        schema = spec.metadata["dagster/column_schema"]
        assert [(c.name, c.constraints.nullable) for c in schema.columns] == [
            (c.name, c.nullable) for c in table.columns
        ]
        assert spec.metadata["dagster/table_name"] == f"crm.{table.name}"
    history = {
        c.name: c.type for c in specs[AssetKey(["crm", "deal_history"])].metadata["dagster/column_schema"].columns
    }
    assert history["recorded_at"] == "timestamp with time zone" and history["amount"] == "numeric(18, 2)"


def test_report_runs_carry_a_max_runtime_of_six_hours_unless_configured(monkeypatch):
    monkeypatch.delenv("DYNO_REPORT_MAX_RUNTIME_SECONDS", raising=False)
    repository = definitions()
    for job in ("weekly_reports", "monthly_reports", "quarterly_reports"):
        assert repository.get_job(job).tags[MAX_RUNTIME_TAG] == str(6 * 3600)
    at = datetime(2025, 6, 9, 1, tzinfo=UTC)
    (request,) = tick_requests("week", ["00000000-0000-0000-0000-000000000001"], {}, at)
    assert request.tags[MAX_RUNTIME_TAG] == "21600"
    monkeypatch.setenv("DYNO_REPORT_MAX_RUNTIME_SECONDS", "7200")
    assert tick_requests("week", ["00000000-0000-0000-0000-000000000001"], {}, at)[0].tags[MAX_RUNTIME_TAG] == "7200"
    monkeypatch.setenv("DYNO_REPORT_MAX_RUNTIME_SECONDS", "soon")
    with pytest.raises(ConfigError, match="DYNO_REPORT_MAX_RUNTIME_SECONDS"):
        tick_requests("week", ["00000000-0000-0000-0000-000000000001"], {}, at)


@pytest.fixture
def tenant(engine) -> TenantData:
    """Two deals in lead since before June; lead, proposal, won, lost."""
    data = TenantData()
    lead, _proposal, _won, _lost = data.add_pipeline(PIPELINE_IDS[0], ["open", "open", "won", "lost"])
    data.add_deal(DEAL_IDS[0], [(T0 - 3 * D, lead, 100)])
    data.add_deal(DEAL_IDS[1], [(T0 - 2 * D, lead, 250)])
    load(engine, data)
    return data


def test_a_refreshed_partition_names_the_run_it_replaced_and_the_diff(database_url, engine, tenant, monkeypatch):
    url = database_url.render_as_string(hide_password=False)
    monkeypatch.setenv("DYNO_DATABASE_URL", url)
    monkeypatch.setenv("DYNO_CRM_MAX_WRITE_SECONDS", "0")  # K = the run's start: the late row counts at once
    asset, key = report_asset_of("pipeline_overview"), f"2025-06-09|{tenant.tenant_id}"
    proposal = next(s for s in tenant.stages.values() if s.position == 2)
    # backdated: the first deal moved to proposal on T0 + 8 d (in the week), written after the first run
    late = Row(DEAL_IDS[0], T0 + 8 * D, proposal.stage_id, tenant.principals[0], Decimal(100), recorded_at=None)
    metadata = []
    with instance_with_tenants(str(tenant.tenant_id)) as instance:
        for late_rows in ([replace(late, recorded_at=datetime.now(UTC))], []):
            assert materialize([asset], partition_key=key, instance=instance, resources=report_resources(url)).success
            records = instance.fetch_materializations(AssetRecordsFilter(AssetKey("pipeline_overview"), [key]), 1)
            materialization = records.records[0].asset_materialization
            metadata.append({name: value.value for name, value in materialization.metadata.items()})
            load_rows(engine, tenant, late_rows)
    first, second = metadata
    assert first["report_version"] == second["report_version"] == registry()["pipeline_overview"].report_version
    assert datetime.fromisoformat(first["known_at"]) < datetime.fromisoformat(second["known_at"])
    assert "replaced_run_id" not in first and "diff_summary" not in first
    assert second["replaced_run_id"] == first["run_id"]
    # lead loses a deal of 100 to proposal, which gains an entry in the week
    assert second["diff_summary"] == "2 rows changed, 0 added, 0 removed, 0 unchanged; entered_count +1"
