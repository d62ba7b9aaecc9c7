"""pipeline_movement against docs/definitions.md (real PostgreSQL): one deal per row of its table and its edge
cases, the balance of every row on generated histories, the refusal of a window without a start (also
at the command line), and the Dagster asset with its balance check.

Its SQL against its reference on generated histories, and the checks every report gets
(options, definition, a tenant without pipelines): test_report_registry.py.
"""

import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from click.testing import CliRunner
from dagster import AssetKey, instance_for_test, materialize
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import func, insert, select, text

from dyno_reports.cli import main as cli
from dyno_reports.core import periods
from dyno_reports.core.errors import InputError
from dyno_reports.dagster_defs.assets import report_assets
from dyno_reports.engine import run_records, run_request
from dyno_reports.reports import registry
from dyno_reports.reports.pipeline_movement.checks import unbalanced_movement_facts
from dyno_reports.storage.tables import MOVEMENTS, pipeline_movement_fact, report_run
from dyno_reports_tests.conftest import url_string
from dyno_reports_tests.reference.pipeline_movement import balances, expected
from dyno_reports_tests.support.dagster import report_resources
from dyno_reports_tests.support.facts import run_and_read
from dyno_reports_tests.support.history import DEAL_IDS, PIPELINE_IDS, TenantData, load, two_pipelines
from dyno_reports_tests.support.knowledge import A_SCOPE_DIGEST
from dyno_reports_tests.support.report_histories import movement_histories, windows_with_start

REPORT = "pipeline_movement"
H = timedelta(hours=1)
D = timedelta(days=1)
S = datetime(2025, 6, 1, tzinfo=UTC)
E = datetime(2025, 7, 1, tzinfo=UTC)
A, B = PIPELINE_IDS[:2]
OWNER, NO_DATE, DELETED = None, None, True

# One deal per case: its rows as (time, stage name, amount[, deleted]) and what it counts as, per pipeline.
# Stage names: lead / proposal / won / lost of pipeline A, b_open / b_won / b_lost of pipeline B.
CASES = {
    "open in A at both, amount up: increased by the rise": (
        [(S - D, "lead", 100), (S + D, "proposal", 130)],
        {A: {"start": (1, 100), "increased": (1, 30), "end": (1, 130)}},
    ),
    "open in A at both, amount down: decreased by the fall": (
        [(S - D, "lead", 100), (S + D, "lead", 60)],
        {A: {"start": (1, 100), "decreased": (1, 40), "end": (1, 60)}},
    ),
    "open in A at both, amount unchanged: nothing between start and end": (
        [(S - D, "lead", 100), (S + D, "proposal", 100), (S + 2 * D, "lead", 100)],
        {A: {"start": (1, 100), "end": (1, 100)}},
    ),
    "open in A, then open in B: moved out at S's amount, moved in at E's": (
        [(S - D, "lead", 100), (S + D, "b_open", 150)],
        {A: {"start": (1, 100), "moved_out": (1, 100)}, B: {"moved_in": (1, 150), "end": (1, 150)}},
    ),
    "open in A, then won (amount changed on winning): won at S's amount": (
        [(S - D, "lead", 100), (S + D, "won", 130)],
        {A: {"start": (1, 100), "won": (1, 100)}},
    ),
    "open in A, then won in B's won stage: still won for A": (
        [(S - D, "lead", 100), (S + D, "b_won", 100)],
        {A: {"start": (1, 100), "won": (1, 100)}},
    ),
    "open in A, then lost": (
        [(S - D, "proposal", 80), (S + D, "lost", 0)],
        {A: {"start": (1, 80), "lost": (1, 80)}},
    ),
    "open in A, then deleted: deleted at S's amount": (
        [(S - D, "lead", 100), (S + D, "lead", 120, DELETED)],
        {A: {"start": (1, 100), "deleted": (1, 100)}},
    ),
    "open in A, deleted and restored in W: open in A at both": (
        [(S - D, "lead", 100), (S + D, "lead", 100, DELETED), (S + 2 * D, "lead", 90)],
        {A: {"start": (1, 100), "decreased": (1, 10), "end": (1, 90)}},
    ),
    "open in B, then open in A: moved in to A": (
        [(S - D, "b_open", 70), (S + D, "proposal", 75)],
        {B: {"start": (1, 70), "moved_out": (1, 70)}, A: {"moved_in": (1, 75), "end": (1, 75)}},
    ),
    "won at S, open in A at E: reopened at E's amount": (
        [(S - 5 * D, "won", 100), (S + D, "lead", 90)],
        {A: {"reopened": (1, 90), "end": (1, 90)}},
    ),
    "lost (in B) at S, open in A at E: reopened": (
        [(S - 5 * D, "b_lost", 100), (S + D, "proposal", 40)],
        {A: {"reopened": (1, 40), "end": (1, 40)}},
    ),
    "new in W, open in A at E: created": (
        [(S + D, "lead", 55)],
        {A: {"created": (1, 55), "end": (1, 55)}},
    ),
    "deleted at S, restored in W into A: created": (
        [(S - 5 * D, "won", 10), (S - 2 * D, "won", 10, DELETED), (S + D, "lead", 20)],
        {A: {"created": (1, 20), "end": (1, 20)}},
    ),
    "created and deleted inside W: counts nowhere": (
        [(S + D, "lead", 55), (S + 2 * D, "lead", 55, DELETED)],
        {},
    ),
    "won before S and still won at E: counts nowhere": (
        [(S - 5 * D, "lead", 10), (S - 2 * D, "won", 10), (S + D, "won", 12)],
        {},
    ),
    "a row exactly at S is not the state at S": (
        [(S - D, "lead", 100), (S, "lead", 200)],
        {A: {"start": (1, 100), "increased": (1, 100), "end": (1, 200)}},
    ),
    "a deal created exactly at S did not exist at S: created": (
        [(S, "lead", 100)],
        {A: {"created": (1, 100), "end": (1, 100)}},
    ),
    "a row exactly at E is ignored": (
        [(S - D, "lead", 100), (E, "won", 100)],
        {A: {"start": (1, 100), "end": (1, 100)}},
    ),
    "a deal created at E or later counts nowhere": (
        [(E, "lead", 100), (E + D, "proposal", 100)],
        {},
    ),
    "a zero amount counts as a deal of 0.00": (
        [(S - D, "lead", 0), (S + D, "b_open", 0)],
        {A: {"start": (1, 0), "moved_out": (1, 0)}, B: {"moved_in": (1, 0), "end": (1, 0)}},
    ),
}


def one_deal_tenant(rows: list[tuple]) -> TenantData:
    data, (lead, proposal, won, lost), (b_open, b_won, b_lost) = two_pipelines()
    stages = {
        "lead": lead,
        "proposal": proposal,
        "won": won,
        "lost": lost,
        "b_open": b_open,
        "b_won": b_won,
        "b_lost": b_lost,
    }
    data.add_deal(
        DEAL_IDS[0], [(t, stages[name], amount, OWNER, NO_DATE, *deleted) for t, name, amount, *deleted in rows]
    )
    return data


def fact_row(pipeline_id: uuid.UUID, movements: dict[str, tuple[int, int]]) -> dict:
    """A whole fact row: the given (count, amount) per movement, every other one 0 / 0.00."""
    row: dict = {"pipeline_id": pipeline_id}
    for movement in MOVEMENTS:
        count, amount = movements.get(movement, (0, 0))
        row[f"{movement}_count"] = count
        row[f"{movement}_amount"] = Decimal(amount).quantize(Decimal("0.01"))
    return row


@pytest.mark.parametrize("case", CASES, ids=list(CASES))
def test_each_row_of_the_spec_table(engine, case):
    rows, counted = CASES[case]
    data = one_deal_tenant(rows)
    load(engine, data)

    facts = run_and_read(engine, REPORT, data.tenant_id, S, E)

    want = {(p,): fact_row(p, counted.get(p, {})) for p in (A, B)}  # both pipelines, zero rows included
    assert facts == want
    assert expected(data, S, E) == want  # the reference reads docs/definitions.md the same way
    assert all(balances(row) for row in facts.values())


def test_selected_pipelines_only_and_a_move_out_of_the_selection_still_counts(engine):
    data = one_deal_tenant([(S - D, "lead", 100), (S + D, "b_open", 150)])
    load(engine, data)

    facts = run_and_read(engine, REPORT, data.tenant_id, S, E, {"pipeline_ids": [str(A)]})

    assert facts == {(A,): fact_row(A, {"start": (1, 100), "moved_out": (1, 100)})}


def test_a_pipeline_with_no_deals_gets_a_row_of_zeros(engine):
    data, _, _ = two_pipelines()
    load(engine, data)

    facts = run_and_read(engine, REPORT, data.tenant_id, S, E)

    assert facts == {(A,): fact_row(A, {}), (B,): fact_row(B, {})}
    assert facts[(A,)]["end_amount"] == Decimal("0.00")


@given(choices=st.data())
def test_every_row_balances_on_generated_histories(engine, choices):
    data = choices.draw(movement_histories())
    start, end = choices.draw(windows_with_start(data))
    load(engine, data)

    facts = run_and_read(engine, REPORT, data.tenant_id, start, end)

    assert len(facts) == len(data.pipelines)
    for row in facts.values():
        assert balances(row), row


def test_a_window_without_a_start_is_refused_before_anything_is_written(engine, database_url):
    data, _, _ = two_pipelines()
    load(engine, data)
    message = f"report {REPORT} needs a window with a start"
    with engine.connect() as conn, pytest.raises(InputError, match=message):
        run_request.build_request(conn, REPORT, data.tenant_id, period_end=E)

    env = {"DYNO_DATABASE_URL": url_string(database_url), "DYNO_DEBUG": None}
    args = ["run", REPORT, "--tenant", str(data.tenant_id), "--period-end", E.date().isoformat()]
    with CliRunner().isolation(env=env) as (_out, err, _):
        with pytest.raises(SystemExit) as exited:
            cli.main(args)
        stderr = err.getvalue().decode()
    assert exited.value.code == 2
    assert stderr.startswith(f"error: {message}") and stderr.count("\n") == 1, stderr
    with engine.connect() as conn:
        written = select(func.count()).select_from(report_run).where(report_run.c.tenant_id == data.tenant_id)
        assert conn.execute(written).scalar_one() == 0


# --- Dagster: the asset and its balance check -------------------------------------------------------


def test_the_monthly_asset_materialises_and_its_rows_balance(engine, database_url, monkeypatch):
    data = one_deal_tenant([(S - D, "lead", 100), (S + D, "b_open", 150)])
    load(engine, data)
    url = url_string(database_url)
    monkeypatch.setenv("DYNO_DATABASE_URL", url)
    (movement_asset,) = [a for a in report_assets("2025-01-01") if a.key == AssetKey(REPORT)]
    resources = report_resources(url)

    with instance_for_test() as instance:
        instance.add_dynamic_partitions("tenant", [str(data.tenant_id)])
        result = materialize(
            [movement_asset], partition_key=f"2025-06-01|{data.tenant_id}", instance=instance, resources=resources
        )

    assert result.success
    evaluations = {e.check_name: e for e in result.get_asset_check_evaluations()}
    assert evaluations["movement_rows_balance"].passed
    assert evaluations["movement_rows_balance"].metadata["report_runs_checked"].value == 1
    with engine.connect() as conn:
        (header,) = conn.execute(select(report_run).where(report_run.c.dagster_run_id == result.run_id)).all()
    assert (header.period_start, header.period_end, header.period_grain) == (S, E, "month")


def test_the_balance_check_counts_this_dagster_runs_unbalanced_rows(engine):
    """A row the report would never write, slipped in with triggers off under one Dagster run id."""
    data, _, _ = two_pipelines()
    load(engine, data)
    bad_run, dagster_run_id = uuid.uuid4(), f"bad-{uuid.uuid4()}"
    request = run_request.RunRequest(
        registry()[REPORT],
        data.tenant_id,
        periods.Window(S, E),
        registry()[REPORT].options_model(),
        dagster_run_id,
        known_at=E,
    )
    balanced = {f"{m}_{k}": 0 for m in MOVEMENTS for k in ("count", "amount")}
    rows = [
        balanced | {"pipeline_id": A, "start_count": 1, "start_amount": 5, "end_count": 1, "end_amount": 5},
        balanced
        | {"pipeline_id": B, "start_count": 1, "start_amount": 4, "end_count": 1, "end_amount": 6}
        | {"increased_count": 1, "increased_amount": 2},  # a rise counts in amounts only
    ]
    with engine.begin() as conn:
        conn.execute(text("SET LOCAL session_replication_role = replica"))  # no triggers
        conn.execute(
            insert(report_run).values(
                **run_records.header_values(request, bad_run, "SUCCEEDED"), scope_digest=A_SCOPE_DIGEST
            )
        )
        conn.execute(
            insert(pipeline_movement_fact), [r | {"run_id": bad_run, "tenant_id": data.tenant_id} for r in rows]
        )

    with engine.connect() as conn:
        assert conn.execute(unbalanced_movement_facts(dagster_run_id)).scalar_one() == 0  # amounts balance
        assert conn.execute(unbalanced_movement_facts("another-run")).scalar_one() == 0
        conn.execute(text("SET LOCAL session_replication_role = replica"))
        conn.execute(
            pipeline_movement_fact.update()
            .where(pipeline_movement_fact.c.run_id == bad_run, pipeline_movement_fact.c.pipeline_id == A)
            .values(won_count=1)
        )
        assert conn.execute(unbalanced_movement_facts(dagster_run_id)).scalar_one() == 1  # counts do not
        conn.rollback()
