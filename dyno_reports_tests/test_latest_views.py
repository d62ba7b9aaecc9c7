"""The latest views of migrations 0005 and 0007 (real PostgreSQL): `reporting.report_run_latest` picks, per
tenant, report and inputs, the SUCCEEDED run that is final before any so-far one, then with the greatest
(generated_at, run_id), and says whether it is a so-far run; `report_<name>_latest` carries that run's facts;
row-level security applies through them (security_invoker)."""

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime

import pytest
from sqlalchemy import Connection, Engine, insert, text

from dyno_reports.devtools import seed
from dyno_reports.engine import executor, run_records, run_request
from dyno_reports.reports import registry
from dyno_reports.storage.tables import report_run
from dyno_reports_tests.support.facts import facts_by_key, run

READER = "dyno_report_reader"
START, END = datetime(2025, 5, 1, tzinfo=UTC), datetime(2025, 6, 1, tzinfo=UTC)
REPORT = "pipeline_movement"
# What each report_<name>_latest adds to its fact columns, from the run (the contract other code reads).
RUN_COLUMNS = [
    "period_start", "period_end", "period_grain", "input_fingerprint", "input_params", "generated_at", "so_far"
]  # fmt: skip


@pytest.fixture(scope="module")
def tenants(engine) -> list[uuid.UUID]:
    return [t.tenant_id for t in seed.seed(engine, tenants=2, deals_per_tenant=40, random_seed=11)]


def view_rows(conn: Connection, view: str, tenant: uuid.UUID, fingerprint: str | None = None) -> list[dict]:
    """Rows of reporting.<view> for one tenant (and one input fingerprint when given)."""
    query = f"SELECT * FROM reporting.{view} WHERE tenant_id = :t"
    query += " AND (CAST(:f AS text) IS NULL OR input_fingerprint = :f)"
    return [dict(r) for r in conn.execute(text(query), {"t": tenant, "f": fingerprint}).mappings()]


def latest_run_ids(engine: Engine, tenant: uuid.UUID, fingerprint: str) -> list[uuid.UUID]:
    with engine.connect() as conn:
        return [row["run_id"] for row in view_rows(conn, "report_run_latest", tenant, fingerprint)]


def view_facts(engine: Engine, report_type: str, tenant: uuid.UUID, fingerprint: str) -> dict[tuple, dict]:
    """The view's rows keyed by dimension values, as `facts_by_key` keys a run's facts, and their run ids."""
    report = registry()[report_type]
    with engine.connect() as conn:
        rows = view_rows(conn, f"report_{report_type}_latest", tenant, fingerprint)
    return {tuple(r[c] for c in report.dimensions): r for r in rows}


def test_every_view_has_the_contract_columns_and_runs_as_its_caller(engine):
    with engine.connect() as conn:

        def columns(view: str) -> list[str]:
            query = (
                "SELECT column_name FROM information_schema.columns"
                " WHERE table_schema = 'reporting' AND table_name = :v ORDER BY ordinal_position"
            )
            return list(conn.execute(text(query), {"v": view}).scalars())

        # columns added later are appended: CREATE OR REPLACE VIEW (so_far 0007, what a run knew 0011)
        knew = ["known_at", "report_version", "scope_digest"]
        header = [column.name for column in report_run.c if column.name not in knew]
        assert columns("report_run_latest") == [*header, "so_far", *knew]
        for name, report in registry().items():
            # an attribute added later (weighted_pipeline's close_quarter, 0010) is appended too
            own = [*report.dimensions, *report.metrics]
            appended = [*report.attributes, "known_at"]
            assert columns(f"report_{name}_latest") == ["tenant_id", "run_id", *own, *RUN_COLUMNS, *appended]
        options = dict(
            conn.execute(
                text("SELECT relname, reloptions FROM pg_class WHERE relnamespace = 'reporting'::regnamespace")
            ).all()
        )
    views = ["report_run_latest", *(f"report_{name}_latest" for name in registry())]
    for view in views:
        assert options[view] == ["security_invoker=true"], view


def test_the_latest_succeeded_run_and_only_its_facts(engine, tenants):
    tenant = tenants[0]
    first = run(engine, REPORT, tenant, START, END)
    second = run(engine, REPORT, tenant, START, END)
    assert first.succeeded and second.succeeded
    fingerprint = second.request.fingerprint()
    assert first.request.fingerprint() == fingerprint

    assert latest_run_ids(engine, tenant, fingerprint) == [second.run_id]
    facts = view_facts(engine, REPORT, tenant, fingerprint)
    assert {row["run_id"] for row in facts.values()} == {second.run_id}
    columns = registry()[REPORT].fact_columns
    assert {key: {c: row[c] for c in columns} for key, row in facts.items()} == facts_by_key(
        engine, REPORT, second.run_id
    )
    row = next(iter(facts.values()))
    assert (row["period_start"], row["period_end"], row["period_grain"]) == (START, END, "month")
    assert row["input_params"] == second.request.input_params()


def test_a_later_failed_or_unfinished_run_does_not_hide_the_succeeded_one(engine, tenants):
    tenant = tenants[1]
    succeeded = run(engine, REPORT, tenant, START, END)
    fingerprint = succeeded.request.fingerprint()
    run_records.record_failure(engine, succeeded.request, uuid.uuid4(), "a later run failed")
    with engine.begin() as conn:
        values = run_records.header_values(succeeded.request, uuid.uuid4(), "IN_PROGRESS")
        conn.execute(insert(report_run).values(**values, generated_at=datetime(2999, 1, 1, tzinfo=UTC)))

    assert latest_run_ids(engine, tenant, fingerprint) == [succeeded.run_id]
    assert {row["run_id"] for row in view_facts(engine, REPORT, tenant, fingerprint).values()} == {succeeded.run_id}


def test_other_inputs_are_other_rows(engine, tenants):
    tenant = tenants[0]
    every = run(engine, REPORT, tenant, START, END)
    pipelines = sorted(facts_by_key(engine, REPORT, every.run_id))
    chosen = run(engine, REPORT, tenant, START, END, {"pipeline_ids": [str(pipelines[0][0])]})
    later_month = run(engine, REPORT, tenant, END, datetime(2025, 7, 1, tzinfo=UTC))

    for result in (every, chosen, later_month):
        assert latest_run_ids(engine, tenant, result.request.fingerprint()) == [result.run_id]
    assert set(view_facts(engine, REPORT, tenant, chosen.request.fingerprint())) == {pipelines[0]}


def test_ties_on_generated_at_go_to_the_greatest_run_id(engine, tenants):
    tenant, fingerprint, at = tenants[0], "f" * 64, datetime(2025, 1, 1, tzinfo=UTC)
    run_ids = sorted(uuid.uuid4() for _ in range(3))
    header = {
        "tenant_id": tenant,
        "report_type": REPORT,
        "period_start": START,
        "period_end": END,
        "period_grain": "month",
        "input_fingerprint": fingerprint,
        "status": "SUCCEEDED",
        "generated_at": at,
        "known_at": at,
        "report_version": 1,
        "scope_digest": "0" * 64,
    }
    with engine.begin() as conn:
        conn.execute(insert(report_run), [{**header, "run_id": run_id} for run_id in run_ids])

    assert latest_run_ids(engine, tenant, fingerprint) == [run_ids[-1]]


@contextmanager
def as_viewer(engine: Engine, tenant: uuid.UUID | None) -> Iterator[Connection]:
    """A transaction as a fresh non-superuser role in dyno_report_reader, dyno.tenant_id set when given."""
    role = f"dyno_test_viewer_{uuid.uuid4().hex[:12]}"
    with engine.begin() as conn:
        conn.exec_driver_sql(f"CREATE ROLE {role} NOLOGIN NOSUPERUSER IN ROLE {READER}")
    try:
        with engine.connect() as conn:
            if tenant is not None:
                conn.execute(text("SELECT set_config('dyno.tenant_id', :t, true)"), {"t": str(tenant)})
            conn.exec_driver_sql(f"SET LOCAL ROLE {role}")
            yield conn
            conn.rollback()
    finally:
        with engine.begin() as conn:
            conn.exec_driver_sql(f"DROP ROLE {role}")


def test_another_tenants_rows_are_invisible_through_the_views(engine, tenants):
    for tenant in tenants:
        assert run(engine, REPORT, tenant, START, END).succeeded
    views = ["report_run_latest", *(f"report_{name}_latest" for name in registry())]
    with engine.connect() as conn:  # the owner (not bound by the policies) sees both tenants
        for view in ("report_run_latest", f"report_{REPORT}_latest"):
            seen = set(conn.execute(text(f"SELECT DISTINCT tenant_id FROM reporting.{view}")).scalars())
            assert seen >= set(tenants), view

    for tenant in tenants:
        with as_viewer(engine, tenant) as conn:
            for view in views:
                seen = set(conn.execute(text(f"SELECT DISTINCT tenant_id FROM reporting.{view}")).scalars())
                assert seen <= {tenant}, view
            assert conn.execute(text(f"SELECT count(*) FROM reporting.report_{REPORT}_latest")).scalar_one() > 0
    with as_viewer(engine, None) as conn:
        for view in views:
            assert conn.execute(text(f"SELECT count(*) FROM reporting.{view}")).scalar_one() == 0, view


def test_a_final_run_is_preferred_to_a_later_so_far_run_and_so_far_is_shown(engine, tenants):
    """Runs of April 2025 (a window no other test runs) as made on April 20 (a so-far run) and after its end."""
    tenant, april, may = tenants[1], datetime(2025, 4, 1, tzinfo=UTC), datetime(2025, 5, 1, tzinfo=UTC)
    while_open, after_end = datetime(2025, 4, 20, tzinfo=UTC), datetime(2025, 5, 2, tzinfo=UTC)

    def run_as_of(now: datetime) -> executor.RunResult:
        with engine.connect() as conn:
            request = run_request.build_request(
                conn, REPORT, tenant, period_start=april, period_end=may, so_far=True, now=now
            )
        result = executor.execute(engine, request)
        assert result.succeeded, result.error_message
        return result

    def latest() -> list[tuple[uuid.UUID, bool]]:
        with engine.connect() as conn:
            return [(r["run_id"], r["so_far"]) for r in view_rows(conn, "report_run_latest", tenant, fingerprint)]

    first_so_far = run_as_of(while_open)
    fingerprint = first_so_far.request.fingerprint()
    assert first_so_far.request.so_far and first_so_far.request.input_params()["so_far"] is True
    assert latest() == [(first_so_far.run_id, True)]  # no final run yet: the so-far run is the current answer
    final = run_as_of(after_end)
    assert not final.request.so_far and final.request.fingerprint() == fingerprint  # the same question
    assert latest() == [(final.run_id, False)]
    later_so_far = run_as_of(while_open)  # made after the final run (a late retry, a clock behind)
    assert latest() == [(final.run_id, False)]
    facts = view_facts(engine, REPORT, tenant, fingerprint)
    assert {(row["run_id"], row["so_far"]) for row in facts.values()} == {(final.run_id, False)}
    later_final = run_as_of(after_end)
    assert latest() == [(later_final.run_id, False)]  # among final runs, the latest as before
    assert later_so_far.run_id not in {run_id for run_id, _ in latest()}
