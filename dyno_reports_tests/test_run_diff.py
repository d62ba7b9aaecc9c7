"""`dyno-reports diff RUN_A RUN_B [--csv] [--any-question]` as a user runs it (subprocess, real PostgreSQL).

Runs come from the executor (a run and its refresh after a stage was edited, added or deleted) or are
stored by hand with chosen facts (header and facts in one transaction, as the executor commits them),
so every kind of difference, NULL dimensions and NULL values have figures worked out below.
"""

import csv
import io
import uuid
from collections.abc import Sequence
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import Engine, delete, insert, update

from dyno_reports.engine import executor, run_records, run_request
from dyno_reports.reports import get_report
from dyno_reports.storage import tables
from dyno_reports_tests.support.history import (
    DEAL_IDS,
    PIPELINE_IDS,
    PRINCIPAL_IDS,
    STAGE_IDS,
    TenantData,
    load,
    two_pipelines,
)
from dyno_reports_tests.test_cli import dyno

REPORT = "weighted_pipeline"
JUNE = ("2025-06-01", "2025-07-01")
P0, P1 = PIPELINE_IDS[:2]
O0, O1 = PRINCIPAL_IDS[:2]
CSV_HEADER = "change,pipeline_id,pipeline,principal_id,owner,close_month,metric,old,new,delta"


def open_deals() -> TenantData:
    """Pipeline 0 (open 1 at 0.1, open 2 at 0.2, won, lost, open 5 at 0.5): one deal of 100 in open 1 without
    an expected close date (close_month NULL), one of 200 in open 2 closing in July; open 5 has no deal."""
    data = TenantData()
    lead, proposal, *_ = data.add_pipeline(P0, ["open", "open", "won", "lost", "open"])
    data.add_deal(DEAL_IDS[0], [(datetime(2025, 5, 23, tzinfo=UTC), lead, 100)])
    data.add_deal(DEAL_IDS[1], [(datetime(2025, 6, 1, tzinfo=UTC), proposal, 200, O0, date(2025, 7, 15))])
    return data


@pytest.fixture
def tenant(engine) -> TenantData:
    data = open_deals()
    load(engine, data)
    return data


def run(engine: Engine, tenant_id: uuid.UUID, report: str = REPORT, start: str = JUNE[0], end: str = JUNE[1]):
    with engine.connect() as conn:
        request = run_request.build_request(conn, report, tenant_id, period_start=start, period_end=end)
    result = executor.execute(engine, request)
    assert result.succeeded, result.error_message
    return result.run_id


# A hand-made SUCCEEDED run's known_at (generated_at minus this) and the rest of what it knew.
KNOWN_BEFORE = timedelta(minutes=10)
WHAT_IT_KNEW = {"report_version": 1, "scope_digest": "0" * 64}


def stored_run(
    engine: Engine,
    tenant_id: uuid.UUID,
    facts: Sequence[dict[str, Any]] = (),
    *,
    report: str = REPORT,
    window: tuple[str, str] = JUNE,
    options: dict | None = None,
    generated_at: datetime | None = None,
    so_far: bool = False,
    error: str | None = None,
) -> uuid.UUID:
    """A run header (SUCCEEDED, or FAILED with `error`) and its facts, written in one transaction."""
    with engine.connect() as conn:
        request = run_request.build_request(conn, report, tenant_id, period_start=window[0], period_end=window[1],
                                         options=options)  # fmt: skip
    run_id = uuid.uuid4()
    values = run_records.header_values(request, run_id, "FAILED" if error else "SUCCEEDED")
    values |= {"error_message": error} | ({"generated_at": generated_at} if generated_at else {})
    if so_far:
        values["input_params"] = values["input_params"] | {"so_far": True}
    if not error and "known_at" in tables.report_run.c:  # what a run knew, once report_run records it (0011)
        values["known_at"] = (generated_at or datetime.now(UTC)) - KNOWN_BEFORE
        columns = tables.report_run.c
        values |= {key: value for key, value in WHAT_IT_KNEW.items() if key in columns and values.get(key) is None}
    with engine.begin() as conn:
        conn.execute(insert(tables.report_run).values(**values))
        if facts:
            rows = [{"run_id": run_id, "tenant_id": tenant_id} | fact for fact in facts]
            conn.execute(insert(get_report(report).fact_table), rows)
    return run_id


def weighted(pipeline, owner, month, quarter, deals, total, weighted_amount) -> dict[str, Any]:
    return {
        "pipeline_id": pipeline,
        "principal_id": owner,
        "close_month": month,
        "close_quarter": quarter,
        "deal_count": deals,
        "total_amount": Decimal(total),
        "weighted_amount": Decimal(weighted_amount),
    }


JULY, AUGUST, SEPTEMBER = date(2025, 7, 1), date(2025, 8, 1), date(2025, 9, 1)
# Run A (a so-far run of June) and run B (its final run): one row changed in a metric, one in two metrics and
# its attribute (close_quarter NULL in A, as in runs made before migration 0010), one removed, one added, one
# unchanged. Rows with close_month NULL are matched with each other.
FACTS_A = [
    weighted(P0, O0, None, None, 1, "100.00", "10.00"),
    weighted(P0, O0, JULY, None, 2, "300.00", "60.00"),
    weighted(P0, O1, AUGUST, JULY, 1, "50.00", "5.00"),
    weighted(P1, O1, None, None, 1, "70.00", "7.00"),
]
FACTS_B = [
    weighted(P0, O0, None, None, 1, "100.00", "12.50"),
    weighted(P0, O0, JULY, JULY, 3, "280.00", "60.00"),
    weighted(P0, O1, SEPTEMBER, JULY, 1, "80.00", "8.00"),
    weighted(P1, O1, None, None, 1, "70.00", "7.00"),
]


@pytest.fixture(scope="module")
def stored(engine) -> tuple[TenantData, uuid.UUID, uuid.UUID]:
    data, _first, _second = two_pipelines()
    load(engine, data)
    first = stored_run(engine, data.tenant_id, FACTS_A, generated_at=datetime(2025, 6, 20, tzinfo=UTC), so_far=True)
    second = stored_run(engine, data.tenant_id, FACTS_B, generated_at=datetime(2025, 7, 2, tzinfo=UTC))
    return data, first, second


def short(value: uuid.UUID) -> str:
    return str(value)[:8]


def test_identical_runs_have_no_differences(cli_env, engine, tenant):
    first, second = run(engine, tenant.tenant_id), run(engine, tenant.tenant_id)

    done = dyno(cli_env, "diff", str(first), str(second))
    as_csv = dyno(cli_env, "diff", str(first), str(second), "--csv")

    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[:5] == [
        "report     weighted_pipeline  (Weighted pipeline)",
        f"tenant     test {tenant.tenant_id}  ({tenant.tenant_id})",
        "period     2025-06-01 to 2025-07-01 UTC  2025-06 (month)",
        "utc        [2025-06-01T00:00:00+00:00, 2025-07-01T00:00:00+00:00)",
        'options    {"pipeline_ids": null}',
    ]
    assert lines[5].startswith(f"run A      {first}  generated ") and lines[5].endswith("  older")
    assert lines[6].startswith(f"run B      {second}  generated ") and lines[6].endswith("  newer")
    assert lines[7:] == ["", "no differences: 2 rows unchanged"]
    assert as_csv.returncode == 0 and as_csv.stdout == CSV_HEADER + "\n", as_csv.stderr


def test_a_changed_metric_in_a_row_whose_close_month_is_null(cli_env, engine, tenant):
    """open 1's probability 0.1 -> 0.3: the deal of 100 without a close date weighs 30.00, not 10.00."""
    first = run(engine, tenant.tenant_id)
    with engine.begin() as conn:
        stage = tables.stage
        conn.execute(
            update(stage)
            .where(stage.c.tenant_id == tenant.tenant_id, stage.c.stage_id == STAGE_IDS[0])
            .values(probability=Decimal("0.3"))
        )
    second = run(engine, tenant.tenant_id)

    done = dyno(cli_env, "diff", str(first), str(second))

    assert done.returncode == 0, done.stderr
    blocks = done.stdout.split("\n\n")
    assert blocks[1:] == [
        "changed (1 row)\n"
        "pipeline               owner               close_month  metric             old    new  change\n"
        "---------------------  ------------------  -----------  ---------------  -----  -----  ------\n"
        f"pipeline 0 ({short(P0)})  owner 0 ({short(O0)})               weighted_amount  10.00  30.00  +20.00",
        "1 row changed, 0 added, 0 removed, 1 unchanged\n",
    ]


def test_rows_added_and_removed_when_stages_come_and_go(cli_env, engine, tenant):
    """pipeline_overview lists every open stage: open 5 (no deals) is deleted and open 6 added between runs."""
    week = ("2025-06-02", "2025-06-09")
    first = run(engine, tenant.tenant_id, "pipeline_overview", *week)
    new_stage = STAGE_IDS[10]
    with engine.begin() as conn:
        stage = tables.stage
        conn.execute(delete(stage).where(stage.c.tenant_id == tenant.tenant_id, stage.c.stage_id == STAGE_IDS[4]))
        conn.execute(
            insert(stage).values(tenant_id=tenant.tenant_id, stage_id=new_stage, pipeline_id=P0, name="open 6",
                                 position=6, probability=Decimal("0.6"), kind="open")
        )  # fmt: skip
    second = run(engine, tenant.tenant_id, "pipeline_overview", *week)

    done = dyno(cli_env, "diff", str(first), str(second))

    assert done.returncode == 0, done.stderr
    blocks = done.stdout.split("\n\n")
    pipeline = f"pipeline 0 ({short(P0)})"
    added = [line.split("  ") for line in blocks[1].splitlines()]
    assert added[0] == ["added (1 row)"]
    assert [[cell.strip() for cell in line if cell.strip()] for line in added[3:]] == [
        [pipeline, f"open 6 ({short(new_stage)})", "deal_count", "0"],
        [pipeline, f"open 6 ({short(new_stage)})", "total_amount", "0.00"],
        [pipeline, f"open 6 ({short(new_stage)})", "avg_amount"],
        [pipeline, f"open 6 ({short(new_stage)})", "avg_days_in_stage"],
        [pipeline, f"open 6 ({short(new_stage)})", "entered_count", "0"],
    ]
    removed = blocks[2].splitlines()
    assert removed[0] == "removed (1 row)" and removed[1].split() == ["pipeline", "stage", "metric", "old"]
    # the deleted stage has no name any more: its full id is shown
    assert [line.split()[-2:] for line in removed[3:]] == [
        ["deal_count", "0"], ["total_amount", "0.00"], [str(STAGE_IDS[4]), "avg_amount"],
        [str(STAGE_IDS[4]), "avg_days_in_stage"], ["entered_count", "0"],
    ]  # fmt: skip
    assert blocks[3:] == ["0 rows changed, 1 added, 1 removed, 2 unchanged\n"]


def test_csv_lists_each_difference_metric_by_metric(cli_env, stored):
    _data, first, second = stored

    done = dyno(cli_env, "diff", str(first), str(second), "--csv")

    assert done.returncode == 0, done.stderr
    p0, o0, o1 = f"{P0},pipeline 0", f"{O0},owner 0", f"{O1},owner 1"
    assert done.stdout.splitlines() == [
        CSV_HEADER,
        f"added,{p0},{o1},2025-09-01,close_quarter,,2025-07-01,",
        f"added,{p0},{o1},2025-09-01,deal_count,,1,",
        f"added,{p0},{o1},2025-09-01,total_amount,,80.00,",
        f"added,{p0},{o1},2025-09-01,weighted_amount,,8.00,",
        f"removed,{p0},{o1},2025-08-01,close_quarter,2025-07-01,,",
        f"removed,{p0},{o1},2025-08-01,deal_count,1,,",
        f"removed,{p0},{o1},2025-08-01,total_amount,50.00,,",
        f"removed,{p0},{o1},2025-08-01,weighted_amount,5.00,,",
        f"changed,{p0},{o0},2025-07-01,close_quarter,,2025-07-01,",
        f"changed,{p0},{o0},2025-07-01,deal_count,2,3,1",
        f"changed,{p0},{o0},2025-07-01,total_amount,300.00,280.00,-20.00",
        f"changed,{p0},{o0},,weighted_amount,10.00,12.50,2.50",
    ]
    rows = list(csv.DictReader(io.StringIO(done.stdout)))
    assert {r["change"] for r in rows} == {"added", "removed", "changed"}


def test_text_names_the_older_and_the_so_far_run_and_every_kind(cli_env, stored):
    _data, first, second = stored

    done = dyno(cli_env, "diff", str(first), str(second))

    assert done.returncode == 0, done.stderr
    header, *blocks = done.stdout.split("\n\n")
    run_a, run_b = header.splitlines()[5:]
    assert run_a.startswith(f"run A      {first}  generated 2025-06-20T00:00:00+00:00  ")
    assert run_a.endswith("  older  so far: the period had not ended when this ran")
    if "known_at" in tables.report_run.c:
        assert "  generated 2025-06-20T00:00:00+00:00  known at 2025-06-19T23:50:00+00:00  older" in run_a
    assert run_b.startswith(f"run B      {second}  generated 2025-07-02T00:00:00+00:00  ") and run_b.endswith("  newer")
    assert [block.splitlines()[0] for block in blocks[:3]] == ["added (1 row)", "removed (1 row)", "changed (2 rows)"]
    assert blocks[2].splitlines()[1].split() == ["pipeline", "owner", "close_month", "metric", "old", "new", "change"]
    row = f"pipeline 0 ({short(P0)})  owner 0 ({short(O0)})"
    assert blocks[2].splitlines() == [
        "changed (2 rows)",
        "pipeline               owner               close_month  metric              old         new  change",
        "---------------------  ------------------  -----------  ---------------  ------  ----------  ------",
        f"{row}  2025-07-01   close_quarter            2025-07-01",
        f"{row}  2025-07-01   deal_count            2           3      +1",
        f"{row}  2025-07-01   total_amount     300.00      280.00  -20.00",
        f"{row}               weighted_amount   10.00       12.50   +2.50",
    ]
    assert blocks[3:] == ["2 rows changed, 1 added, 1 removed, 1 unchanged\n"]


def test_the_runs_can_be_given_in_either_order(cli_env, stored):
    """From B to A: what B added is removed, and every change runs the other way."""
    _data, first, second = stored

    done = dyno(cli_env, "diff", str(second), str(first), "--csv")

    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[1].startswith("added,") and lines[1].endswith(",2025-08-01,close_quarter,,2025-07-01,")
    assert lines[-1] == f"changed,{P0},pipeline 0,{O0},owner 0,,weighted_amount,12.50,10.00,-2.50"
    header = dyno(cli_env, "diff", str(second), str(first)).stdout.splitlines()
    assert header[5].endswith("  newer")
    assert header[6].endswith("  older  so far: the period had not ended when this ran")


@pytest.fixture(scope="module")
def others(engine, stored) -> dict[str, uuid.UUID]:
    """Runs that cannot be compared with `stored`'s first run, by what differs."""
    data = stored[0]
    other_tenant, _first, _second = two_pipelines()
    load(engine, other_tenant)
    return {
        "failed": stored_run(engine, data.tenant_id, error="division by zero"),
        "other tenant": stored_run(engine, other_tenant.tenant_id),
        "other report": stored_run(engine, data.tenant_id, report="win_loss"),
        "other period": stored_run(engine, data.tenant_id, window=("2025-05-01", "2025-06-01")),
        "other options": stored_run(engine, data.tenant_id, options={"pipeline_ids": [str(P0)]}),
    }


def test_runs_that_cannot_be_compared_are_refused(cli_env, stored, others):
    data, first, _second = stored
    unknown = uuid.UUID(int=5)
    june = "[2025-06-01T00:00:00+00:00, 2025-07-01T00:00:00+00:00)"
    may = "[2025-05-01T00:00:00+00:00, 2025-06-01T00:00:00+00:00)"
    tenant, report = others["other tenant"], others["other report"]
    expected = {
        "not-a-uuid": "run id 'not-a-uuid' is not a UUID like 123e4567-e89b-12d3-a456-426614174000",
        str(unknown): f"unknown report run {unknown} (not in reporting.report_run)",
        "failed": f"report run {others['failed']} is FAILED, it has no facts to compare: division by zero",
        "other tenant": f"runs of different tenants: {first} is of tenant {data.tenant_id}, {tenant} of tenant",
        "other report": f"runs of different reports: {first} is weighted_pipeline, {report} is win_loss",
        "other period": f"runs of different questions: period {june} vs {may} (--any-question compares them anyway)",
        "other options": 'runs of different questions: options {"pipeline_ids": null} vs {"pipeline_ids": '
        f'["{P0}"]}} (--any-question compares them anyway)',
    }
    for given, message in expected.items():
        other = str(others.get(given, given))
        done = dyno(cli_env, "diff", str(first), other)
        assert done.returncode == 2 and done.stdout == "", (given, done.stdout)
        assert done.stderr.startswith(f"error: {message}"), (given, done.stderr)
        assert done.stderr.count("\n") == 1
    reversed_order = dyno(cli_env, "diff", str(others["failed"]), str(first), "--csv")
    assert reversed_order.returncode == 2 and "is FAILED" in reversed_order.stderr


def test_any_question_compares_another_period_and_shows_both(cli_env, stored, others):
    _data, first, _second = stored

    done = dyno(cli_env, "diff", str(first), str(others["other period"]), "--any-question")

    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[2:6] == [
        "period A   2025-06-01 to 2025-07-01 UTC  2025-06 (month)",
        "period B   2025-05-01 to 2025-06-01 UTC  2025-05 (month)",
        "utc A      [2025-06-01T00:00:00+00:00, 2025-07-01T00:00:00+00:00)",
        "utc B      [2025-05-01T00:00:00+00:00, 2025-06-01T00:00:00+00:00)",
    ]
    assert lines[6] == 'options    {"pipeline_ids": null}'
    assert lines[7].startswith("question   different (--any-question): period [2025-06-01")
    assert lines[-1] == "0 rows changed, 0 added, 4 removed, 0 unchanged"  # the other run has no facts
