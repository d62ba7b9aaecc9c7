"""`dyno-reports show` and `dyno-reports trend` as a user runs them (subprocess, real PostgreSQL), the trend
query in-process for every registered report, and the period arithmetic (no DB).

Runs are made with the executor on a small hand-made history whose figures are
worked out below; the commands must print exactly those, pick the latest
SUCCEEDED run of each period and options, and mark periods without one.
"""

import csv
import io
import uuid
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest
from PIL import Image
from sqlalchemy import insert, select

from dyno_reports.core.tenant_calendar import TenantCalendar
from dyno_reports.engine import executor, run_request
from dyno_reports.read import text_table, trend
from dyno_reports.reports import registry
from dyno_reports.storage.tables import pipeline_overview_fact, report_run
from dyno_reports_tests.support.history import DEAL_IDS, PIPELINE_IDS, T0, TenantData, load
from dyno_reports_tests.test_cli import dyno

D = timedelta(days=1)
REPORT = "pipeline_overview"
# Weeks of T0 (2025-06-02), +1 and +3 have default runs; week +2 only one with include_closed.
WEEKS = [T0 + 7 * D * i for i in range(4)]


def make_history() -> TenantData:
    data = TenantData()
    lead, proposal, won, _lost = data.add_pipeline(PIPELINE_IDS[0], ["open", "open", "won", "lost"])
    data.add_deal(DEAL_IDS[0], [(T0 - 3 * D, lead, 100), (T0 + 8 * D, proposal, "250.50"), (T0 + 15 * D, won, 250)])
    data.add_deal(DEAL_IDS[1], [(T0 - 10 * D, lead, 40)])
    data.add_deal(DEAL_IDS[2], [(T0 + 23 * D, lead, 7)])
    return data


@pytest.fixture(scope="module")
def history(engine) -> TenantData:
    """Open deals at each week's end: w0 (June 9) 2 in lead (140); w1 1 in lead (40), 1 in proposal (250.50);
    w2 1 in lead (40): deal 0 was won on June 17; w3 2 in lead (47): deal 2 was created on June 25."""
    data = make_history()
    load(engine, data)
    return data


@pytest.fixture(scope="module")
def twin(engine) -> TenantData:
    """Another tenant with the same history (and the same ids), for the in-process tests: its runs leave the
    first tenant's periods as they are."""
    data = make_history()
    load(engine, data)
    return data


def run(engine, tenant_id, start, options=None) -> uuid.UUID:
    with engine.connect() as conn:
        request = run_request.build_request(
            conn, REPORT, tenant_id, period_start=start, period_end=start + 7 * D, options=options
        )
    result = executor.execute(engine, request)
    assert result.succeeded, result.error_message
    return result.run_id


@pytest.fixture(scope="module")
def runs(engine, history) -> dict[str, uuid.UUID]:
    tenant = history.tenant_id
    made = {"w0": run(engine, tenant, WEEKS[0]), "w1_first": run(engine, tenant, WEEKS[1])}
    made["w1"] = run(engine, tenant, WEEKS[1])  # the same inputs again: the later run is the one read
    made["w2_closed"] = run(engine, tenant, WEEKS[2], {"include_closed": True})
    made["w3"] = run(engine, tenant, WEEKS[3])
    return made


def trend_args(history, *args) -> list[str]:
    return ["trend", REPORT, "--tenant", str(history.tenant_id), "--through", "2025-06-23", "--last", "4", *args]


def test_show_prints_the_header_and_the_facts_with_names(cli_env, history, runs):
    done = dyno(cli_env, "show", str(runs["w1"]))
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0] == "report     pipeline_overview  (Pipeline overview)"
    assert lines[1] == f"run        {runs['w1']}  SUCCEEDED"
    assert lines[2] == f"tenant     test {history.tenant_id}  ({history.tenant_id})"
    assert lines[3] == "period     2025-06-09 to 2025-06-16 UTC  2025-06-09 (week)"
    assert lines[4] == "utc        [2025-06-09T00:00:00+00:00, 2025-06-16T00:00:00+00:00)"
    assert lines[5] == 'options    {"include_closed": false, "pipeline_ids": null}'
    assert lines[7] == "dagster    - (not run by Dagster)" and lines[8] == "facts      2 row(s)"
    table = lines[10:]
    assert table[0].split() == ["pipeline", "stage", *REPORT_METRICS]
    pipeline_label = f"pipeline 0 ({str(PIPELINE_IDS[0])[:8]})"
    lead_row, proposal_row = table[2:]
    assert lead_row.startswith(pipeline_label) and "open 1 (" in lead_row
    assert proposal_row.split()[-5:] == ["1", "250.50", "250.50", "6.00", "1"]  # in proposal since June 10


REPORT_METRICS = ["deal_count", "total_amount", "avg_amount", "avg_days_in_stage", "entered_count"]


def test_show_csv_is_the_facts_with_a_name_beside_each_id(cli_env, engine, history, runs):
    done = dyno(cli_env, "show", str(runs["w1"]), "--csv")
    assert done.returncode == 0, done.stderr
    rows = list(csv.DictReader(io.StringIO(done.stdout)))
    assert list(rows[0]) == ["pipeline_id", "pipeline", "stage_id", "stage", *REPORT_METRICS]
    table = pipeline_overview_fact
    with engine.connect() as conn:
        facts = conn.execute(select(table).where(table.c.run_id == runs["w1"]).order_by(table.c.stage_id)).all()
    assert [(r["stage_id"], Decimal(r["total_amount"]), int(r["deal_count"])) for r in rows] == [
        (str(f.stage_id), f.total_amount, f.deal_count) for f in facts
    ]
    assert [r["stage"] for r in rows] == ["open 1", "open 2"] and {r["pipeline"] for r in rows} == {"pipeline 0"}


def test_show_a_failed_run_shows_its_error(cli_env, engine, history):
    run_id = uuid.uuid4()
    with engine.begin() as conn:
        conn.execute(
            insert(report_run).values(
                run_id=run_id, tenant_id=history.tenant_id, report_type=REPORT, period_start=T0,
                period_end=T0 + 7 * D, period_grain="week", input_params={"options": {}},
                input_fingerprint="0" * 64, status="FAILED", error_message="division by zero",
            )
        )  # fmt: skip
    done = dyno(cli_env, "show", str(run_id))
    assert done.returncode == 0, done.stderr
    assert f"run        {run_id}  FAILED" in done.stdout and "error      division by zero" in done.stdout
    assert "facts" not in done.stdout
    as_csv = dyno(cli_env, "show", str(run_id), "--csv")
    assert as_csv.returncode == 1 and as_csv.stdout == ""
    assert as_csv.stderr.strip() == f"error: report run {run_id} is FAILED, it has no facts: division by zero"


@pytest.mark.parametrize(
    ("given", "message"),
    [
        ("not-a-uuid", "error: run id 'not-a-uuid' is not a UUID like 123e4567-e89b-12d3-a456-426614174000"),
        (str(uuid.UUID(int=5)), f"error: unknown report run {uuid.UUID(int=5)} (not in reporting.report_run)"),
    ],
)
def test_show_refuses_a_bad_or_unknown_run_id(cli_env, given, message):
    done = dyno(cli_env, "show", given)
    assert done.returncode == 2 and done.stdout == "" and done.stderr.strip() == message


def test_trend_totals_per_week_with_changes_latest_runs_and_gaps(cli_env, history, runs):
    done = dyno(cli_env, *trend_args(history, "--metric", "total_amount"))
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0].endswith("4 weeks 2025-06-02 to 2025-06-30 (UTC)")
    assert (
        [line.split() for line in lines[5:]]
        == [
            ["2025-06-02", "140.00", str(runs["w0"])[:8]],
            ["2025-06-09", "290.50", "+150.50", str(runs["w1"])[:8]],  # the later of the two runs of this week
            ["2025-06-16", "no", "run", "-"],  # only a run with other options
            ["2025-06-23", "47.00", str(runs["w3"])[:8]],  # no change: the week before has no run
        ]
    )


def test_trend_by_stage_as_csv_fills_absent_groups_with_zero(cli_env, history, runs):
    done = dyno(cli_env, *trend_args(history, "--metric", "deal_count", "--by", "stage_id", "--csv"))
    assert done.returncode == 0, done.stderr
    rows = list(csv.DictReader(io.StringIO(done.stdout)))
    assert list(rows[0]) == [
        "period_start", "period_end", "period (UTC)", "stage_id", "stage", "deal_count", "change", "run_id", "so_far"
    ]  # fmt: skip
    assert [r["period (UTC)"] for r in rows[:4]] == ["2025-06-02", "2025-06-09", "2025-06-16", "2025-06-23"]
    assert {r["so_far"] for r in rows} == {"false", ""}  # final runs; no run
    got = [(r["stage"], r["period_start"][:10], r["deal_count"], r["change"], r["run_id"]) for r in rows]
    assert got == [
        ("open 1", "2025-06-02", "2", "", str(runs["w0"])),
        ("open 1", "2025-06-09", "1", "-1", str(runs["w1"])),
        ("open 1", "2025-06-16", "", "", ""),
        ("open 1", "2025-06-23", "2", "", str(runs["w3"])),
        ("open 2", "2025-06-02", "0", "", str(runs["w0"])),
        ("open 2", "2025-06-09", "1", "1", str(runs["w1"])),
        ("open 2", "2025-06-16", "", "", ""),
        ("open 2", "2025-06-23", "0", "", str(runs["w3"])),
    ]


def test_trend_reads_the_runs_of_the_options_given(cli_env, history, runs):
    done = dyno(
        cli_env, *trend_args(history, "--metric", "deal_count", "--options", '{"include_closed": true}', "--csv")
    )
    assert done.returncode == 0, done.stderr
    rows = list(csv.DictReader(io.StringIO(done.stdout)))
    assert [(r["deal_count"], r["run_id"]) for r in rows] == [
        ("", ""),
        ("", ""),
        ("2", str(runs["w2_closed"])),
        ("", ""),
    ]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--metric", "avg_amount"], "error: avg_amount is not a count or an amount, so it cannot be summed"),
        (["--metric", "avg_amount", "--by", "pipeline_id"], "error: avg_amount is not a count or an amount and the"),
        (["--metric", "deals"], "error: pipeline_overview has no metric 'deals' (metrics: deal_count, total_amount"),
        (["--metric", "deal_count", "--by", "owner"], "error: pipeline_overview has no dimension 'owner'"),
        (["--metric", "deal_count", "--options", '{"x": 1}'], "error: invalid options: unknown option 'x'"),
    ],
)
def test_trend_refuses_unknown_names_and_meaningless_sums(cli_env, history, runs, args, message):
    done = dyno(cli_env, *trend_args(history, *args))
    assert done.returncode == 2 and done.stdout == "", done.stderr
    assert done.stderr.startswith(message), done.stderr


def test_trend_by_stage_for_a_non_additive_metric_and_a_png(cli_env, history, runs, tmp_path):
    chart = tmp_path / "trend.png"
    args = trend_args(history, "--metric", "avg_amount", "--by", "stage_id", "--csv", "--png", str(chart))
    done = dyno(cli_env, *args)
    assert done.returncode == 0, done.stderr
    rows = list(csv.DictReader(io.StringIO(done.stdout)))
    assert [(r["stage"], r["avg_amount"], r["change"]) for r in rows[:4]] == [
        ("open 1", "70.00", ""),
        ("open 1", "40.00", "-30.00"),
        ("open 1", "", ""),
        ("open 1", "23.50", ""),
    ]
    assert rows[4]["avg_amount"] == "" and rows[5]["avg_amount"] == "250.50"  # no open 2 deal at the end of w0
    with Image.open(chart) as image:
        assert image.format == "PNG" and image.size[0] >= 800 and len(image.getcolors(1 << 16) or []) > 50


@pytest.mark.parametrize("report_type", sorted(registry()))
def test_trend_of_every_report_and_metric_matches_its_facts(engine, twin, report_type):
    """In-process, for every registered report: each additive metric's total is the sum of the run's facts,
    and every metric grouped by all dimensions gives back each fact row's value."""
    report = registry()[report_type]
    (period,) = trend.trend_periods(TenantCalendar(), report.cadence, 1, through=date(2025, 6, 20))
    window = period.window
    with engine.connect() as conn:
        request = run_request.build_request(conn, report_type, twin.tenant_id, period_start=window.start,
                                         period_end=window.end)  # fmt: skip
    result = executor.execute(engine, request)
    assert result.succeeded, result.error_message
    table = report.fact_table
    with engine.connect() as conn:
        facts = conn.execute(select(table).where(table.c.run_id == result.run_id)).all()
        assert facts, "the history gives every report at least one fact row in June 2025"
        for metric in report.metrics:
            by_row = trend.trend(conn, report, twin.tenant_id, metric, report.dimensions, [window], request.options)
            assert sorted((p.group, p.value) for p in by_row if p.value is not None) == sorted(
                (tuple(getattr(f, d) for d in report.dimensions), getattr(f, metric))
                for f in facts
                if getattr(f, metric) is not None
            ), metric
            assert {p.run_id for p in by_row} == {result.run_id}
            if metric in trend.additive_metrics(report):
                (total,) = trend.trend(conn, report, twin.tenant_id, metric, (), [window], request.options)
                assert total.value == sum(getattr(f, metric) for f in facts), metric


def test_sums_are_offered_for_counts_and_amounts_only():
    assert trend.additive_metrics(registry()["pipeline_overview"]) == ("deal_count", "total_amount", "entered_count")
    assert trend.additive_metrics(registry()["win_loss"]) == ("won_count", "lost_count", "won_amount", "lost_amount")
    assert trend.additive_metrics(registry()["deal_velocity"]) == ("exited_count",)
    for report in registry().values():
        assert set(report.headline_metrics) <= set(trend.additive_metrics(report)), report.report_type


def test_periods_end_with_the_last_closed_one_or_the_one_containing_through():
    """In the default calendar, UTC weeks from Monday and calendar months, as before calendars."""

    def starts(walked):
        return [(p.start.date().isoformat(), (p.end - p.start).days) for p in walked]

    utc = TenantCalendar()
    at = datetime(2025, 6, 23, 9, tzinfo=UTC)
    assert starts(trend.trend_periods(utc, "week", 2, now=at)) == [("2025-06-09", 7), ("2025-06-16", 7)]
    assert starts(trend.trend_periods(utc, "week", 1, now=datetime(2025, 6, 29, tzinfo=UTC))) == [("2025-06-16", 7)]
    assert starts(trend.trend_periods(utc, "month", 3, now=datetime(2025, 3, 1, tzinfo=UTC))) == [
        ("2024-12-01", 31),
        ("2025-01-01", 31),
        ("2025-02-01", 28),
    ]
    assert starts(trend.trend_periods(utc, "month", 1, through=date(2024, 2, 29))) == [("2024-02-01", 29)]
    assert all(p.start.tzinfo is not None and p.window.grain == "week" for p in trend.trend_periods(utc, "week", 3))


def test_show_turns_a_wide_report_a_quarter(cli_env, engine, history):
    """pipeline_movement has 22 metrics: one line per metric, one column per pipeline."""
    report = registry()["pipeline_movement"]
    with engine.connect() as conn:
        request = run_request.build_request(
            conn, report.report_type, history.tenant_id, period_start="2025-06-01", period_end="2025-07-01"
        )
    result = executor.execute(engine, request)
    assert result.succeeded, result.error_message
    done = dyno(cli_env, "show", str(result.run_id))
    assert done.returncode == 0, done.stderr
    table = done.stdout.splitlines()[10:]
    assert table[0].strip() == f"pipeline 0 ({str(PIPELINE_IDS[0])[:8]})"
    with engine.connect() as conn:
        (fact,) = conn.execute(select(report.fact_table).where(report.fact_table.c.run_id == result.run_id)).all()
    assert [line.split() for line in table[2:]] == [[m, text_table.cell(getattr(fact, m))] for m in report.metrics]
