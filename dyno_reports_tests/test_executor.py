"""The run executor (real PostgreSQL): atomic success, failure mid-insert, the database's own guards."""

import uuid
from datetime import timedelta

import pytest
from sqlalchemy import func, insert, select, text, update
from sqlalchemy.exc import DBAPIError

from dyno_reports.engine import run_records
from dyno_reports.storage.tables import pipeline_overview_fact, report_run
from dyno_reports_tests.support.facts import facts_by_key, run
from dyno_reports_tests.support.history import DEAL_IDS, PIPELINE_IDS, T0, TenantData, load

END = T0 + timedelta(days=7)


@pytest.fixture(scope="module")
def tenant(engine) -> TenantData:
    data = TenantData()
    lead, proposal, _won, _lost = data.add_pipeline(PIPELINE_IDS[0], ["open", "open", "won", "lost"])
    for i, deal_id in enumerate(DEAL_IDS[:5]):
        data.add_deal(
            deal_id, [(T0 - timedelta(days=i), lead, 10 * i), (T0 + timedelta(hours=i + 1), proposal, 10 * i)]
        )
    load(engine, data)
    return data


def header(engine, run_id):
    with engine.connect() as conn:
        return conn.execute(select(report_run).where(report_run.c.run_id == run_id)).mappings().one()


def fact_count(engine, run_id) -> int:
    with engine.connect() as conn:
        return conn.execute(
            select(func.count()).select_from(pipeline_overview_fact).where(pipeline_overview_fact.c.run_id == run_id)
        ).scalar_one()


def test_success_writes_header_and_facts_together(engine, tenant):
    result = run(engine, "pipeline_overview", tenant.tenant_id, T0, END)

    row = header(engine, result.run_id)
    assert result.succeeded and row["status"] == "SUCCEEDED" and row["error_message"] is None
    assert (row["period_start"], row["period_end"], row["period_grain"]) == (T0, END, "week")
    assert row["input_params"] == {
        "options": {"pipeline_ids": None, "include_closed": False},
        "period_grain": "week",
        "calendar": {"time_zone": "UTC", "week_start": 1, "fiscal_year_start_month": 1, "fiscal_year_named_by": "end"},
    }
    assert row["input_fingerprint"] == result.request.fingerprint()
    assert result.fact_rows == fact_count(engine, result.run_id) == 2
    # all five entered proposal in W; deal 0 also entered lead at exactly S (inclusive)
    assert result.headline == {"deal_count": 5, "total_amount": 100, "entered_count": 6}


def test_same_inputs_give_same_facts_and_fingerprint(engine, tenant):
    first = run(engine, "pipeline_overview", tenant.tenant_id, T0, END, {"pipeline_ids": [str(PIPELINE_IDS[0])]})
    second = run(engine, "pipeline_overview", tenant.tenant_id, T0, END, {"pipeline_ids": [str(PIPELINE_IDS[0])] * 2})

    assert first.run_id != second.run_id  # every run is kept, for trends
    assert first.request.fingerprint() == second.request.fingerprint()
    assert facts_by_key(engine, "pipeline_overview", first.run_id) == facts_by_key(
        engine, "pipeline_overview", second.run_id
    )


def test_failure_mid_insert_leaves_failed_header_and_no_facts(engine, tenant):
    # A real failure inside the INSERT ... SELECT: the second fact row of the statement raises.
    with engine.begin() as conn:
        conn.execute(
            text("""
            CREATE FUNCTION reporting.fail_on_second_row() RETURNS trigger LANGUAGE plpgsql AS $$
            BEGIN
              IF (SELECT count(*) FROM reporting.report_pipeline_overview_fact WHERE run_id = NEW.run_id) >= 1 THEN
                RAISE EXCEPTION 'injected failure mid-insert';
              END IF;
              RETURN NEW;
            END $$;
            CREATE TRIGGER fail_on_second_row BEFORE INSERT ON reporting.report_pipeline_overview_fact
              FOR EACH ROW EXECUTE FUNCTION reporting.fail_on_second_row();
        """)
        )
    try:
        result = run(engine, "pipeline_overview", tenant.tenant_id, T0, END)
    finally:
        with engine.begin() as conn:
            conn.execute(
                text(
                    "DROP TRIGGER fail_on_second_row ON reporting.report_pipeline_overview_fact;"
                    "DROP FUNCTION reporting.fail_on_second_row()"
                )
            )

    row = header(engine, result.run_id)
    assert result.status == row["status"] == "FAILED"
    assert "injected failure mid-insert" in row["error_message"]
    assert result.fact_rows == 0 and fact_count(engine, result.run_id) == 0


def test_database_refuses_facts_of_a_run_that_is_not_succeeded(engine, tenant):
    request = run(engine, "pipeline_overview", tenant.tenant_id, T0, END).request
    run_id = uuid.uuid4()
    with pytest.raises(DBAPIError, match="is not SUCCEEDED"), engine.begin() as conn:
        conn.execute(insert(report_run).values(**run_records.header_values(request, run_id, "IN_PROGRESS")))
        conn.execute(
            insert(pipeline_overview_fact).values(
                run_id=run_id,
                tenant_id=tenant.tenant_id,
                pipeline_id=PIPELINE_IDS[0],
                stage_id=uuid.uuid4(),
                deal_count=1,
                total_amount=1,
                entered_count=1,
            )
        )
    assert fact_count(engine, run_id) == 0


def test_facts_cannot_point_at_another_tenants_run(engine, tenant):
    result = run(engine, "pipeline_overview", tenant.tenant_id, T0, END)
    with pytest.raises(DBAPIError), engine.begin() as conn:
        conn.execute(
            insert(pipeline_overview_fact).values(
                run_id=result.run_id,
                tenant_id=uuid.uuid4(),
                pipeline_id=PIPELINE_IDS[0],
                stage_id=uuid.uuid4(),
                deal_count=1,
                total_amount=1,
                entered_count=1,
            )
        )


def test_a_finished_run_stays_finished(engine, tenant):
    result = run(engine, "pipeline_overview", tenant.tenant_id, T0, END)
    with pytest.raises(DBAPIError, match="cannot become FAILED"), engine.begin() as conn:
        conn.execute(
            update(report_run).where(report_run.c.run_id == result.run_id).values(status="FAILED", error_message="x")
        )
    assert header(engine, result.run_id)["status"] == "SUCCEEDED"


def test_unknown_report_type_is_refused_by_the_database(engine, tenant):
    request = run(engine, "pipeline_overview", tenant.tenant_id, T0, END).request
    values = run_records.header_values(request, uuid.uuid4(), "SUCCEEDED") | {"report_type": "made_up"}
    with pytest.raises(DBAPIError, match="report_type"), engine.begin() as conn:
        conn.execute(insert(report_run).values(**values))
