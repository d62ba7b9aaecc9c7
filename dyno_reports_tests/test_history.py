"""Immutable run history (real PostgreSQL, migration 0003): finished runs and facts cannot change or go,
except through the one retention path, reporting.prune_report_runs (`dyno-reports runs prune`)."""

import dataclasses
import itertools
import subprocess
import sys
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import Engine, func, select, text, update
from sqlalchemy.exc import DBAPIError

from dyno_reports.core.errors import InputError
from dyno_reports.devtools import seed
from dyno_reports.engine import executor, retention, run_records, run_request
from dyno_reports.reports import registry
from dyno_reports.storage.tables import report_run, win_loss_fact

START, END = datetime(2025, 3, 1, tzinfo=UTC), datetime(2025, 6, 1, tzinfo=UTC)
LATER_END = datetime(2025, 7, 1, tzinfo=UTC)


@pytest.fixture(scope="module")
def tenants(engine) -> list[str]:
    return [str(t.tenant_id) for t in seed.seed(engine, tenants=3, deals_per_tenant=30, random_seed=9)]


def request(
    engine: Engine, report_type: str, tenant: str, end: datetime = END, start: datetime = START
) -> run_request.RunRequest:
    with engine.connect() as conn:
        return run_request.build_request(conn, report_type, tenant, period_start=start, period_end=end)


def succeed(engine: Engine, req: run_request.RunRequest) -> uuid.UUID:
    result = executor.execute(engine, req)
    assert result.succeeded, result.error_message
    return result.run_id


def fail(engine: Engine, req: run_request.RunRequest) -> uuid.UUID:
    run_id = uuid.uuid4()
    run_records.record_failure(engine, req, run_id, "boom")
    return run_id


@pytest.fixture(scope="module")
def finished(engine, tenants) -> dict[str, uuid.UUID]:
    req = request(engine, "win_loss", tenants[0])
    return {"SUCCEEDED": succeed(engine, req), "FAILED": fail(engine, req)}


def run_ids(engine: Engine, tenant: str) -> set[uuid.UUID]:
    with engine.connect() as conn:
        return set(
            conn.execute(select(report_run.c.run_id).where(report_run.c.tenant_id == uuid.UUID(tenant))).scalars()
        )


def fact_count(engine: Engine, run_id: uuid.UUID) -> int:
    with engine.connect() as conn:
        return conn.execute(
            select(func.count()).select_from(win_loss_fact).where(win_loss_fact.c.run_id == run_id)
        ).scalar_one()


# --- finished runs and facts do not change ----------------------------------------------------


@pytest.mark.parametrize("status", ["SUCCEEDED", "FAILED"])
@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"input_params": {"options": {}}}, "input_params cannot change"),
        ({"period_end": LATER_END}, "period_end cannot change"),
        ({"input_fingerprint": "0" * 64}, "input_fingerprint cannot change"),
        ({"tenant_id": uuid.uuid4()}, "tenant_id cannot change"),
        ({"generated_at": func.now()}, "generated_at cannot change"),
        ({"error_message": "rewritten"}, "error_message cannot change"),
        ({"status": "IN_PROGRESS"}, "cannot become IN_PROGRESS"),
    ],
)
def test_a_finished_run_cannot_change(engine, finished, status, change, message):
    run_id = finished[status]
    with pytest.raises(DBAPIError, match=message), engine.begin() as conn:
        conn.execute(update(report_run).where(report_run.c.run_id == run_id).values(**change))


def test_a_succeeded_run_cannot_become_failed_nor_the_reverse(engine, finished):
    for status, other in (("SUCCEEDED", "FAILED"), ("FAILED", "SUCCEEDED")):
        with pytest.raises(DBAPIError, match=f"is {status} and cannot become {other}"), engine.begin() as conn:
            conn.execute(
                update(report_run)
                .where(report_run.c.run_id == finished[status])
                .values(status=other, error_message="x")
            )


def test_an_in_progress_run_may_get_its_outcome_but_not_other_inputs(engine, tenants):
    """The transitions the executor and the Dagster reconcile make (failures._fail_unrecorded)."""
    req = request(engine, "win_loss", tenants[0])
    run_id = uuid.uuid4()
    with engine.begin() as conn:  # a header left IN_PROGRESS, as a cut-off transaction could leave it to the sweep
        conn.execute(report_run.insert().values(**run_records.header_values(req, run_id, "IN_PROGRESS")))
    with pytest.raises(DBAPIError, match="period_end cannot change"), engine.begin() as conn:
        conn.execute(update(report_run).where(report_run.c.run_id == run_id).values(period_end=LATER_END))
    with engine.begin() as conn:
        changed = conn.execute(
            update(report_run)
            .where(report_run.c.run_id == run_id, report_run.c.status == "IN_PROGRESS")
            .values(status="FAILED", error_message="reaped")
        ).rowcount
    assert changed == 1


@pytest.mark.parametrize(
    "statement",
    [
        "DELETE FROM reporting.report_run WHERE run_id = :r",
        "DELETE FROM reporting.report_win_loss_fact WHERE run_id = :r",
        "UPDATE reporting.report_win_loss_fact SET won_count = won_count + 1 WHERE run_id = :r",
        "UPDATE reporting.report_win_loss_fact SET tenant_id = tenant_id WHERE run_id = :r",
    ],
)
def test_runs_and_facts_cannot_be_deleted_nor_facts_updated(engine, finished, statement):
    run_id = finished["SUCCEEDED"]
    before = fact_count(engine, run_id)
    assert before > 0
    with pytest.raises(DBAPIError, match="refused"), engine.begin() as conn:
        conn.execute(text(statement), {"r": run_id})
    assert fact_count(engine, run_id) == before


@pytest.mark.parametrize(
    "statement", ["TRUNCATE reporting.report_run CASCADE", "TRUNCATE reporting.report_win_loss_fact"]
)
def test_history_cannot_be_truncated(engine, finished, statement):
    with pytest.raises(DBAPIError, match=r"TRUNCATE of reporting\..* refused"), engine.begin() as conn:
        conn.exec_driver_sql(statement)
    assert fact_count(engine, finished["SUCCEEDED"]) > 0


def test_the_retention_flag_is_not_left_behind_by_the_prune_function(engine, finished):
    with pytest.raises(DBAPIError, match="refused"), engine.begin() as conn:
        conn.execute(text("SELECT count(*) FROM reporting.prune_report_runs(5, false)")).scalar_one()
        conn.execute(text("DELETE FROM reporting.report_run WHERE run_id = :r"), {"r": finished["FAILED"]})


# --- the retention path -----------------------------------------------------------------------


HISTORIES = itertools.count()


@pytest.fixture
def history(engine, tenants) -> dict[str, list[uuid.UUID]]:
    """tenants[1], win_loss, one fingerprint A: S1 S2 F3 F4 (oldest first); fingerprint B: F1 F2;
    pipeline_overview, fingerprint C: S1 F2. Fresh fingerprints for each test (windows starting a
    day later each time), after the previous test's runs went through the retention path itself."""
    tenant = tenants[1]
    retention.prune(engine, 0, dry_run=False, tenant_id=tenant)  # only the latest SUCCEEDED of each stay
    start = START + timedelta(days=next(HISTORIES))
    a, b = request(engine, "win_loss", tenant, start=start), request(engine, "win_loss", tenant, LATER_END, start)
    c = request(engine, "pipeline_overview", tenant, start=start)
    return {
        "A": [succeed(engine, a), succeed(engine, a), fail(engine, a), fail(engine, a)],
        "B": [fail(engine, b), fail(engine, b)],
        "C": [succeed(engine, c), fail(engine, c)],
    }


def test_prune_dry_run_deletes_nothing_and_names_what_it_would(engine, tenants, history):
    before = run_ids(engine, tenants[1])
    a, b, c = history["A"], history["B"], history["C"]
    summary = retention.prune(engine, 1, dry_run=True, tenant_id=tenants[1])
    assert run_ids(engine, tenants[1]) == before
    # A keeps F4 (newest) and S2 (newest SUCCEEDED); B keeps F2; C keeps F2 and S1 (newest SUCCEEDED)
    assert set(summary.run_ids) == {a[0], a[2], b[0]}
    assert dict(summary.runs) == {"win_loss": 3}
    assert summary.facts["win_loss"] == fact_count(engine, a[0]) > 0
    assert summary.lines()[-1] == "dry run: nothing was deleted"
    assert c[0] in before


def test_prune_keeps_the_latest_n_and_the_latest_succeeded_of_each_fingerprint(engine, tenants, history):
    a, b, c = history["A"], history["B"], history["C"]
    others = run_ids(engine, tenants[0]) | run_ids(engine, tenants[2])
    summary = retention.prune(engine, 1, dry_run=False, tenant_id=tenants[1])
    assert set(summary.run_ids) == {a[0], a[2], b[0]}
    left = run_ids(engine, tenants[1])
    assert {a[1], a[3], b[1], c[0], c[1]} <= left and not left & {a[0], a[2], b[0]}
    assert fact_count(engine, a[0]) == 0  # the facts went with their run
    assert fact_count(engine, a[1]) > 0
    assert run_ids(engine, tenants[0]) | run_ids(engine, tenants[2]) == others  # --tenant: no other tenant touched

    summary = retention.prune(engine, 0, dry_run=False, tenant_id=tenants[1], report_type="pipeline_overview")
    assert summary.run_ids == [c[1]] and dict(summary.runs) == {"pipeline_overview": 1}
    summary = retention.prune(engine, 0, dry_run=False, tenant_id=tenants[1])
    assert set(summary.run_ids) == {a[3], b[1]}  # keep 0: only the latest SUCCEEDED of each fingerprint stays
    assert run_ids(engine, tenants[1]) >= {a[1], c[0]}
    assert retention.prune(engine, 0, dry_run=False, tenant_id=tenants[1]).run_ids == []


def test_prune_keeps_the_final_run_the_latest_view_shows_over_a_later_so_far_run(engine, tenants):
    """A so-far run of a window (its input_params say so) made after a final run of the same window does not
    displace the final one: the latest views show the final run, and so prune keeps it."""
    tenant = tenants[2]
    req = request(engine, "deal_velocity", tenant, start=START + timedelta(days=next(HISTORIES)))
    final = succeed(engine, req)
    so_far = succeed(engine, dataclasses.replace(req, so_far=True))

    summary = retention.prune(engine, 0, dry_run=False, tenant_id=tenant, report_type="deal_velocity")

    assert summary.run_ids == [so_far]
    with engine.connect() as conn:
        shown = conn.execute(
            text("SELECT run_id FROM reporting.report_run_latest WHERE input_fingerprint = :f"),
            {"f": req.fingerprint()},
        ).scalar_one()
    assert shown == final and final in run_ids(engine, tenant)


def test_prune_refuses_bad_arguments(engine, tenants):
    with pytest.raises(DBAPIError, match="keep_latest must be 0 or more"), engine.begin() as conn:
        conn.execute(text("SELECT * FROM reporting.prune_report_runs(-1, true)")).all()
    with pytest.raises(DBAPIError, match="unknown report type"), engine.begin() as conn:
        conn.execute(text("SELECT * FROM reporting.prune_report_runs(1, true, NULL, 'nope')")).all()
    with pytest.raises(InputError):
        retention.prune(engine, 1, dry_run=True, report_type="nope")
    with pytest.raises(InputError):
        retention.prune(engine, 1, dry_run=True, tenant_id="acme")


def dyno(env: dict[str, str], *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "dyno_reports.cli.main", *args], env=env, capture_output=True, text=True, timeout=120
    )


def test_runs_prune_command(engine, tenants, history, cli_env):
    before = run_ids(engine, tenants[1])
    dry = dyno(cli_env, "runs", "prune", "--keep-latest", "1", "--dry-run", "--tenant", tenants[1])
    assert dry.returncode == 0, dry.stderr
    facts = fact_count(engine, history["A"][0])
    assert dry.stdout.splitlines() == [
        f"win_loss: would delete 3 run(s), {facts} fact row(s)",
        "would delete 3 run(s) in all (keeping the 1 latest per input fingerprint and the latest SUCCEEDED one)",
        "dry run: nothing was deleted",
    ]
    assert run_ids(engine, tenants[1]) == before

    done = dyno(cli_env, "runs", "prune", "--keep-latest", "1", "--tenant", tenants[1], "--report", "win_loss")
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[0] == f"win_loss: deleted 3 run(s), {facts} fact row(s)"
    assert len(run_ids(engine, tenants[1])) == len(before) - 3

    for args, status in [(("--keep-latest", "-1"), 2), (("--keep-latest", "1", "--report", "nope"), 2)]:
        refused = dyno(cli_env, "runs", "prune", *args)
        assert refused.returncode == status and refused.stderr.startswith("error: "), refused.stderr


def test_prune_covers_every_report_type(engine):
    with engine.connect() as conn:
        rows = conn.execute(text("SELECT * FROM reporting.prune_report_runs(1000000, true)")).all()
        known = set(conn.execute(text("SELECT report_type FROM reporting.report_type")).scalars())
    assert rows == [] and known == set(registry())
