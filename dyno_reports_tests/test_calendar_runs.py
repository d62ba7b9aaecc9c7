"""Runs resolved in their tenant's calendar (real PostgreSQL; the CLI in a subprocess): bounds read in the
tenant's zone, whole weeks, months and fiscal quarters by label, the calendar recorded in input_params,
`show` in local time, `trend` over fiscal quarters, and a default-calendar tenant's runs exactly as before.
"""

import csv
import io
import json
import uuid
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest
from sqlalchemy import func, select

from dyno_reports.core.errors import InputError
from dyno_reports.engine import run_request
from dyno_reports.storage.tables import report_run
from dyno_reports_tests.support.facts import facts_by_key, run
from dyno_reports_tests.support.history import (
    DEAL_IDS,
    PIPELINE_IDS,
    PRINCIPAL_IDS,
    STAGE_IDS,
    T0,
    TenantData,
    load,
)
from dyno_reports_tests.test_cli import dyno

D = timedelta(days=1)
SYDNEY = ("Australia/Sydney", 1, 7, "end")  # an Australian July-June year
LOS_ANGELES = ("America/Los_Angeles", 7, 2, "end")  # Sunday weeks, a February-January year
NOW = datetime(2025, 6, 18, 15, 30, tzinfo=UTC)  # 01:30 on 2025-06-19 in Sydney


def month_end_history(calendar: tuple) -> TenantData:
    """A deal won at 17:00 on 2025-06-30 in Los Angeles (00:00 on 2025-07-01 UTC), and one won in mid-June."""
    data = TenantData(calendar=calendar)
    lead, won, _lost = data.add_pipeline(PIPELINE_IDS[0], ["open", "won", "lost"])
    closing = datetime(2025, 7, 1, tzinfo=UTC)
    data.add_deal(DEAL_IDS[0], [(closing - 20 * D, lead, 500), (closing, won, 500)])
    data.add_deal(DEAL_IDS[1], [(T0, lead, 40), (T0 + 10 * D, won, 40)])
    return data


@pytest.fixture(scope="module")
def month_end(engine) -> dict[str, TenantData]:
    tenants = {"los_angeles": month_end_history(LOS_ANGELES), "utc": month_end_history(("UTC", 1, 1, "end"))}
    for data in tenants.values():
        load(engine, data)
    return tenants


def run_json(env, data: TenantData, report: str, *args: str) -> dict:
    done = dyno(env, "run", report, "--tenant", str(data.tenant_id), *args, "--json")
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_a_deal_won_at_month_end_in_los_angeles_counts_in_that_tenants_june(cli_env, month_end):
    june = ("--grain", "month", "--period", "2025-06")
    la = run_json(cli_env, month_end["los_angeles"], "win_loss", *june)
    assert (la["period_start"], la["period_end"]) == ("2025-06-01T07:00:00+00:00", "2025-07-01T07:00:00+00:00")
    assert la["period_grain"] == "month" and la["headline"]["won_count"] == 2
    utc = run_json(cli_env, month_end["utc"], "win_loss", *june)
    assert (utc["period_start"], utc["headline"]["won_count"]) == ("2025-06-01T00:00:00+00:00", 1)
    july = run_json(cli_env, month_end["utc"], "win_loss", "--grain", "month", "--period", "2025-07")
    assert july["headline"]["won_count"] == 1  # the UTC tenant's July has it
    # dates as bounds are the tenant's local midnights too
    dates = run_json(cli_env, month_end["los_angeles"], "win_loss", "--period-start", "2025-06-01", "--period-end",
                     "2025-07-01")  # fmt: skip
    assert dates["input_fingerprint"] == la["input_fingerprint"] and dates["headline"] == la["headline"]


def request_for(engine, data: TenantData, now: datetime = NOW, **asked) -> run_request.RunRequest:
    with engine.connect() as conn:
        return run_request.build_request(conn, "pipeline_overview", data.tenant_id, now=now, **asked)


@pytest.fixture(scope="module")
def sydney(engine) -> TenantData:
    data = TenantData(calendar=SYDNEY)
    lead, won, lost = data.add_pipeline(PIPELINE_IDS[0], ["open", "won", "lost"])
    for i, (day, stage) in enumerate([(date(2025, 6, 10), won), (date(2025, 8, 5), won), (date(2025, 9, 1), lost)]):
        closed = datetime.combine(day, datetime.min.time(), tzinfo=UTC)
        data.add_deal(DEAL_IDS[i], [(closed - 30 * D, lead, 100 * (i + 1)), (closed, stage, 100 * (i + 1))])
    load(engine, data)
    return data


def test_bounds_are_read_in_the_tenants_zone(engine, sydney):
    week = request_for(engine, sydney, period_start="2025-06-02", period_end="2025-06-09")
    assert (week.window.start, week.window.end) == (
        datetime(2025, 6, 1, 14, tzinfo=UTC),
        datetime(2025, 6, 8, 14, tzinfo=UTC),
    )
    assert week.period_grain == "week"
    month = request_for(engine, sydney, period_start="2025-03-01", period_end="2025-04-01")  # 744 hours: DST ends
    assert (month.period_grain, month.window.grain) == ("month", "custom")  # a local month, not a UTC one
    local = request_for(engine, sydney, period_start="2025-06-02T09:00:00", period_end="2025-06-02T10:00:00Z")
    assert (local.window.start, local.window.end) == (
        datetime(2025, 6, 1, 23, tzinfo=UTC),
        datetime(2025, 6, 2, 10, tzinfo=UTC),
    )
    instants = request_for(engine, sydney, period_start=T0, period_end=T0 + 7 * D)  # datetimes are instants
    assert (instants.window.start, instants.window.end) == (T0, T0 + 7 * D)


def test_the_default_window_and_a_start_alone_end_today_at_local_midnight(engine, sydney, monkeypatch):
    monkeypatch.setenv("DYNO_DEFAULT_WINDOW_DAYS", "7")
    today = datetime(2025, 6, 18, 14, tzinfo=UTC)  # 2025-06-19 00:00 in Sydney
    default = request_for(engine, sydney)
    assert (default.window.start, default.window.end, default.period_grain) == (today - 7 * D, today, "week")
    start_only = request_for(engine, sydney, period_start="2025-06-02")
    assert start_only.window == type(start_only.window)(datetime(2025, 6, 1, 14, tzinfo=UTC), today)
    with pytest.raises(InputError, match="pass --so-far"):  # the so-far rule is unchanged
        request_for(engine, sydney, period_end="2025-06-20")


@pytest.mark.parametrize(
    ("calendar", "grain", "label", "start", "end"),
    [
        (SYDNEY, "quarter", "FY2026-Q1", datetime(2025, 6, 30, 14), datetime(2025, 9, 30, 14)),
        (LOS_ANGELES, "quarter", "FY2026-Q1", datetime(2025, 2, 1, 8), datetime(2025, 5, 1, 7)),
        (LOS_ANGELES, "week", "2025-06-04", datetime(2025, 6, 1, 7), datetime(2025, 6, 8, 7)),  # Sunday weeks
        (SYDNEY, "month", "2025-04", datetime(2025, 3, 31, 13), datetime(2025, 4, 30, 14)),  # DST ends in April
    ],
)
def test_a_whole_period_by_grain_and_label(engine, calendar, grain, label, start, end):
    data = TenantData(calendar=calendar)
    load(engine, data)
    request = request_for(engine, data, now=datetime(2026, 1, 1, tzinfo=UTC), grain=grain, period=label)
    assert (request.window.start, request.window.end) == (start.replace(tzinfo=UTC), end.replace(tzinfo=UTC))
    assert request.period_grain == grain


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--grain", "quarter"], "error: --grain needs --period: the period's label"),
        (["--period", "FY2026-Q1"], "error: --period needs --grain (week, month, quarter)"),
        (["--grain", "year", "--period", "FY2026"], "error: --grain must be one of week, month, quarter, got 'year'"),
        (["--grain", "quarter", "--period", "2025-Q1"], "error: '2025-Q1' is not a quarter label (e.g. FY2026-Q1)"),
        (["--grain", "month", "--period", "2025-13"], "error: '2025-13' is not a month label (e.g. 2025-06)"),
        (
            ["--grain", "week", "--period", "2025-06-02", "--period-start", "2025-06-02"],
            "error: --grain and --period pick a whole period: give them without --period-start and --period-end",
        ),
    ],
)
def test_bad_periods_are_one_error_line_and_write_nothing(cli_env, engine, sydney, args, message):
    with engine.connect() as conn:
        before = conn.execute(select(func.count()).select_from(report_run)).scalar_one()
    done = dyno(cli_env, "run", "win_loss", "--tenant", str(sydney.tenant_id), *args)
    assert (done.returncode, done.stdout) == (2, "") and done.stderr.startswith(message), done.stderr
    with engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(report_run)).scalar_one() == before


@pytest.fixture(scope="module")
def sydney_quarters(engine, sydney) -> dict[str, uuid.UUID]:
    made = {}
    for label in ("FY2025-Q4", "FY2026-Q1"):
        result = run(engine, "win_loss", sydney.tenant_id, None, None, grain="quarter", period=label)
        assert result.succeeded, result.error_message
        made[label] = result.run_id
    return made


def test_the_run_records_its_instants_grain_and_calendar(engine, sydney_quarters):
    with engine.connect() as conn:
        header = conn.execute(select(report_run).where(report_run.c.run_id == sydney_quarters["FY2026-Q1"])).one()
    assert (header.period_start, header.period_end, header.period_grain) == (
        datetime(2025, 6, 30, 14, tzinfo=UTC),
        datetime(2025, 9, 30, 14, tzinfo=UTC),
        "quarter",
    )
    assert header.input_params["calendar"] == {
        "time_zone": "Australia/Sydney",
        "week_start": 1,
        "fiscal_year_start_month": 7,
        "fiscal_year_named_by": "end",
    }


def test_show_prints_the_local_period_with_its_label_beside_the_utc_instants(cli_env, sydney_quarters):
    done = dyno(cli_env, "show", str(sydney_quarters["FY2026-Q1"]))
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[3] == "period     2025-07-01 to 2025-10-01 Australia/Sydney  FY2026-Q1 (quarter)"
    assert lines[4] == "utc        [2025-06-30T14:00:00+00:00, 2025-09-30T14:00:00+00:00)"


def test_trend_walks_the_tenants_fiscal_quarters(cli_env, sydney, sydney_quarters):
    args = ["trend", "win_loss", "--tenant", str(sydney.tenant_id), "--metric", "won_amount", "--cadence", "quarter"]
    args += ["--through", "2025-09-30", "--last", "3"]
    done = dyno(cli_env, *args)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0].endswith("3 quarters 2025-01-01 to 2025-10-01 (Australia/Sydney)")
    assert [line.split()[:3] for line in lines[5:]] == [
        ["FY2025-Q3", "no", "run"],
        ["FY2025-Q4", "100.00", str(sydney_quarters["FY2025-Q4"])[:8]],
        ["FY2026-Q1", "200.00", "+100.00"],
    ]
    as_csv = dyno(cli_env, *args, "--csv")
    rows = list(csv.DictReader(io.StringIO(as_csv.stdout)))
    assert [(r["period (Australia/Sydney)"], r["period_start"]) for r in rows][1:] == [
        ("FY2025-Q4", "2025-03-31T13:00:00+00:00"),
        ("FY2026-Q1", "2025-06-30T14:00:00+00:00"),
    ]


# --- close_quarter -------------------------------------------------------------


def test_close_quarter_is_the_first_day_of_the_tenants_fiscal_quarter(engine, cli_env):
    data = TenantData(calendar=LOS_ANGELES)  # quarters Feb-Apr, May-Jul, Aug-Oct, Nov-Jan
    lead, _won, _lost = data.add_pipeline(PIPELINE_IDS[0], ["open", "won", "lost"])
    closes = [date(2025, 7, 31), date(2025, 5, 2), date(2026, 1, 15), date(2025, 11, 1), None]
    for i, close in enumerate(closes):
        data.add_deal(DEAL_IDS[i], [(T0, lead, 10 * (i + 1), PRINCIPAL_IDS[0], close)])
    load(engine, data)
    result = run(engine, "weighted_pipeline", data.tenant_id, None, None, grain="month", period="2025-06")
    assert result.succeeded, result.error_message
    quarters = {
        key[2]: row["close_quarter"] for key, row in facts_by_key(engine, "weighted_pipeline", result.run_id).items()
    }
    assert quarters == {
        date(2025, 7, 1): date(2025, 5, 1),
        date(2025, 5, 1): date(2025, 5, 1),
        date(2026, 1, 1): date(2025, 11, 1),
        date(2025, 11, 1): date(2025, 11, 1),
        None: None,
    }
    trend_args = ["trend", "weighted_pipeline", "--tenant", str(data.tenant_id), "--metric", "total_amount"]
    done = dyno(cli_env, *trend_args, "--by", "close_quarter", "--through", "2025-06-15", "--last", "1", "--csv")
    assert done.returncode == 0, done.stderr
    by_quarter = {r["close_quarter"]: r["total_amount"] for r in csv.DictReader(io.StringIO(done.stdout))}
    assert by_quarter == {"2025-05-01": "30.00", "2025-11-01": "70.00", "": "50.00"}


# --- a default-calendar tenant: the runs of before calendars ------------------------------------

# Fingerprints and facts of these runs as the code before calendars (commit 08db462) computed them on this
# history: the same instants, the same fingerprints, the same facts.
BEFORE_CALENDARS = {
    (
        "pipeline_overview",
        "2025-06-02",
        "2025-06-09",
    ): "bbe2485064c3b993ef658be460d044f50019dea042d87ddc02cc294217c07475",
    ("win_loss", "2025-06-01", "2025-07-01"): "4040631979542739a96445a01320bc0038cc6bd042f56bcbc6adf88a8dcc35fa",
    (
        "weighted_pipeline",
        "2025-06-01",
        "2025-07-01",
    ): "4a7084ec86887e4b4b2df0a873e79ff918475ae4a5a5406c715254af335d6994",
    ("deal_velocity", "2025-04-01", "2025-07-01"): "34c47c8f81f5b4eae4859af97a43df590731eebd810ebc3b752139180489020b",
}
A, B = PIPELINE_IDS[:2]
P0, P1 = PRINCIPAL_IDS[:2]
M = Decimal


def utc_history() -> TenantData:
    data = TenantData(tenant_id=uuid.UUID(int=0x7E57))
    lead, proposal, won, lost = data.add_pipeline(A, ["open", "open", "won", "lost"])
    (renewal, *_) = data.add_pipeline(B, ["open", "won", "lost"])
    data.add_deal(DEAL_IDS[0], [(T0 - 2 * D, lead, 100, P0), (T0 + D, proposal, 120, P0, date(2025, 8, 20)),
                                (T0 + 3 * D, won, 120, P0)])  # fmt: skip
    data.add_deal(DEAL_IDS[1], [(T0 + D, lead, 50, P1, T0.date()), (T0 + 5 * D, lost, 50, P1)])
    data.add_deal(DEAL_IDS[2], [(T0 - D, renewal, 30, P0, (T0 + 40 * D).date())])
    data.add_deal(DEAL_IDS[3], [(T0 + 2 * D, lead, 70, P1), (T0 + 4 * D, proposal, 75, P1, (T0 + 20 * D).date())])
    data.add_deal(DEAL_IDS[4], [(T0 + 6 * D + timedelta(hours=17), lead, 15, P0, date(2025, 12, 31))])
    return data


def test_a_default_calendar_tenants_runs_are_those_of_before_calendars(engine):
    data = utc_history()
    load(engine, data)
    facts = {}
    for (report, start, end), fingerprint in BEFORE_CALENDARS.items():
        result = run(engine, report, data.tenant_id, start, end)
        assert result.succeeded, result.error_message
        assert result.request.fingerprint() == fingerprint, report
        assert result.request.window.start == datetime.fromisoformat(start).replace(tzinfo=UTC)
        params = result.request.input_params()
        assert params["calendar"] == {"time_zone": "UTC", "week_start": 1, "fiscal_year_start_month": 1,
                                      "fiscal_year_named_by": "end"}  # fmt: skip
        assert params["period_grain"] == {"pipeline_overview": "week", "deal_velocity": "quarter"}.get(report, "month")
        facts[report] = {
            key: tuple(row.values())[len(key) :] for key, row in facts_by_key(engine, report, result.run_id).items()
        }
    s0, s1, s4 = STAGE_IDS[0], STAGE_IDS[1], STAGE_IDS[4]  # A's two open stages, B's open stage
    assert facts["pipeline_overview"] == {
        (A, s0): (1, M("15.00"), M("15.00"), M("0.29"), 3),
        (A, s1): (1, M("75.00"), M("75.00"), M("3.00"), 2),
        (B, s4): (1, M("30.00"), M("30.00"), M("8.00"), 0),
    }
    assert facts["win_loss"] == {
        (A, P0): (1, 0, M("120.00"), M("0.00"), M("1.0000"), M("1.0000"), M("5.00")),
        (A, P1): (0, 1, M("0.00"), M("50.00"), M("0.0000"), M("0.0000"), None),
    }
    assert facts["weighted_pipeline"] == {  # then: close_quarter, new, in the calendar quarter
        (A, P0, date(2025, 12, 1)): (date(2025, 10, 1), 1, M("15.00"), M("1.50")),
        (A, P1, date(2025, 6, 1)): (date(2025, 4, 1), 1, M("75.00"), M("15.00")),
        (B, P0, date(2025, 7, 1)): (date(2025, 7, 1), 1, M("30.00"), M("3.00")),
    }
    assert facts["deal_velocity"] == {
        (A, s0): (3, M("3.00"), M("3.00"), M("3.80")),
        (A, s1): (1, M("2.00"), M("2.00"), M("2.00")),
        (B, s4): (0, None, None, None),
    }
