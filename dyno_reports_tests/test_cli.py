"""The `dyno-reports` command as a user runs it (subprocess, real PostgreSQL, psql when installed).

Outputs and error paths.
"""

import json
import re
import shutil
import subprocess
import sys
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg
import pytest
from sqlalchemy import func, select, text
from sqlalchemy.engine import URL

from dyno_reports.core import periods
from dyno_reports.core.errors import UnknownTenant
from dyno_reports.engine.run_records import record_input_failure
from dyno_reports.engine.run_request import build_request
from dyno_reports.storage.db import libpq_url
from dyno_reports.storage.tables import report_run
from dyno_reports_tests.support.history import DEAL_IDS, PIPELINE_IDS, T0, TenantData, load


def dyno(env: dict[str, str], *args: str, stdin: str | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "dyno_reports.cli.main", *args],
        env=env,
        input=stdin,
        capture_output=True,
        text=True,
        timeout=120,
    )


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


OVERVIEW_CLOSED = ("--options", '{"include_closed": true}')


def run_overview_week(env: dict[str, str], data: TenantData, *args: str) -> subprocess.CompletedProcess:
    """`run pipeline_overview` of the week from 2025-06-02, closed stages included, for `data`'s tenant."""
    week = ("--period-start", "2025-06-02", "--period-end", "2025-06-09")
    return dyno(env, "run", "pipeline_overview", "--tenant", str(data.tenant_id), *week, *OVERVIEW_CLOSED, *args)


def test_run_json_last_line_is_the_outcome(cli_env, engine, tenants):
    mine, _ = tenants
    done = run_overview_week(cli_env, mine, "--json")

    assert done.returncode == 0, done.stderr
    outcome = json.loads(done.stdout.strip().splitlines()[-1])
    assert outcome["status"] == "SUCCEEDED" and outcome["fact_rows"] == 2
    assert outcome["tenant_id"] == str(mine.tenant_id) and outcome["report_type"] == "pipeline_overview"
    assert (outcome["period_start"], outcome["period_end"]) == (
        "2025-06-02T00:00:00+00:00",
        "2025-06-09T00:00:00+00:00",
    )
    assert outcome["run_id"]


def test_run_prints_its_headline_as_the_demo_does(cli_env, tenants):
    mine, _ = tenants
    done = run_overview_week(cli_env, mine)

    assert done.returncode == 0, done.stderr
    status_line, run_line = done.stdout.splitlines()
    assert status_line.startswith("SUCCEEDED  pipeline_overview  tenant ")
    assert re.fullmatch(
        r"run_id [0-9a-f-]{36}  fact rows 2  deal_count=1, total_amount=10\.00, entered_count=2", run_line
    ), run_line


def test_a_stored_refusal_of_an_unknown_tenant_names_no_other_tenant(engine, tenants):
    """A refused tenant's FAILED header (Dagster records one per refused partition) keeps the bare message: the
    names of the known tenants are added by the command line only, for the person reading it."""
    unknown = uuid.UUID(int=5)
    window = periods.Window(datetime(2025, 6, 2, tzinfo=UTC), datetime(2025, 6, 9, tzinfo=UTC))
    with engine.connect() as conn, pytest.raises(UnknownTenant) as refused:
        build_request(conn, "pipeline_overview", unknown, period_start=window.start, period_end=window.end)

    run_id = record_input_failure(engine, "pipeline_overview", unknown, window, None, str(refused.value))

    with engine.connect() as conn:
        stored = conn.execute(select(report_run.c.error_message).where(report_run.c.run_id == run_id)).scalar_one()
    assert stored == f"unknown tenant {unknown} (not in crm.tenant)"


def test_list_shows_every_report_with_options_and_cadences(cli_env):
    done = dyno(cli_env, "list", "--json")
    listing = json.loads(done.stdout)
    assert listing["pipeline_overview"]["cadence"] == "week"
    assert {"pipeline_ids", "include_closed"} <= set(listing["pipeline_overview"]["options"])
    assert {name: (r["cadence"], r["cadences"]) for name, r in listing.items()} == {
        "pipeline_overview": ("week", ["week"]),
        "stage_conversion": ("week", ["week"]),
        "weighted_pipeline": ("month", ["month", "quarter"]),
        "win_loss": ("month", ["month", "quarter"]),
        "deal_velocity": ("month", ["month", "quarter"]),
        "pipeline_movement": ("month", ["month", "quarter"]),
    }
    text = dyno(cli_env, "list").stdout.splitlines()
    assert "weighted_pipeline  (monthly, quarterly)  -> reporting.report_weighted_pipeline_fact" in text
    assert "pipeline_overview  (weekly)  -> reporting.report_pipeline_overview_fact" in text


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
    "options null": ["--options", "null"],
    "repeated option": ["--options", '{"include_closed": false, "include_closed": true}'],
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
    mine, _other = tenants
    before = run_count(engine)
    unknown = dyno(cli_env, "run", "pipeline_overveiw", "--tenant", str(mine.tenant_id))
    foreign = dyno(
        cli_env,
        "run",
        "pipeline_overview",
        "--tenant",
        str(mine.tenant_id),
        "--options",
        json.dumps({"pipeline_ids": [str(PIPELINE_IDS[1])]}),
    )

    assert unknown.returncode == 2 and "unknown report 'pipeline_overveiw'" in unknown.stderr
    assert foreign.returncode == 2 and "do not belong to tenant" in foreign.stderr
    assert run_count(engine) == before


def test_issue_cases_as_a_user_runs_them(cli_env, engine, tenants):
    """Once exit 1 with `error: unexpected ...` (the 9999 window also named a run_id it never wrote) or a 100 KB
    error line: now exit 2, one short line, nothing written."""
    mine, _ = tenants
    before = run_count(engine)

    window = dyno(
        cli_env,
        "run",
        "pipeline_overview",
        "--tenant",
        str(mine.tenant_id),
        "--period-start",
        "9999-12-01",
        "--period-end",
        "9999-12-31",
    )
    huge_tenant = dyno(cli_env, "run", "pipeline_overview", "--tenant", "f" * 100_000)

    assert window.returncode == 2 and "outside the supported range" in window.stderr, window.stderr
    assert huge_tenant.returncode == 2 and "is not a UUID" in huge_tenant.stderr
    for done in (window, huge_tenant):
        assert done.stderr.count("\n") == 1 and done.stderr.startswith("error: ") and len(done.stderr) <= 500
        assert "unexpected" not in done.stderr and "run_id" not in done.stderr + done.stdout
    assert run_count(engine) == before


def test_options_from_stdin_and_from_a_file(cli_env, engine, tenants, tmp_path):
    mine, _ = tenants
    options = json.dumps({"include_closed": True, "pipeline_ids": [str(PIPELINE_IDS[0])]})
    path = tmp_path / "options.json"
    path.write_text(options, encoding="utf-8")
    run = ("run", "pipeline_overview", "--tenant", str(mine.tenant_id), "--json")

    from_stdin = dyno(cli_env, *run, "--options", "-", stdin=options)
    from_file = dyno(cli_env, *run, "--options", f"@{path}")
    missing = dyno(cli_env, *run, "--options", f"@{tmp_path / 'missing.json'}")

    for done in (from_stdin, from_file):
        assert done.returncode == 0, done.stderr
        assert json.loads(done.stdout.strip().splitlines()[-1])["options"] == {
            "include_closed": True,
            "pipeline_ids": [str(PIPELINE_IDS[0])],
        }
    assert missing.returncode == 2 and missing.stderr.count("\n") == 1
    assert missing.stderr.startswith("error: cannot read the options from file") and "No such file" in missing.stderr


def test_unmigrated_database_gets_a_clear_message(database_factory):
    url = database_factory("unmigrated").render_as_string(hide_password=False)
    done = dyno({"DYNO_DATABASE_URL": url, "PATH": ""}, "run", "pipeline_overview", "--tenant", str(DEAL_IDS[0]))
    assert done.returncode == 1 and "run `dyno-reports db upgrade`" in done.stderr


def test_sync_tenants_without_a_dagster_home_is_one_clear_line(cli_env):
    env = {k: v for k, v in cli_env.items() if k != "DAGSTER_HOME"}
    done = dyno(env, "sync-tenants")
    assert done.returncode == 1
    assert done.stderr.startswith("error: DAGSTER_HOME must name an existing folder") and done.stderr.count("\n") == 1


def test_db_url_is_a_libpq_url_that_psql_accepts(cli_env, database_url):
    done = dyno(cli_env, "db", "url")
    url = done.stdout.strip()

    assert done.returncode == 0, done.stderr
    assert url.startswith("postgresql://") and url == libpq_url(database_url)
    with psycopg.connect(url) as conn:  # libpq parses it, as psql does
        assert conn.execute("select current_database()").fetchone() == (database_url.database,)
    if shutil.which("psql"):
        psql = subprocess.run(
            ["psql", url, "-Atc", "select current_database()"], capture_output=True, text=True, timeout=30
        )
        assert (psql.returncode, psql.stdout.strip()) == (0, database_url.database), psql.stderr


def test_db_url_sqlalchemy_flag_keeps_the_driver_form(cli_env, database_url):
    done = dyno(cli_env, "db", "url", "--sqlalchemy")
    assert done.stdout.strip() == database_url.set(drivername="postgresql+psycopg").render_as_string(
        hide_password=False
    )


def test_libpq_url_through_the_servers_unix_socket(engine, database_url):
    """The embedded server's form (`?host=/socket/dir`), on the test server's own socket when it is on this machine."""
    with engine.connect() as conn:
        socket_dir = conn.execute(
            text("select split_part(current_setting('unix_socket_directories'), ',', 1)")
        ).scalar()
    if not socket_dir or not Path(socket_dir).is_dir():
        pytest.skip("the test server's Unix socket is not on this machine")
    url = libpq_url(
        URL.create(
            "postgresql",
            database_url.username,
            database_url.password,
            database=database_url.database,
            query={"host": socket_dir},
        )
    )
    assert url == f"postgresql://{database_url.username}@/{database_url.database}?host={socket_dir}"
    with psycopg.connect(url) as conn:
        assert conn.execute("select inet_server_port() is null").fetchone() == (True,)


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        (
            "postgresql+psycopg://postgres:@/dyno?host=%2Fsrv%2F.dyno%2Fpgdata",
            "postgresql://postgres@/dyno?host=/srv/.dyno/pgdata",
        ),
        (
            "postgresql://u:p%40ss%3Aw@db.example:6543/reports?sslmode=require",
            "postgresql://u:p%40ss%3Aw@db.example:6543/reports?sslmode=require",
        ),
        ("postgresql+psycopg2://u@[::1]:5433/d", "postgresql://u@[::1]:5433/d"),
        ("postgresql://u@/d?host=h1:5432&host=h2:5433", "postgresql://u@/d?host=h1,h2&port=5432,5433"),
    ],
)
def test_libpq_url_forms(given, expected):
    assert libpq_url(given) == expected


def test_db_psql_runs_psql_on_the_database(cli_env, database_url):
    if not shutil.which("psql"):
        pytest.skip("psql is not installed")
    done = dyno(cli_env, "db", "psql", "-Atc", "select current_database()")
    assert (done.returncode, done.stdout.strip()) == (0, database_url.database), done.stderr


def test_db_psql_without_psql_is_one_clear_line(cli_env, tmp_path):
    done = dyno({**cli_env, "PATH": str(tmp_path)}, "db", "psql", "-c", "select 1")
    assert done.returncode == 1
    assert done.stderr.startswith("error: psql is not installed") and done.stderr.count("\n") == 1
