"""Names beside ids (real PostgreSQL): `dyno_reports.read.names` and the materialisation preview.

Two tenants share pipeline, stage, owner and deal UUIDs (as the test data do on
purpose) but name them differently: each run must get its own tenant's names.
"""

from datetime import timedelta
from decimal import Decimal
from uuid import uuid4

import pytest
from sqlalchemy import select, update

from dyno_reports.dagster_defs.preview import HEADERS, facts_preview
from dyno_reports.read import names
from dyno_reports.read.names import tenant_name
from dyno_reports.reports import get_report, registry
from dyno_reports.storage import tables
from dyno_reports_tests.support.facts import facts_by_key, run
from dyno_reports_tests.support.history import DEAL_IDS, PIPELINE_IDS, PRINCIPAL_IDS, T0, TenantData, load

D = timedelta(days=1)
WEEK = (T0, T0 + 7 * D)
MONTH = (T0 - 30 * D, T0 + 30 * D)


def tenant_with_deals() -> TenantData:
    data = TenantData()
    lead, proposal, won, lost = data.add_pipeline(PIPELINE_IDS[0], ["open", "open", "won", "lost"])
    second_lead, second_won, _ = data.add_pipeline(PIPELINE_IDS[1], ["open", "won", "lost"])
    owner, other_owner = data.principals
    data.add_deal(DEAL_IDS[0], [(T0 - 3 * D, lead, 100, owner), (T0 + D, proposal, 250, owner)])
    data.add_deal(DEAL_IDS[1], [(T0 - 10 * D, lead, 40, other_owner), (T0 + 2 * D, won, 40, other_owner)])
    data.add_deal(DEAL_IDS[2], [(T0 - 2 * D, second_lead, 70, owner), (T0 + 3 * D, lost, 70, owner)])
    data.add_deal(DEAL_IDS[3], [(T0 - 5 * D, second_lead, 90, other_owner), (T0 + D, second_won, 90, other_owner)])
    return data


def rename(engine, data: TenantData, prefix: str, tenant: str) -> None:
    """Give the tenant's CRM rows names of its own (the loader names them alike in every tenant)."""
    t = data.tenant_id
    with engine.begin() as conn:
        conn.execute(update(tables.tenant).where(tables.tenant.c.tenant_id == t).values(name=tenant))
        for table, name in [(tables.pipeline, "name"), (tables.stage, "name"), (tables.principal, "display_name")]:
            conn.execute(update(table).where(table.c.tenant_id == t).values({name: prefix + " " + table.c[name]}))


@pytest.fixture(scope="module")
def tenants(engine) -> dict[str, TenantData]:
    both = {"acme": tenant_with_deals(), "globex": tenant_with_deals()}
    for prefix, data in both.items():
        load(engine, data)
        rename(engine, data, prefix, f"{prefix.title()} | Ltd")
    return both


@pytest.mark.parametrize("prefix", ["acme", "globex"])
def test_same_uuids_in_two_tenants_each_get_their_own_names(engine, tenants, prefix):
    data = tenants[prefix]
    result = run(engine, "win_loss", data.tenant_id, *MONTH)
    assert result.succeeded, result.error_message

    with engine.connect() as conn:
        got = names.run_names(conn, get_report("win_loss").fact_table, data.tenant_id, result.run_id)

    assert got.tenant == f"{prefix.title()} | Ltd"
    assert got.by_column == {
        "pipeline_id": {PIPELINE_IDS[0]: f"{prefix} pipeline 0", PIPELINE_IDS[1]: f"{prefix} pipeline 1"},
        "principal_id": {PRINCIPAL_IDS[0]: f"{prefix} owner 0", PRINCIPAL_IDS[1]: f"{prefix} owner 1"},
    }


def test_only_the_ids_in_the_runs_facts_are_named(engine, tenants):
    data = tenants["acme"]
    result = run(engine, "pipeline_overview", data.tenant_id, *WEEK, {"pipeline_ids": [str(PIPELINE_IDS[1])]})

    with engine.connect() as conn:
        got = names.run_names(conn, get_report("pipeline_overview").fact_table, data.tenant_id, result.run_id)

    assert got.by_column["pipeline_id"] == {PIPELINE_IDS[1]: "acme pipeline 1"}
    stages_in_facts = {stage_id for _pipeline, stage_id in facts_by_key(engine, "pipeline_overview", result.run_id)}
    assert set(got.by_column["stage_id"]) == stages_in_facts
    assert stages_in_facts < {s.stage_id for s in data.stages.values() if s.pipeline_id == PIPELINE_IDS[1]}
    assert all(name.startswith("acme ") for name in got.by_column["stage_id"].values())


def test_another_tenants_run_id_names_nothing(engine, tenants):
    acme, globex = tenants["acme"], tenants["globex"]
    globex_run = run(engine, "win_loss", globex.tenant_id, *MONTH)

    with engine.connect() as conn:
        got = names.run_names(conn, get_report("win_loss").fact_table, acme.tenant_id, globex_run.run_id)

    assert got.by_column == {"pipeline_id": {}, "principal_id": {}}


def test_label_is_name_and_short_id_else_the_full_id():
    known, unknown = uuid4(), uuid4()
    got = names.RunNames(tenant="t", by_column={"stage_id": {known: "Lead"}})
    assert got.label("stage_id", known) == f"Lead ({str(known)[:8]})"
    assert got.label("stage_id", unknown) == str(unknown)
    assert got.label("stage_id", None) is None


@pytest.mark.parametrize("report_type", sorted(registry()))
def test_preview_is_a_table_with_names_beside_ids(engine, tenants, report_type):
    data = tenants["globex"]
    report = get_report(report_type)
    result = run(engine, report_type, data.tenant_id, *(WEEK if report.cadence == "week" else MONTH))
    assert result.succeeded and result.fact_rows > 0, result.error_message

    preview = facts_preview(engine, report, data.tenant_id, result.run_id, result.fact_rows, limit=50)

    assert preview.tenant_name == "Globex | Ltd" and preview.shown == f"{result.fact_rows} fact rows"
    headers = [c.name for c in preview.schema.columns]
    id_columns = [c for c in report.dimensions if c in names.NAMED_ID_COLUMNS]
    assert id_columns and id_columns[0] == "pipeline_id"
    assert headers == [HEADERS.get(c, c) for c in report.fact_columns] and "pipeline" in headers
    assert len(preview.records) == result.fact_rows
    for column in id_columns:
        cells = {record.data[HEADERS[column]] for record in preview.records}
        assert all(cell.startswith("globex ") and cell.endswith(")") for cell in cells), cells
    assert "acme" not in str(preview.records)
    table = report.fact_table
    with engine.connect() as conn:
        stored = conn.execute(
            select(*(table.c[m] for m in report.metrics))
            .where(table.c.run_id == result.run_id)
            .order_by(*(table.c[d] for d in report.dimensions))
        ).all()
    for record, row in zip(preview.records, stored, strict=True):  # counts ints, decimals exact as text
        assert [record.data[m] for m in report.metrics] == [
            format(v, "f") if isinstance(v, Decimal) else v for v in row
        ], record
        assert all(v is None or type(v) in (str, int) for v in record.data.values()), record


def test_preview_says_first_n_of_m_and_tenant_name_of_an_unknown_tenant(engine, tenants):
    data = tenants["acme"]
    report = get_report("pipeline_overview")
    result = run(engine, "pipeline_overview", data.tenant_id, *WEEK)

    preview = facts_preview(engine, report, data.tenant_id, result.run_id, result.fact_rows, limit=2)

    assert result.fact_rows > 2 and preview.shown == f"first 2 of {result.fact_rows} fact rows"
    assert len(preview.records) == 2 and preview.tenant_name == "Acme | Ltd"
    with engine.connect() as conn:
        assert tenant_name(conn, data.tenant_id) == "Acme | Ltd"
        assert tenant_name(conn, uuid4()) is None
