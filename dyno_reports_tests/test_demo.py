"""`dyno-reports demo` (real PostgreSQL, and the CLI in a subprocess for the printed commands): a second demo
adds no run, the periods end at the seeded history's end (today for a fresh demo, so `trend` finds them
without --through), the output names run ids and the commands that read them. The period arithmetic of
tenants seeded earlier (fixed 2024-2025 window) is checked without a database."""

import re
import subprocess
import sys
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import Engine, func, select

from dyno_reports import demo, periods, trend
from dyno_reports.dagster_defs import dev
from dyno_reports.reports import REGISTRY
from dyno_reports.seed import DEFAULT_END, DEFAULT_START
from dyno_reports.storage.tables import report_run, tenant

RUNS_PER_DEMO = len(REGISTRY) * demo.DEMO_TENANTS * demo.PERIODS_PER_REPORT


def run_count(engine: Engine) -> int:
    with engine.connect() as conn:
        return conn.execute(select(func.count()).select_from(report_run)).scalar_one()


@pytest.fixture(scope="module")
def two_demos(engine: Engine, database_url) -> dict:
    """The demo run twice on the module's database: each one's answers and printed lines, and the run counts."""
    with pytest.MonkeyPatch.context() as monkeypatch:
        monkeypatch.setenv("DYNO_DATABASE_URL", database_url.render_as_string(hide_password=False))
        first_lines: list[str] = []
        first = demo.run_demo(echo=first_lines.append)
        after_first = run_count(engine)
        second_lines: list[str] = []
        second = demo.run_demo(echo=second_lines.append)
    return {
        "first": first,
        "second": second,
        "first_text": "\n".join(first_lines),
        "second_text": "\n".join(second_lines),
        "after_first": after_first,
        "after_second": run_count(engine),
    }


def test_a_second_demo_adds_no_run_and_reports_the_existing_ones(two_demos):
    assert two_demos["after_first"] == RUNS_PER_DEMO
    assert {a.status for a in two_demos["first"]} == {"SUCCEEDED"}
    assert two_demos["after_second"] == RUNS_PER_DEMO
    assert {a.status for a in two_demos["second"]} == {demo.EXISTING}
    assert [a.run_id for a in two_demos["second"]] == [a.run_id for a in two_demos["first"]]
    assert f"{RUNS_PER_DEMO} report runs asked for: {RUNS_PER_DEMO} run now" in two_demos["first_text"]
    assert f"0 run now (0 SUCCEEDED, 0 FAILED), {RUNS_PER_DEMO} already existed" in two_demos["second_text"]


def test_the_demos_tenants_live_in_three_calendars_the_first_one_utc(two_demos, engine):
    ids = [a.tenant_id for a in two_demos["first"] if a.report_type == "pipeline_overview"]
    first = ids[0]
    with engine.connect() as conn:
        rows = conn.execute(select(tenant.c.tenant_id, tenant.c.time_zone).where(tenant.c.tenant_id.in_(ids)))
        calendars = {tenant_id: time_zone for tenant_id, time_zone in rows}
    assert calendars[first] == "UTC"
    assert set(calendars.values()) == {"UTC", "Australia/Sydney", "America/Los_Angeles"}


def test_one_line_per_report_and_tenant_with_the_latest_headline(two_demos):
    text = two_demos["second_text"]
    lines = [line for line in text.splitlines() if re.match(r"  [0-9a-f]{8}   \d{4}-\d\d-\d\d\.\.", line)]
    assert len(lines) == len(REGISTRY) * demo.DEMO_TENANTS
    assert all(re.search(r"  0 +8 +0  \w+=", line) for line in lines), lines  # new, existing, failed, headline


def test_the_periods_end_with_the_last_closed_ones_before_today(two_demos):
    for answer in two_demos["first"]:
        cadence = REGISTRY[answer.report_type].cadence
        windows = trend.period_windows(cadence, demo.PERIODS_PER_REPORT)  # trend's default: no --through
        assert answer.window in windows
    last_weeks = {a.window for a in two_demos["first"] if a.report_type == "pipeline_overview"}
    assert max(w.end for w in last_weeks) == periods.start_of_today() - timedelta(
        days=periods.start_of_today().weekday()
    )


def test_the_output_names_run_ids_and_commands_that_work_as_printed(two_demos, cli_env):
    text = two_demos["second_text"]
    first_tenant = two_demos["first"][0].tenant_id
    overview = [a for a in two_demos["first"] if a.tenant_id == first_tenant and a.report_type == "pipeline_overview"]
    assert f"{demo.CLI} show {overview[-1].run_id}" in text
    trend_command = f"{demo.CLI} trend pipeline_overview --tenant {first_tenant} --metric total_amount --by pipeline_id"
    assert re.search(re.escape(trend_command) + "$", text, re.MULTILINE)  # no --through
    assert f"{demo.CLI} runs list --tenant {first_tenant}" in text
    assert f"{demo.CLI} tenants" in text
    args = trend_command.split()[1:]
    shown = subprocess.run(
        [sys.executable, "-m", "dyno_reports.cli", *args], env=cli_env, capture_output=True, text=True, timeout=60
    )
    assert shown.returncode == 0, shown.stderr
    assert "no run" not in shown.stdout
    assert str(overview[-1].run_id)[:8] in shown.stdout


def test_make_dev_partitions_start_at_the_month_of_the_earliest_tenant(two_demos, engine):
    history_start = periods.start_of_today() - demo.HISTORY
    assert dev.partitions_start(engine) == history_start.date().replace(day=1).isoformat()


def test_tenants_of_the_fixed_seed_window_get_the_periods_before_its_end():
    end = demo.history_end(DEFAULT_START, now=datetime(2026, 12, 7, tzinfo=UTC))
    assert end == DEFAULT_END
    weeks = demo.demo_windows("week", end)
    assert len(weeks) == demo.PERIODS_PER_REPORT
    assert weeks[-1] == periods.Window(datetime(2025, 6, 23, tzinfo=UTC), datetime(2025, 6, 30, tzinfo=UTC))
    months = demo.demo_windows("month", end)
    assert months[0].start == datetime(2024, 11, 1, tzinfo=UTC)
    assert months[-1] == periods.Window(datetime(2025, 6, 1, tzinfo=UTC), DEFAULT_END)


def test_a_history_end_is_never_after_today():
    now = datetime(2026, 3, 10, 15, 0, tzinfo=UTC)
    created_yesterday = datetime(2026, 3, 9, 8, 30, tzinfo=UTC)
    assert demo.history_end(created_yesterday, now=now) == datetime(2026, 3, 10, tzinfo=UTC)
