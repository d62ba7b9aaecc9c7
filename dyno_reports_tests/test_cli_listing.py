"""`dyno-reports tenants`, `dyno-reports runs list` and the unknown-tenant error that names known tenants, as a
user runs them (subprocess, real PostgreSQL).

Tenants and run headers are inserted as they are, with fixed ids, names and times, so every line the
commands print is known in advance; a second, empty database holds the "no tenants yet" cases.
"""

import json
import os
import re
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import create_engine, func, insert, select

from dyno_reports.core.errors import ERROR_LINE_LIMIT, shown
from dyno_reports.storage import migrate
from dyno_reports.storage.tables import report_run, tenant
from dyno_reports_tests.support.knowledge import knowledge
from dyno_reports_tests.test_cli import dyno

H = timedelta(hours=1)
G = datetime(2025, 7, 1, tzinfo=UTC)  # runs are generated from here on, one an hour
LONG_NAME = "A" * 300 + " Corp"


def tenant_uuid(n: int) -> uuid.UUID:
    """A UUID whose short form (first 8 hex digits) tells it apart."""
    return uuid.UUID(f"{n:08x}-0000-4000-8000-{n:012x}")


TENANTS = {  # key -> (tenant_id, name, created_at); by name then id: long, acme, beta_1, beta_2, gamma
    "gamma": (tenant_uuid(0xC1), "Gamma", datetime(2024, 3, 1, tzinfo=UTC)),
    "beta_2": (tenant_uuid(0xB2), "Beta", datetime(2024, 2, 2, tzinfo=UTC)),
    "beta_1": (tenant_uuid(0xB1), "Beta", datetime(2024, 2, 1, 12, 30, tzinfo=UTC)),
    "acme": (tenant_uuid(0xA1), "Acme", datetime(2024, 1, 1, tzinfo=UTC)),
    "long": (tenant_uuid(0x10), LONG_NAME, datetime(2024, 4, 1, tzinfo=UTC)),
}
BY_NAME = ["long", "acme", "beta_1", "beta_2", "gamma"]
CALENDAR_COLUMNS = ("time_zone", "week_start", "fiscal_year_start_month", "fiscal_year_named_by")
CALENDARS = {"gamma": ("America/Los_Angeles", 7, 2, "end")}  # the others have the default calendar
DEFAULT_CALENDAR = ("UTC", 1, 1, "end")


def calendar_of(key: str) -> dict:
    return dict(zip(CALENDAR_COLUMNS, CALENDARS.get(key, DEFAULT_CALENDAR), strict=True))


GONE = tenant_uuid(0xDEAD)  # runs of a tenant no longer in crm.tenant
UNKNOWN = tenant_uuid(0x5)  # neither in crm.tenant nor in any run
DAGSTER_RUN = "abcdef12-3456-7890-abcd-ef1234567890"
LONG_ERROR = "boom: " + "x" * 200
OPTIONS = {"include_closed": True, "pipeline_ids": None}


def run_row(n: int, tenant_id: uuid.UUID, report_type: str, status: str, **values) -> dict:
    """A header generated n hours after G; a week window from 2025-06-02 unless `values` says otherwise."""
    row = {
        "run_id": uuid.UUID(int=0x100 + n),
        "tenant_id": tenant_id,
        "report_type": report_type,
        "generated_at": G + n * H,
        "period_start": datetime(2025, 6, 2, tzinfo=UTC),
        "period_end": datetime(2025, 6, 9, tzinfo=UTC),
        "period_grain": "week",
        "input_params": {"options": {}, "period_grain": "week"},
        "input_fingerprint": f"{n:064x}",
        "status": status,
        "error_message": None,
        "dagster_run_id": None,
    }
    # every row names the same columns (one executemany); only a SUCCEEDED header must say what it knew
    known = knowledge(row["generated_at"]) if status == "SUCCEEDED" else dict.fromkeys(knowledge(G), None)
    return row | known | values


def tid(key: str) -> uuid.UUID:
    return TENANTS[key][0]


RUNS = [  # n = hours after G; listed newest first: 4, 5 (same instant: by run_id), 3, 2, 1, 0
    run_row(0, GONE, "win_loss", "FAILED", error_message="tenant gone"),
    run_row(
        1,
        tid("acme"),
        "pipeline_overview",
        "SUCCEEDED",
        input_params={"options": OPTIONS, "period_grain": "week"},
    ),
    run_row(2, tid("acme"), "win_loss", "FAILED", error_message=LONG_ERROR, dagster_run_id=DAGSTER_RUN),
    run_row(3, tid("beta_1"), "pipeline_overview", "SUCCEEDED", period_start=None, period_grain="unbounded"),
    run_row(4, tid("gamma"), "deal_velocity", "FAILED", error_message="short\nerror"),
    run_row(
        4,
        tid("acme"),
        "pipeline_overview",
        "SUCCEEDED",
        run_id=uuid.UUID(int=0x105),
        input_params={"options": {}, "period_grain": "week", "so_far": True},  # a so-far run
    ),
]
NEWEST_FIRST = [0x104, 0x105, 0x103, 0x102, 0x101, 0x100]


@pytest.fixture(scope="module")
def loaded(engine) -> None:
    with engine.begin() as conn:
        conn.execute(
            insert(tenant),
            [
                {"tenant_id": t, "name": name, "created_at": created} | calendar_of(key)
                for key, (t, name, created) in TENANTS.items()
                if key in CALENDARS
            ],
        )
        conn.execute(  # the calendar columns left to their defaults
            insert(tenant),
            [
                {"tenant_id": t, "name": name, "created_at": created}
                for key, (t, name, created) in TENANTS.items()
                if key not in CALENDARS
            ],
        )
        conn.execute(insert(report_run), RUNS)


@pytest.fixture(scope="module")
def empty_env(database_factory) -> dict[str, str]:
    """A migrated database with no tenant and no run."""
    url = database_factory("listing_empty")
    engine = create_engine(url)
    try:
        migrate.upgrade(engine)
    finally:
        engine.dispose()
    return {**os.environ, "DYNO_DATABASE_URL": url.render_as_string(hide_password=False)}


def listed_ids(env: dict[str, str], *args: str) -> list[int]:
    done = dyno(env, "runs", "list", "--json", *args)
    assert done.returncode == 0, done.stderr
    assert done.stdout.count("\n") == 1
    return [uuid.UUID(run["run_id"]).int for run in json.loads(done.stdout)]


def run_count(engine) -> int:
    with engine.connect() as conn:
        return conn.execute(select(func.count()).select_from(report_run)).scalar_one()


# --- tenants -------------------------------------------------------------------


def test_tenants_text_is_a_table_by_name_then_id(cli_env, loaded):
    done = dyno(cli_env, "tenants")

    assert done.returncode == 0, done.stderr
    header, rule, *rows = done.stdout.splitlines()
    assert header.split() == ["tenant_id", "name", "created_at", *CALENDAR_COLUMNS] and set(rule) == {"-", " "}
    assert len(rows) == len(TENANTS)
    for row, key in zip(rows, BY_NAME, strict=True):
        tenant_id, name, created = TENANTS[key]
        assert row.startswith(f"{tenant_id}  {name}  ")
        assert row.split()[-5:] == [created.isoformat(), *map(str, calendar_of(key).values())]
    assert rows[2].split()[-5] == "2024-02-01T12:30:00+00:00"
    assert rows[-1].split()[-4:] == ["America/Los_Angeles", "7", "2", "end"]


def test_tenants_json_is_one_array_on_one_line(cli_env, loaded):
    done = dyno(cli_env, "tenants", "--json")

    assert done.returncode == 0, done.stderr
    assert done.stdout.count("\n") == 1
    assert json.loads(done.stdout) == [
        {"tenant_id": str(TENANTS[k][0]), "name": TENANTS[k][1], "created_at": TENANTS[k][2].isoformat()}
        | calendar_of(k)
        for k in BY_NAME
    ]


def test_no_tenants_yet(empty_env):
    text = dyno(empty_env, "tenants")
    as_json = dyno(empty_env, "tenants", "--json")
    runs = dyno(empty_env, "runs", "list")

    assert text.returncode == 0 and text.stdout == (
        "no tenants yet: `dyno-reports seed` or `dyno-reports demo` creates some\n"
    )
    assert as_json.returncode == 0 and as_json.stdout == "[]\n"
    assert runs.returncode == 0 and runs.stdout == (
        "no report runs yet: `dyno-reports run` or `dyno-reports demo` makes some\n"
    )


# --- the unknown tenant's error --------------------------------------------------

UNKNOWN_TENANT_COMMANDS = {
    "run": ["run", "pipeline_overview", "--tenant", str(UNKNOWN), "--period-end", "2025-06-09"],
    "trend": ["trend", "pipeline_overview", "--tenant", str(UNKNOWN), "--metric", "deal_count"],
    "runs list": ["runs", "list", "--tenant", str(UNKNOWN)],
}


@pytest.mark.parametrize("command", sorted(UNKNOWN_TENANT_COMMANDS))
def test_unknown_tenant_error_names_the_first_three_tenants_by_name(cli_env, engine, loaded, command):
    before = run_count(engine)

    done = dyno(cli_env, *UNKNOWN_TENANT_COMMANDS[command])

    named = f"{shown(LONG_NAME, 40)} ({tid('long')}), 'Acme' ({tid('acme')}), 'Beta' ({tid('beta_1')})"
    assert done.returncode == 2, done.stderr
    assert done.stderr == (
        f"error: unknown tenant {UNKNOWN} (not in crm.tenant); known: {named} and 2 more: "
        "`dyno-reports tenants` lists them\n"
    )
    assert len(done.stderr) - 1 < ERROR_LINE_LIMIT and done.stdout == ""
    assert run_count(engine) == before


@pytest.mark.parametrize("command", sorted(UNKNOWN_TENANT_COMMANDS))
def test_unknown_tenant_error_without_any_tenant_says_how_to_load_some(empty_env, command):
    done = dyno(empty_env, *UNKNOWN_TENANT_COMMANDS[command])

    assert done.returncode == 2
    assert done.stderr == (
        f"error: unknown tenant {UNKNOWN} (not in crm.tenant); there are no tenants yet: "
        "`dyno-reports seed` loads demo data\n"
    )


# --- runs list -------------------------------------------------------------------


def test_runs_list_json_has_every_field_newest_first(cli_env, loaded):
    done = dyno(cli_env, "runs", "list", "--json")

    assert done.returncode == 0, done.stderr
    runs = json.loads(done.stdout)
    assert [uuid.UUID(r["run_id"]).int for r in runs] == NEWEST_FIRST
    by_id = {uuid.UUID(r["run_id"]).int: r for r in runs}
    assert by_id[0x102] == {
        "run_id": str(uuid.UUID(int=0x102)),
        "generated_at": "2025-07-01T02:00:00+00:00",
        "report_type": "win_loss",
        "tenant_id": str(tid("acme")),
        "tenant_name": "Acme",
        "period_start": "2025-06-02T00:00:00+00:00",
        "period_end": "2025-06-09T00:00:00+00:00",
        "period_grain": "week",
        "status": "FAILED",
        "error_message": LONG_ERROR,
        "dagster_run_id": DAGSTER_RUN,
        "input_fingerprint": f"{2:064x}",
        "options": {},
        "so_far": False,
    }
    assert by_id[0x105]["so_far"] is True
    assert by_id[0x101]["options"] == OPTIONS and by_id[0x101]["error_message"] is None
    assert by_id[0x103]["period_start"] is None and by_id[0x103]["period_grain"] == "unbounded"
    assert by_id[0x100]["tenant_id"] == str(GONE) and by_id[0x100]["tenant_name"] is None


def test_runs_list_text_table_then_the_count_and_the_hint(cli_env, loaded):
    done = dyno(cli_env, "runs", "list")

    assert done.returncode == 0, done.stderr
    header, _rule, *rows, blank, count, hint = done.stdout.splitlines()
    cells = {uuid.UUID(row.split()[0]).int: re.split(r"\s{2,}", row) for row in rows}
    assert re.split(r"\s{2,}", header) == [
        "run_id",
        "generated (UTC)",
        "report",
        "tenant",
        "period",
        "grain",
        "status",
        "source",
        "error",
    ]
    assert [uuid.UUID(row.split()[0]).int for row in rows] == NEWEST_FIRST
    acme = f"Acme ({str(tid('acme'))[:8]})"
    assert cells[0x102] == [
        str(uuid.UUID(int=0x102)),
        "2025-07-01 02:00:00",
        "win_loss",
        acme,
        "[2025-06-02, 2025-06-09)",
        "week",
        "FAILED",
        f"dagster {DAGSTER_RUN[:8]}",
        LONG_ERROR[:57] + "...",
    ]
    assert cells[0x101][3:] == [acme, "[2025-06-02, 2025-06-09)", "week", "SUCCEEDED", "cli"]  # no error
    assert cells[0x105][6] == "SUCCEEDED (so far)"
    assert cells[0x103][3:6] == [f"Beta ({str(tid('beta_1'))[:8]})", "[-inf, 2025-06-09)", "unbounded"]
    assert cells[0x104][-1] == "short error"
    assert cells[0x100][3] == f"{str(GONE)[:8]} (not in crm.tenant)"
    assert (blank, count) == ("", "6 run(s) shown, newest first")
    assert hint == "`dyno-reports show RUN_ID` prints one run with its facts"


FILTERS = {
    "tenant": (["--tenant", str(tid("acme"))], [0x105, 0x102, 0x101]),
    "tenant in upper case": (["--tenant", str(tid("acme")).upper()], [0x105, 0x102, 0x101]),
    "tenant gone from crm.tenant": (["--tenant", str(GONE)], [0x100]),
    "tenant without runs": (["--tenant", str(tid("beta_2"))], []),
    "report": (["--report", "pipeline_overview"], [0x105, 0x103, 0x101]),
    "status in any case": (["--status", "failed"], [0x104, 0x102, 0x100]),
    "status IN_PROGRESS": (["--status", "In_Progress"], []),
    "since a timestamp": (["--since", "2025-07-01T03:00:00Z"], [0x104, 0x105, 0x103]),
    "since with an offset": (["--since", "2025-07-01T03:00:00+02:00"], [0x104, 0x105, 0x103, 0x102, 0x101]),
    "since a date": (["--since", "2025-07-02"], []),
    "all at once": (
        [
            "--tenant",
            str(tid("acme")),
            "--report",
            "pipeline_overview",
            "--status",
            "SUCCEEDED",
            "--since",
            "2025-07-01",
        ],
        [0x105, 0x101],
    ),
}


@pytest.mark.parametrize("case", sorted(FILTERS))
def test_runs_list_filters(cli_env, loaded, case):
    args, expected = FILTERS[case]

    assert listed_ids(cli_env, *args) == expected


def test_runs_list_filtered_to_nothing_says_so(cli_env, loaded):
    done = dyno(cli_env, "runs", "list", "--since", "2025-07-02")

    assert done.returncode == 0 and done.stdout == "no report runs match these filters\n"


def test_limit_keeps_the_newest_and_says_more_exist(cli_env, loaded):
    cut = dyno(cli_env, "runs", "list", "--limit", "2")
    exact = dyno(cli_env, "runs", "list", "--limit", "6")

    cut_lines = cut.stdout.splitlines()
    assert [uuid.UUID(line.split()[0]).int for line in cut_lines[2:4]] == NEWEST_FIRST[:2]
    assert cut_lines[-2] == "2 run(s) shown, newest first; more exist (`--limit` to see more)"
    assert exact.stdout.splitlines()[-2] == "6 run(s) shown, newest first"
    assert listed_ids(cli_env, "--limit", "3") == NEWEST_FIRST[:3]
    assert listed_ids(cli_env, "--tenant", str(tid("acme")), "--limit", "1") == [0x105]


BAD_FILTERS = {
    "malformed tenant": (["--tenant", "acme"], "error: tenant 'acme' is not a UUID like "),
    "unknown report": (["--report", "pipeline"], "error: unknown report 'pipeline' (known: deal_velocity, "),
    "bad status": (["--status", "DONE"], "error: --status 'DONE' is not one of IN_PROGRESS, SUCCEEDED, FAILED"),
    "status not ASCII": (["--status", "\u017fucceeded"], "error: --status '\u017fucceeded' is not one of"),
    "bad since": (["--since", "yesterday"], "error: --since 'yesterday' is not an ISO date or timestamp"),
    "limit 0": (["--limit", "0"], "error: Invalid value for '--limit': 0 is not in the range 1<=x<=10000"),
    "limit too large": (["--limit", "10001"], "error: Invalid value for '--limit': 10001 is not in the range"),
}


@pytest.mark.parametrize("case", sorted(BAD_FILTERS))
@pytest.mark.parametrize("as_json", [False, True])
def test_runs_list_refuses_bad_filters_with_one_line(cli_env, loaded, case, as_json):
    args, message = BAD_FILTERS[case]

    done = dyno(cli_env, "runs", "list", *args, *(["--json"] if as_json else []))

    assert done.returncode == 2 and done.stdout == ""
    assert done.stderr.startswith(message) and done.stderr.count("\n") == 1, done.stderr
