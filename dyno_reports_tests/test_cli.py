"""The `dyno-reports` command as a user runs it (subprocess, real PostgreSQL): outputs and error paths."""

import json
import subprocess
import sys
from datetime import timedelta

import pytest
from sqlalchemy import func, select

from dyno_reports.storage.tables import report_run
from dyno_reports_tests.support.history import DEAL_IDS, PIPELINE_IDS, T0, TenantData, load


def dyno(env: dict[str, str], *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "dyno_reports.cli", *args], env=env, capture_output=True,
                          text=True, timeout=120)


@pytest.fixture(scope="module")
def tenants(engine) -> tuple[TenantData, TenantData]:
    mine, other = TenantData(), TenantData()
    lead, won = mine.add_pipeline(PIPELINE_IDS[0], ["open", "won"])
    mine.add_deal(DEAL_IDS[0], [(T0, lead, 10), (T0 + timedelta(days=1), won, 10)])
    other.add_pipeline(PIPELINE_IDS[1], ["open", "won"])
    load(engine, mine)
    load(engine, other)
    return mine, other


def run_count(engine) -> int:
    with engine.connect() as conn:
        return conn.execute(select(func.count()).select_from(report_run)).scalar_one()


def test_run_json_last_line_is_the_outcome(cli_env, engine, tenants):
    mine, _ = tenants
    done = dyno(cli_env, "run", "pipeline_overview", "--tenant", str(mine.tenant_id), "--period-start", "2025-06-02",
                "--period-end", "2025-06-09", "--options", '{"include_closed": true}', "--json")

    assert done.returncode == 0, done.stderr
    outcome = json.loads(done.stdout.strip().splitlines()[-1])
    assert outcome["status"] == "SUCCEEDED" and outcome["fact_rows"] == 2
    assert outcome["tenant_id"] == str(mine.tenant_id) and outcome["report_type"] == "pipeline_overview"
    assert (outcome["period_start"], outcome["period_end"]) == ("2025-06-02T00:00:00+00:00", "2025-06-09T00:00:00+00:00")
    assert outcome["run_id"]


def test_list_shows_every_report_with_options_and_cadence(cli_env):
    done = dyno(cli_env, "list", "--json")
    listing = json.loads(done.stdout)
    assert listing["pipeline_overview"]["cadence"] == "week"
    assert {"pipeline_ids", "include_closed"} <= set(listing["pipeline_overview"]["options"])


BAD_INPUTS = {
    "malformed tenant": ["--tenant", "not-a-uuid"],
    "unknown tenant": ["--tenant", "00000000-0000-0000-0000-000000000000"],
    "end before start": ["--period-start", "2025-06-09", "--period-end", "2025-06-02"],
    "end equals start": ["--period-start", "2025-06-09", "--period-end", "2025-06-09"],
    "unparsable date": ["--period-start", "June 2nd"],
    "unparsable JSON": ["--options", "{include_closed: true"],
    "options not an object": ["--options", "[1, 2]"],
    "unknown option": ["--options", '{"colour": "red"}'],
    "ill-typed option": ["--options", '{"include_closed": "yes"}'],
    "ill-typed pipeline ids": ["--options", '{"pipeline_ids": "all"}'],
    "empty pipeline ids": ["--options", '{"pipeline_ids": []}'],
    "missing tenant": None,
}


@pytest.mark.parametrize("case", sorted(BAD_INPUTS))
def test_bad_input_is_one_line_nonzero_exit_and_changes_nothing(cli_env, engine, tenants, case):
    mine, _ = tenants
    args = BAD_INPUTS[case]
    if args is None:
        command = ["run", "pipeline_overview"]
    elif args[0] == "--tenant":
        command = ["run", "pipeline_overview", *args]
    else:
        command = ["run", "pipeline_overview", "--tenant", str(mine.tenant_id), *args]
    before = run_count(engine)

    done = dyno(cli_env, *command)

    assert done.returncode != 0
    assert done.stderr.count("\n") == 1 and done.stderr.startswith("error: "), done.stderr
    assert "Traceback" not in done.stderr + done.stdout
    assert run_count(engine) == before


def test_unknown_report_and_another_tenants_pipeline_are_refused(cli_env, engine, tenants):
    mine, other = tenants
    before = run_count(engine)
    unknown = dyno(cli_env, "run", "pipeline_overveiw", "--tenant", str(mine.tenant_id))
    foreign = dyno(cli_env, "run", "pipeline_overview", "--tenant", str(mine.tenant_id),
                   "--options", json.dumps({"pipeline_ids": [str(PIPELINE_IDS[1])]}))

    assert unknown.returncode == 2 and "unknown report 'pipeline_overveiw'" in unknown.stderr
    assert foreign.returncode == 2 and "do not belong to tenant" in foreign.stderr
    assert run_count(engine) == before


def test_unmigrated_database_gets_a_clear_message(database_factory):
    url = database_factory("unmigrated").render_as_string(hide_password=False)
    done = dyno({"DYNO_DATABASE_URL": url, "PATH": ""}, "run", "pipeline_overview", "--tenant", str(DEAL_IDS[0]))
    assert done.returncode == 1 and "run `dyno-reports db upgrade`" in done.stderr


def test_sync_tenants_without_a_dagster_home_is_one_clear_line(cli_env):
    env = {k: v for k, v in cli_env.items() if k != "DAGSTER_HOME"}
    done = dyno(env, "sync-tenants")
    assert done.returncode == 1
    assert done.stderr.startswith("error: DAGSTER_HOME must name an existing folder") and done.stderr.count("\n") == 1
