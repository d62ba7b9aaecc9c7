"""`dyno-reports backfill` and engine/backfill.py (real PostgreSQL; the CLI in a subprocess, and in-process where
a period is made to fail): the tenant's local periods in a range, one run each with the facts a single `run` of
that window writes, month and quarter cadences, the refusals (nothing written), a failed period, --json.
"""

import json
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select, text

from dyno_reports.cli.main import main
from dyno_reports.core.errors import RunCancelled
from dyno_reports.engine import backfill, executor, multi_period
from dyno_reports.engine.run_request import RunRequest
from dyno_reports.storage.tables import report_run
from dyno_reports_tests.support.facts import facts_by_key, run
from dyno_reports_tests.support.history import DEAL_IDS, PIPELINE_IDS, T0, TenantData, load
from dyno_reports_tests.test_cli import dyno, run_count

D = timedelta(days=1)
SYDNEY = ("Australia/Sydney", 1, 7, "end")
LOS_ANGELES = ("America/Los_Angeles", 7, 2, "end")  # Sunday weeks
CLOSED = '{"include_closed": true}'


def history(calendar: tuple) -> TenantData:
    """Deals moving through June 2025 and into the autumn, some at hours that fall on another local day."""
    data = TenantData(calendar=calendar)
    lead, won, lost = data.add_pipeline(PIPELINE_IDS[0], ["open", "won", "lost"])
    data.add_deal(DEAL_IDS[0], [(T0 - 3 * D, lead, 100), (T0 + 9 * D + timedelta(hours=15), won, 120)])
    data.add_deal(DEAL_IDS[1], [(T0 + 2 * D, lead, 40), (T0 + 20 * D + timedelta(hours=20), lost, 40)])
    data.add_deal(DEAL_IDS[2], [(T0 + 13 * D + timedelta(hours=14), lead, 70), (T0 + 100 * D, won, 90)])
    return data


@pytest.fixture(scope="module")
def sydney(engine) -> TenantData:
    data = history(SYDNEY)
    load(engine, data)
    return data


@pytest.fixture(scope="module")
def los_angeles(engine) -> TenantData:
    data = history(LOS_ANGELES)
    load(engine, data)
    return data


def backfill_json(env, data: TenantData, report: str, *args: str) -> tuple[dict, list[str]]:
    done = dyno(env, "backfill", report, "--tenant", str(data.tenant_id), *args, "--json")
    assert done.returncode == 0, done.stderr
    lines = done.stdout.strip().splitlines()
    return json.loads(lines[-1]), [lines[0], *done.stderr.strip().splitlines()]


def test_four_local_weeks_write_the_facts_of_four_single_runs(cli_env, engine, sydney):
    summary, said = backfill_json(
        cli_env, sydney, "pipeline_overview", "--from", "2025-06-02", "--to", "2025-06-30", "--options", CLOSED
    )
    assert said[0] == "4 periods: 4 SUCCEEDED, 0 FAILED"
    assert said[1] == "reading the tenant's history once for 4 periods ..."  # one pass for the four weeks
    assert said[2].startswith("... done (") and said[2].endswith(" s)")
    assert said[3].startswith("[1/4] week of 2025-06-02 (Australia/Sydney)  SUCCEEDED  run_id ")
    assert [line[:6] for line in said[3:]] == ["[1/4] ", "[2/4] ", "[3/4] ", "[4/4] "]
    assert (summary["periods"], summary["succeeded"], summary["failed"], summary["cadence"]) == (4, 4, 0, "week")
    runs = summary["runs"]
    assert [r["label"] for r in runs] == ["2025-06-02", "2025-06-09", "2025-06-16", "2025-06-23"]
    assert runs[0]["period_start"] == "2025-06-01T14:00:00+00:00"  # Sydney's midnight, in UTC
    assert all(r["status"] == "SUCCEEDED" and r["error_message"] is None for r in runs)
    for r in runs:
        single = run(engine, "pipeline_overview", sydney.tenant_id, r["period_start"], r["period_end"],
                     {"include_closed": True})  # fmt: skip
        assert single.succeeded and str(single.request.window.start.isoformat()) == r["period_start"]
        backfilled = facts_by_key(engine, "pipeline_overview", r["run_id"])
        assert backfilled and backfilled == facts_by_key(engine, "pipeline_overview", single.run_id)


def test_month_and_quarter_cadences_in_the_tenants_calendar(cli_env, los_angeles):
    months, _ = backfill_json(cli_env, los_angeles, "win_loss", "--from", "2025-05-15", "--to", "2025-10-01")
    assert [r["label"] for r in months["runs"]] == ["2025-06", "2025-07", "2025-08", "2025-09"]
    assert months["runs"][0]["period_start"] == "2025-06-01T07:00:00+00:00"
    quarters, _ = backfill_json(
        cli_env, los_angeles, "win_loss", "--cadence", "quarter", "--from", "2025-02-01", "--to", "2025-11-01"
    )
    assert [r["label"] for r in quarters["runs"]] == ["FY2026-Q1", "FY2026-Q2", "FY2026-Q3"]


def _future(days: int) -> str:
    return (datetime.now(UTC) + days * D).date().isoformat()


REFUSALS = {
    "unknown report": ("no_such_report", "--from", "2025-06-02", "--to", "2025-06-30"),
    "from after to": ("pipeline_overview", "--from", "2025-06-30", "--to", "2025-06-02"),
    "no whole period": ("pipeline_overview", "--from", "2025-06-03", "--to", "2025-06-09"),
    "over the cap": ("pipeline_overview", "--from", "2010-01-01", "--to", "2025-06-30"),
    "cadence not the report's": (
        "pipeline_overview",
        "--cadence",
        "month",
        "--from",
        "2025-06-01",
        "--to",
        "2025-09-01",
    ),
    "bad options": ("pipeline_overview", "--from", "2025-06-02", "--to", "2025-06-30", "--options", '{"nope": 1}'),
    "not final": ("pipeline_overview", "--from", _future(-30), "--to", _future(9)),
}
EXPECTED = {
    "unknown report": "unknown report",
    "from after to": "--from must be before --to",
    "no whole period": "no whole week",
    "over the cap": "more than 520 weeks",
    "cadence not the report's": "runs for week, not 'month'",
    "bad options": "nope",
    "not final": "a backfill runs final periods only",
}


@pytest.mark.parametrize("case", sorted(REFUSALS))
def test_refusals_write_nothing(cli_env, engine, sydney, case):
    before = run_count(engine)
    report, *rest = REFUSALS[case]
    done = dyno(cli_env, "backfill", report, "--tenant", str(sydney.tenant_id), *rest)
    assert done.returncode == 2, done.stderr
    assert done.stderr.startswith("error: ") and len(done.stderr.strip().splitlines()) == 1
    assert EXPECTED[case] in done.stderr
    assert done.stdout == "" and run_count(engine) == before


def test_an_unknown_tenant_is_refused_as_run_refuses_it(cli_env, engine, sydney):
    before = run_count(engine)
    done = dyno(cli_env, "backfill", "pipeline_overview", "--tenant", "123e4567-e89b-12d3-a456-426614174000",
                "--from", "2025-06-02", "--to", "2025-06-30")  # fmt: skip
    assert done.returncode == 2 and done.stderr.startswith("error: unknown tenant")
    assert str(sydney.tenant_id) in done.stderr and run_count(engine) == before  # the known tenants listed


def test_a_failing_period_fails_only_itself_and_exits_1(cli_env, engine, sydney, monkeypatch, capsys):
    """The four weeks are computed in one pass; writing the third one's run fails, and only that run."""
    failing = datetime(2025, 6, 15, 14, tzinfo=UTC)  # the Sydney week of 2025-06-16
    in_transaction = executor._run_in_transaction

    def broken(conn, request: RunRequest, *args):
        if request.window.start == failing:
            raise RuntimeError("this period breaks")
        return in_transaction(conn, request, *args)

    monkeypatch.setattr(executor, "_run_in_transaction", broken)
    with pytest.raises(SystemExit) as exited:
        main(["backfill", "pipeline_overview", "--tenant", str(sydney.tenant_id), "--from", "2025-06-02",
              "--to", "2025-06-30", "--json"])  # fmt: skip
    assert exited.value.code == 1
    out, err = capsys.readouterr()
    summary = json.loads(out.strip().splitlines()[-1])
    assert out.startswith("4 periods: 3 SUCCEEDED, 1 FAILED")
    assert [r["status"] for r in summary["runs"]] == ["SUCCEEDED", "SUCCEEDED", "FAILED", "SUCCEEDED"]
    assert "this period breaks" in summary["runs"][2]["error_message"]
    assert "[3/4] week of 2025-06-16 (Australia/Sydney)  FAILED" in err


def test_a_failed_pass_fails_every_period_it_covered_with_its_error(engine, sydney, monkeypatch):
    monkeypatch.setattr(multi_period, "_pass_statement", lambda report: text("SELECT 1 / 0"))
    runs = backfill.backfill(engine, "pipeline_overview", sydney.tenant_id, "2025-06-02", "2025-06-30")
    assert [run.result.status for run in runs] == ["FAILED"] * 4
    assert {run.result.error_message for run in runs} == {runs[0].result.error_message}
    assert "division by zero" in runs[0].result.error_message
    with engine.connect() as conn:
        recorded = conn.scalars(
            select(report_run.c.status).where(report_run.c.run_id.in_([run.result.run_id for run in runs]))
        ).all()
    assert recorded == ["FAILED"] * 4


def test_a_cancelled_pass_records_every_period_it_covered_failed_and_stops(engine, sydney, monkeypatch):
    def cancelled(conn, requests):
        raise RunCancelled("cancelled (SIGINT)")

    monkeypatch.setattr(multi_period, "compute", cancelled)
    started = datetime.now(UTC)
    with pytest.raises(RunCancelled):
        backfill.backfill(engine, "pipeline_overview", sydney.tenant_id, "2025-06-02", "2025-06-30")
    with engine.connect() as conn:
        recorded = conn.execute(
            select(report_run.c.status, report_run.c.error_message).where(
                report_run.c.tenant_id == sydney.tenant_id,
                report_run.c.report_type == "pipeline_overview",
                report_run.c.generated_at >= started,
            )
        ).all()
    assert recorded == [("FAILED", "cancelled (SIGINT)")] * 4


def test_the_engine_function_reports_progress_in_period_order(engine, sydney):
    seen: list[tuple[int, int, str]] = []
    runs = backfill.backfill(
        engine, "pipeline_overview", sydney.tenant_id, "2025-06-09", "2025-06-23",
        progress=lambda index, count, done: seen.append((index, count, done.period.label)),
    )  # fmt: skip
    assert seen == [(1, 2, "2025-06-09"), (2, 2, "2025-06-16")]
    assert backfill.totals(runs) == {"periods": 2, "succeeded": 2, "failed": 0}
