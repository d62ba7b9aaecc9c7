"""`dyno-reports demo` (real PostgreSQL, and the CLI in a subprocess for the printed commands): a second demo
adds no run, each tenant's periods are those of its calendar (three zones; fiscal quarters for the quarterly
reports) and end at the seeded history's end (today for a fresh demo, so `trend` finds them without
--through), the output names run ids and the commands that read them. The period arithmetic of tenants
seeded earlier (fixed 2024-2025 window) is checked without a database."""

import re
import subprocess
import sys
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import Engine, func, select

from dyno_reports.core import periods
from dyno_reports.core.tenant_calendar import TenantCalendar
from dyno_reports.devtools import demo, dev
from dyno_reports.devtools.seed import DEFAULT_END, DEFAULT_START
from dyno_reports.reports import registry
from dyno_reports.storage.tables import report_run, tenant

PERIODS_PER_TENANT = sum(demo.PERIODS_PER_CADENCE[c] for report in registry().values() for c in report.cadences)
RUNS_PER_DEMO = demo.DEMO_TENANTS * PERIODS_PER_TENANT


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


def refreshed_by_the_late_import(two_demos) -> int:
    found = re.search(r"refreshed: (\d+) of \1 runs asked again", two_demos["first_text"])
    assert found, two_demos["first_text"][-2000:]
    return int(found.group(1))


def test_a_second_demo_adds_no_run_and_reports_the_existing_ones(two_demos):
    refreshed = refreshed_by_the_late_import(two_demos)
    assert two_demos["after_first"] == RUNS_PER_DEMO + refreshed
    assert {a.status for a in two_demos["first"]} == {"SUCCEEDED"}
    assert two_demos["after_second"] == two_demos["after_first"]
    assert {a.status for a in two_demos["second"]} == {demo.EXISTING}
    pairs = list(zip(two_demos["first"], two_demos["second"], strict=True))
    assert all((a.report_type, a.tenant_id, a.period) == (b.report_type, b.tenant_id, b.period) for a, b in pairs)
    assert sum(a.run_id != b.run_id for a, b in pairs) == refreshed  # the refreshed questions' latest runs moved
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


def test_one_line_per_report_tenant_and_cadence_with_the_latest_headline(two_demos):
    text = two_demos["second_text"]
    line = r"  [0-9a-f]{8}   (\S+) +(\d) (week|month|quarter)s (\S+)\.\.(\S+) +0 +(\d) +0  \w+="
    lines = [found.groups() for found in re.finditer(line, text)]
    assert len(lines) == demo.DEMO_TENANTS * sum(len(report.cadences) for report in registry().values())
    assert {zone for zone, *_ in lines} == {"UTC", "Australia/Sydney", "America/Los_Angeles"}
    assert all(count == existing == str(demo.PERIODS_PER_CADENCE[grain]) for _, count, grain, *_, existing in lines)
    assert "weighted_pipeline (monthly, quarterly): Weighted pipeline" in text
    quarters = [(first, last) for zone, _, grain, first, last, _ in lines if grain == "quarter"]
    assert len(quarters) == 4 * demo.DEMO_TENANTS and all(re.fullmatch(r"FY\d{4}-Q\d", q) for q in quarters[0])


def test_each_tenants_periods_are_its_calendars_last_closed_ones_before_today(two_demos, engine):
    """A fresh demo's history ends today 00:00 UTC: each tenant's periods are its calendar's last closed ones
    then, weeks, months and fiscal quarters; the quarterly reports have four."""
    today = periods.start_of_today()
    with engine.connect() as conn:
        calendars = demo.demo_tenants(conn, list({a.tenant_id for a in two_demos["first"]}))
    asked: dict[tuple, list] = {}
    for answer in two_demos["first"]:
        asked.setdefault((answer.tenant_id, answer.report_type, answer.period.grain), []).append(answer.period)
    assert {grain for (_, _, grain) in asked} == {"week", "month", "quarter"}
    for (tenant_id, report_type, grain), found in asked.items():
        calendar = calendars[tenant_id].calendar
        assert grain in registry()[report_type].cadences
        assert found == calendar.periods_ending(calendar.last_closed(grain, today), demo.PERIODS_PER_CADENCE[grain])
        assert found[-1].end <= today < calendar.next_period(found[-1]).end
    utc_weeks = {a.window for a in two_demos["first"] if a.report_type == "pipeline_overview"}
    assert max(w.end for w in utc_weeks) >= today - timedelta(days=today.weekday())  # the UTC tenant's last week


def test_the_late_import_makes_the_runs_after_it_stale_refreshes_them_and_diffs_the_month(two_demos, cli_env):
    first, second = two_demos["first_text"], two_demos["second_text"]
    tenant_id = two_demos["first"][0].tenant_id
    asked = [(a, (a.tenant_id, a.report_type, a.period.grain)) for a in two_demos["first"]]
    month = [a for a, key in asked if key == (tenant_id, "win_loss", "month")][-1]
    won_at = month.period.end - timedelta(days=1)
    moved = [a for a, b in zip(two_demos["first"], two_demos["second"], strict=True) if a.run_id != b.run_id]
    assert moved and all(a.tenant_id == tenant_id and a.period.end > won_at for a in moved)
    assert f"stale runs: {len(moved)} (their period ends after the win)" in first
    assert re.search(r"win_loss, \S+ \(UTC\): 1 row changed, 0 added, 0 removed", first)
    (diff_command,) = re.findall(rf"{re.escape(demo.CLI)} diff {month.run_id} \S+", first)
    assert "won_count" in dyno_as_printed(cli_env, diff_command)
    assert dyno_as_printed(cli_env, f"{demo.CLI} runs stale --tenant {tenant_id}").startswith("0 stale runs")
    assert (
        "stale runs: none" in second and "imported by an earlier demo already" in second and "refreshed:" not in second
    )


def test_the_output_names_run_ids_and_commands_that_work_as_printed(two_demos, cli_env):
    text = two_demos["second_text"]
    first_tenant = two_demos["first"][0].tenant_id
    overview = [a for a in two_demos["second"] if a.tenant_id == first_tenant and a.report_type == "pipeline_overview"]
    assert f"{demo.CLI} show {overview[-1].run_id}" in text
    trend_command = f"{demo.CLI} trend pipeline_overview --tenant {first_tenant} --metric total_amount --by pipeline_id"
    assert re.search(re.escape(trend_command) + "$", text, re.MULTILINE)  # no --through
    assert f"{demo.CLI} runs list --tenant {first_tenant}" in text
    assert f"{demo.CLI} tenants" in text
    shown = dyno_as_printed(cli_env, trend_command)
    assert "no run" not in shown and str(overview[-1].run_id)[:8] in shown
    second = next(a.tenant_id for a in two_demos["first"] if a.tenant_id != first_tenant)
    asked = [(a, (a.tenant_id, a.report_type, a.period.grain)) for a in two_demos["first"]]
    quarters = [a for a, key in asked if key == (second, "win_loss", "quarter")]
    assert f"{demo.CLI} show {quarters[-1].run_id}    # win_loss, {quarters[-1].period.label} (" in text
    (quarterly,) = re.findall(rf"{re.escape(demo.CLI)} trend win_loss --tenant {second} .*", text)
    shown = dyno_as_printed(cli_env, quarterly)
    assert "no run" not in shown and "4 quarters" in shown and str(quarters[-1].run_id)[:8] in shown


def dyno_as_printed(cli_env, command: str) -> str:
    """Its stdout: the command as the demo printed it, run with this interpreter."""
    args = command.split()[1:]
    done = subprocess.run(
        [sys.executable, "-m", "dyno_reports.cli.main", *args], env=cli_env, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_make_dev_partitions_start_at_the_month_of_the_earliest_tenant(two_demos, engine):
    history_start = periods.start_of_today() - demo.HISTORY
    assert dev.partitions_start(engine) == history_start.date().replace(day=1).isoformat()


def test_tenants_of_the_fixed_seed_window_get_the_periods_before_its_end():
    end = demo.history_end(DEFAULT_START, now=datetime(2026, 12, 7, tzinfo=UTC))
    assert end == DEFAULT_END
    utc = TenantCalendar()
    weeks = demo.demo_periods(utc, "week", end)
    assert len(weeks) == demo.PERIODS_PER_REPORT
    assert weeks[-1].window == periods.Window(datetime(2025, 6, 23, tzinfo=UTC), datetime(2025, 6, 30, tzinfo=UTC))
    months = demo.demo_periods(utc, "month", end)
    assert months[0].start == datetime(2024, 11, 1, tzinfo=UTC)
    assert months[-1].window == periods.Window(datetime(2025, 6, 1, tzinfo=UTC), DEFAULT_END)
    # Sydney's April-June quarter ended at 00:00 on 2025-07-01 local, ten hours before the history's end
    sydney = demo.demo_periods(TenantCalendar("Australia/Sydney", 1, 7, "end"), "quarter", end)
    assert [q.label for q in sydney] == ["FY2025-Q1", "FY2025-Q2", "FY2025-Q3", "FY2025-Q4"]
    los_angeles = demo.demo_periods(TenantCalendar("America/Los_Angeles", 7, 2, "end"), "quarter", end)
    assert [q.label for q in los_angeles] == ["FY2025-Q2", "FY2025-Q3", "FY2025-Q4", "FY2026-Q1"]  # Feb-Apr 2025


def test_a_history_end_is_never_after_today():
    now = datetime(2026, 3, 10, 15, 0, tzinfo=UTC)
    created_yesterday = datetime(2026, 3, 9, 8, 30, tzinfo=UTC)
    assert demo.history_end(created_yesterday, now=now) == datetime(2026, 3, 10, tzinfo=UTC)
