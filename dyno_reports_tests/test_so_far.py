"""Periods that have not ended (subprocess and in-process, real PostgreSQL): `dyno-reports run` refuses a window
whose end is after now unless `--so-far` asks for it; a so-far run is recorded as such (`input_params.so_far`,
`run --json`, the text outcome, FAILED headers) under the same fingerprint as a final run; `show` and `trend`
mark it.

Windows are placed relative to the current date, so what is "not ended yet" stays so whenever the tests run.
"""

import csv
import io
import json
import re
import uuid
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

import pytest
from sqlalchemy import select

from dyno_reports.core.errors import InputError
from dyno_reports.engine import executor, run_records, run_request
from dyno_reports.storage.tables import report_run
from dyno_reports_tests.support.history import DEAL_IDS, PIPELINE_IDS, T0, TenantData, load
from dyno_reports_tests.test_cli import dyno, run_count

D = timedelta(days=1)
CRM = timedelta(minutes=10)  # the CRM's longest write: a run knows the CRM as of its start minus this (its K)
NOT_ENDED = re.compile(
    r"error: period end (\S+) is after now \((\S+)\): the period has not ended and its numbers can still change; "
    r"pass --so-far to run it so far\n"
)
SO_FAR_PERIOD = "so far: the period had not ended when this ran"
UTC_CALENDAR = {"time_zone": "UTC", "week_start": 1, "fiscal_year_start_month": 1, "fiscal_year_named_by": "end"}


def today() -> date:
    return datetime.now(UTC).date()


def midnight(day: date) -> datetime:
    return datetime.combine(day, time(), tzinfo=UTC)


@pytest.fixture(scope="module")
def tenant(engine) -> uuid.UUID:
    """One pipeline; a deal won in June 2025 and one open since then (so every week since has one open deal)."""
    data = TenantData()
    lead, won = data.add_pipeline(PIPELINE_IDS[0], ["open", "won"])
    data.add_deal(DEAL_IDS[0], [(T0, lead, 10), (T0 + D, won, 10)])
    data.add_deal(DEAL_IDS[1], [(T0, lead, 25)])
    load(engine, data)
    return data.tenant_id


def header_of(engine, run_id: str | uuid.UUID) -> Any:
    with engine.connect() as conn:
        return conn.execute(select(report_run).where(report_run.c.run_id == uuid.UUID(str(run_id)))).one()


def run_win_loss(cli_env, tenant, start: date, end: date | str, *flags: str):
    window = ["--period-start", start.isoformat(), "--period-end", str(end)]
    return dyno(cli_env, "run", "win_loss", "--tenant", str(tenant), *window, *flags)


@pytest.mark.parametrize("end_in", ["40 days", "an hour"])
def test_a_period_that_has_not_ended_is_refused_and_nothing_is_written(cli_env, engine, tenant, end_in):
    now = datetime.now(UTC)
    end = midnight(today() + 40 * D) if end_in == "40 days" else (now + timedelta(hours=1)).replace(microsecond=0)
    before = run_count(engine)

    done = run_win_loss(cli_env, tenant, today() - 10 * D, end.isoformat())

    assert done.returncode == 2 and done.stdout == ""
    refused = NOT_ENDED.fullmatch(done.stderr)
    assert refused, done.stderr
    assert refused.group(1) == end.isoformat()
    said_now = datetime.fromisoformat(refused.group(2))
    assert now - timedelta(seconds=1) <= said_now <= datetime.now(UTC) and said_now.microsecond == 0
    assert run_count(engine) == before


def test_so_far_runs_it_and_records_a_so_far_run_under_the_final_runs_fingerprint(cli_env, engine, tenant):
    start, end = today() - 10 * D, today() + 40 * D
    done = run_win_loss(cli_env, tenant, start, end, "--so-far", "--json")
    assert done.returncode == 0, done.stderr
    outcome = json.loads(done.stdout.splitlines()[-1])
    assert outcome["status"] == "SUCCEEDED" and outcome["so_far"] is True
    header = header_of(engine, outcome["run_id"])
    assert header.input_params == {
        "options": outcome["options"],
        "period_grain": "custom",
        "calendar": UTC_CALENDAR,
        "so_far": True,
    }

    with engine.connect() as conn:  # the same window asked once it has ended (and the CRM's longest write passed)
        final = run_request.build_request(
            conn, "win_loss", tenant, period_start=midnight(start), period_end=midnight(end), now=midnight(end) + CRM
        )
    assert not final.so_far and "so_far" not in final.input_params()
    assert header.input_fingerprint == outcome["input_fingerprint"] == final.fingerprint()

    text = run_win_loss(cli_env, tenant, start, end, "--so-far")
    assert text.returncode == 0, text.stderr
    assert text.stdout.startswith(f"SUCCEEDED (so far)  win_loss  tenant {tenant}  "), text.stdout


def test_so_far_on_a_period_that_has_ended_is_a_final_run(cli_env, engine, tenant):
    for flags in (["--so-far", "--json"], ["--json"]):
        done = run_win_loss(cli_env, tenant, date(2025, 6, 1), "2025-07-01", *flags)
        assert done.returncode == 0, done.stderr
        outcome = json.loads(done.stdout.splitlines()[-1])
        assert outcome["so_far"] is False and outcome["period_grain"] == "month"
        # a final run's input_params as they always were: no so_far key
        assert header_of(engine, outcome["run_id"]).input_params == {
            "options": outcome["options"],
            "period_grain": "month",
            "calendar": UTC_CALENDAR,
        }


def test_the_default_and_start_only_windows_are_closed_periods(engine, tenant):
    now = datetime(2026, 3, 4, 15, 30, tzinfo=UTC)
    with engine.connect() as conn:
        default = run_request.build_request(conn, "win_loss", tenant, now=now)
        start_only = run_request.build_request(conn, "win_loss", tenant, period_start="2026-03-01", now=now)
        ended = run_request.build_request(
            conn, "win_loss", tenant, period_start="2026-03-01", period_end=now - CRM, now=now
        )
    for request in (default, start_only):
        assert request.window.end == datetime(2026, 3, 4, tzinfo=UTC) and not request.so_far
    # an end the CRM's longest write ago is final (its K); closer to now, it is not (test_as_known_at.py)
    assert ended.window.end == ended.known_at == now - CRM and not ended.so_far


def test_build_request_judges_the_end_against_now(engine, tenant):
    june = {"period_start": "2025-06-02", "period_end": "2025-06-09"}
    while_open = datetime(2025, 6, 5, 12, 0, 0, 250_000, tzinfo=UTC)
    with engine.connect() as conn:
        with pytest.raises(InputError) as refused:
            run_request.build_request(conn, "win_loss", tenant, **june, now=while_open)
        so_far = run_request.build_request(conn, "win_loss", tenant, **june, now=while_open, so_far=True)
        final = run_request.build_request(conn, "win_loss", tenant, **june, now=datetime(2025, 6, 9, tzinfo=UTC) + CRM)
    assert str(refused.value).startswith(
        "period end 2025-06-09T00:00:00+00:00 is after now (2025-06-05T12:00:00+00:00): the period has not ended"
    )
    assert so_far.so_far and so_far.input_params()["so_far"] is True
    assert not final.so_far and so_far.fingerprint() == final.fingerprint()


def test_a_failed_so_far_run_records_that_it_was_so_far(engine, tenant):
    with engine.connect() as conn:
        request = run_request.build_request(
            conn, "win_loss", tenant, period_start=midnight(today()), period_end=midnight(today() + 3 * D), so_far=True
        )
    run_id = uuid.uuid4()
    run_records.record_failure(engine, request, run_id, "statement timeout")
    header = header_of(engine, run_id)
    assert header.status == "FAILED" and header.input_params["so_far"] is True
    assert header.input_fingerprint == request.fingerprint()


def test_show_says_a_run_is_a_so_far_run(cli_env, engine, tenant):
    start, end = today() - 3 * D, today() + 40 * D
    so_far = json.loads(run_win_loss(cli_env, tenant, start, end, "--so-far", "--json").stdout.splitlines()[-1])
    final = json.loads(run_win_loss(cli_env, tenant, date(2025, 6, 1), "2025-07-01", "--json").stdout.splitlines()[-1])
    window = f"[{midnight(start).isoformat()}, {midnight(end).isoformat()})"

    shown = dyno(cli_env, "show", so_far["run_id"])
    assert shown.returncode == 0, shown.stderr
    assert shown.stdout.splitlines()[3] == f"period     {start} to {end} UTC  (custom)  {SO_FAR_PERIOD}"
    assert shown.stdout.splitlines()[4] == f"utc        {window}"
    shown = dyno(cli_env, "show", final["run_id"])
    assert shown.returncode == 0, shown.stderr
    assert shown.stdout.splitlines()[3] == "period     2025-06-01 to 2025-07-01 UTC  2025-06 (month)"
    assert "so far" not in shown.stdout


def test_trend_marks_a_period_whose_latest_run_is_a_so_far_run(cli_env, engine, tenant):
    now = datetime.now(UTC)
    this_week = midnight(now.date() - now.weekday() * D)
    runs = {}
    for start, so_far in ((this_week - 7 * D, False), (this_week, True)):
        with engine.connect() as conn:
            request = run_request.build_request(
                conn, "pipeline_overview", tenant, period_start=start, period_end=start + 7 * D, so_far=so_far, now=now
            )
        assert request.so_far is so_far
        runs[start] = executor.execute(engine, request).run_id
    args = ["trend", "pipeline_overview", "--tenant", str(tenant), "--metric", "deal_count", "--last", "3"]
    args += ["--through", now.date().isoformat()]

    done = dyno(cli_env, *args)
    assert done.returncode == 0, done.stderr
    assert [line.split() for line in done.stdout.splitlines()[5:]] == [
        [(this_week - 14 * D).strftime("%Y-%m-%d"), "no", "run", "-"],
        [(this_week - 7 * D).strftime("%Y-%m-%d"), "1", str(runs[this_week - 7 * D])[:8]],
        [this_week.strftime("%Y-%m-%d"), "1", "0", str(runs[this_week])[:8], "(so", "far)"],
    ]
    as_csv = dyno(cli_env, *args, "--csv")
    assert as_csv.returncode == 0, as_csv.stderr
    rows = list(csv.DictReader(io.StringIO(as_csv.stdout)))
    assert list(rows[0])[-3:] == ["change", "run_id", "so_far"]
    assert [(r["run_id"], r["so_far"]) for r in rows] == [
        ("", ""),
        (str(runs[this_week - 7 * D]), "false"),
        (str(runs[this_week]), "true"),
    ]
