"""`dyno-reports runs stale` and `dyno-reports refresh` as subprocesses (real PostgreSQL): the listing and its
JSON, refresh and its dry run, and the errors for an unknown tenant or report.
"""

import json
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from dyno_reports_tests.support.facts import run
from dyno_reports_tests.support.history import DEAL_IDS, PIPELINE_IDS, T0, Row, TenantData, load, load_rows
from dyno_reports_tests.test_cli import dyno, run_count

D = timedelta(days=1)
WEEK = (T0, T0 + 7 * D)


def stale_tenant(engine) -> tuple[TenantData, object]:
    """A tenant with a win_loss run of T0's week, then a late row dated inside it (the won deal lost)."""
    data = TenantData()
    lead, won, lost = data.add_pipeline(PIPELINE_IDS[0], ["open", "won", "lost"])
    data.add_deal(DEAL_IDS[0], [(T0 - 3 * D, lead, 10), (T0 + 3 * D, won, 10)])
    load(engine, data)
    result = run(engine, "win_loss", data.tenant_id, *WEEK)
    assert result.succeeded, result.error_message
    late = Row(DEAL_IDS[0], T0 + 4 * D, lost.stage_id, data.principals[0], Decimal(10), recorded_at=datetime.now(UTC))
    load_rows(engine, data, [late])
    return data, result.run_id


def test_runs_stale_lists_the_run_its_question_and_why(cli_env, engine):
    data, run_id = stale_tenant(engine)
    tenant = ("--tenant", str(data.tenant_id))
    done = dyno(cli_env, "runs", "stale", *tenant, "--json")
    assert done.returncode == 0, done.stderr
    listed = json.loads(done.stdout.strip().splitlines()[-1])
    assert [s["run_id"] for s in listed] == [str(run_id)]
    assert listed[0]["late_rows"] == 1 and listed[0]["reasons"] == [f"1 late row from {(T0 + 4 * D).isoformat()}"]
    text_done = dyno(cli_env, "runs", "stale", *tenant, "--report", "win_loss")
    assert text_done.returncode == 0, text_done.stderr
    assert str(run_id) in text_done.stdout and "1 late row from 2025-06-06" in text_done.stdout
    assert "2025-06-02 to 2025-06-09" in text_done.stdout and text_done.stdout.strip().endswith("1 stale run")
    assert dyno(cli_env, "runs", "stale", *tenant, "--report", "pipeline_overview").stdout.strip() == "0 stale runs"


def test_refresh_dry_run_writes_nothing_and_refresh_reruns(cli_env, engine):
    cli_env = {**cli_env, "DYNO_CRM_MAX_WRITE_SECONDS": "0"}  # the refresh's K knows the row written just now
    data, run_id = stale_tenant(engine)
    tenant = ("--tenant", str(data.tenant_id))
    before = run_count(engine)
    dry = dyno(cli_env, "refresh", *tenant, "--dry-run")
    assert dry.returncode == 0, dry.stderr
    assert str(run_id) in dry.stdout and "1 stale run would be re-run (dry run)" in dry.stdout
    assert run_count(engine) == before
    done = dyno(cli_env, "refresh", *tenant)
    assert done.returncode == 0, done.stderr
    assert "[1/1] win_loss" in done.stdout and f"{run_id} -> " in done.stdout and "1 row changed" in done.stdout
    assert run_count(engine) == before + 1
    assert dyno(cli_env, "runs", "stale", *tenant).stdout.strip() == "0 stale runs"


def test_unknown_tenant_or_report_is_refused(cli_env, engine):
    unknown = dyno(cli_env, "runs", "stale", "--tenant", "123e4567-e89b-12d3-a456-426614174000")
    assert unknown.returncode == 2 and "unknown tenant 123e4567-e89b-12d3-a456-426614174000" in unknown.stderr
    bad_report = dyno(cli_env, "refresh", "--report", "nope", "--dry-run")
    assert bad_report.returncode == 2 and "unknown report 'nope'" in bad_report.stderr
