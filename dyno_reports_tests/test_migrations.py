"""Alembic migrations (real PostgreSQL): up from empty, down and up again, frozen revisions,
the migration transaction's timeouts, the tenant calendar's columns and checks (0009), weighted_pipeline's
close_quarter (0010), and
`dyno-reports db check` (drift against tables.py)."""

import ast
import os
import subprocess
import sys
import uuid
import zoneinfo
from datetime import date

import pytest
from alembic import command
from sqlalchemy import create_engine, event, select, text
from sqlalchemy.exc import IntegrityError

from dyno_reports.core import local_time
from dyno_reports.core.errors import ConfigError
from dyno_reports.reports import registry
from dyno_reports.storage import drift, migrate, tables

VERSIONS = migrate.MIGRATIONS / "versions"
# What a frozen revision may import: Alembic's op and SQLAlchemy, never the project's code.
FROZEN_IMPORTS = {"alembic", "sqlalchemy"}


def test_upgrade_from_empty_downgrade_and_upgrade_again(database_factory):
    engine = create_engine(database_factory("migrations"))
    try:
        assert migrate.current_revision(engine) is None
        assert migrate.upgrade(engine) == migrate.head_revision()
        assert migrate.upgrade(engine) == migrate.head_revision()  # idempotent
        assert migrate.downgrade(engine, "base") is None
        with engine.connect() as conn:
            schemas = set(conn.exec_driver_sql("SELECT nspname FROM pg_namespace").scalars())
        assert "crm" not in schemas
        assert migrate.upgrade(engine) == migrate.head_revision()
    finally:
        engine.dispose()


def test_migrated_schema_matches_the_metadata_module(engine):
    assert drift.check(engine) == []


def test_every_registered_report_is_a_known_report_type_with_its_fact_table(engine):
    with engine.connect() as conn:
        known = dict(conn.execute(select(tables.report_type.c.report_type, tables.report_type.c.fact_table)).all())
    assert known == {name: report.fact_table.name for name, report in registry().items()}


def test_upgrade_keeps_a_crm_schema_the_crm_already_owns(database_factory):
    """In production the CRM's tables exist first: upgrade adopts them, downgrade leaves them."""
    engine = create_engine(database_factory("crm_owned"))
    try:
        with engine.begin() as conn:
            conn.exec_driver_sql("CREATE SCHEMA crm")
            conn.exec_driver_sql(
                "CREATE TABLE crm.tenant (tenant_id uuid PRIMARY KEY, name text NOT NULL,"
                " created_at timestamptz NOT NULL DEFAULT now())"
            )
            conn.exec_driver_sql("INSERT INTO crm.tenant (tenant_id, name) VALUES (gen_random_uuid(), 'existing')")
        assert migrate.upgrade(engine) == migrate.head_revision()
        migrate.downgrade(engine, "base")
        with engine.connect() as conn:
            assert conn.exec_driver_sql("SELECT name FROM crm.tenant").scalars().all() == ["existing"]
    finally:
        engine.dispose()


def latest_views(engine) -> dict[str, tuple]:
    """Each view of `reporting` as the catalog has it: definition, options, comment, grants."""
    query = (
        "SELECT c.relname, pg_get_viewdef(c.oid), c.reloptions, obj_description(c.oid, 'pg_class'), c.relacl"
        " FROM pg_class c WHERE c.relnamespace = 'reporting'::regnamespace AND c.relkind = 'v'"
    )
    with engine.connect() as conn:
        return {name: tuple(rest) for name, *rest in conn.exec_driver_sql(query)}


def test_0007_adds_so_far_to_the_latest_views_and_its_downgrade_restores_0005s(database_factory):
    engine = create_engine(database_factory("latest_views"))
    try:
        migrate.upgrade(engine, "0006")
        before = latest_views(engine)
        migrate.upgrade(engine, "0007")
        after = latest_views(engine)
        migrate.downgrade(engine, "0006")
        assert latest_views(engine) == before
    finally:
        engine.dispose()
    assert len(before) == len(registry()) + 1 and set(after) == set(before)
    for name, (definition, options, _comment, grants) in after.items():
        assert "so_far" in definition and "so_far" not in before[name][0], name
        assert (options, grants) == (["security_invoker=true"], before[name][3]), name
    assert after["report_run_latest"][2] != before["report_run_latest"][2]  # the comment says what it picks


def prune_function(engine) -> tuple[str, str]:
    """The definition and comment of reporting.prune_report_runs."""
    statement = text(
        "SELECT pg_get_functiondef(p.oid), obj_description(p.oid, 'pg_proc') FROM pg_proc p"
        " WHERE p.oid = 'reporting.prune_report_runs(integer, boolean, uuid, text)'::regprocedure"
    )
    with engine.connect() as conn:
        row = conn.execute(statement).one()
    return row[0], row[1]


def test_0008_indexes_cli_runs_and_its_downgrade_restores_0003s_prune(database_factory):
    engine = create_engine(database_factory("prune_final"))
    try:
        migrate.upgrade(engine, "0007")
        before = prune_function(engine)
        migrate.upgrade(engine, "0008")
        after = prune_function(engine)
        with engine.connect() as conn:
            index = conn.execute(text("SELECT to_regclass('reporting.ix_report_run_cli_runs')")).scalar_one()
        migrate.downgrade(engine, "0007")
        assert prune_function(engine) == before
        with engine.connect() as conn:
            assert conn.execute(text("SELECT to_regclass('reporting.ix_report_run_cli_runs')")).scalar_one() is None
    finally:
        engine.dispose()
    assert index is not None
    assert "so_far" in after[0] and "so_far" not in before[0]
    assert "report_run_latest shows" in after[1] and "newest SUCCEEDED" in before[1]


# --- 0009: the tenant's calendar -------------------------------------------------

TENANT_CALENDAR = ("time_zone", "week_start", "fiscal_year_start_month", "fiscal_year_named_by")


def tenant_columns(engine) -> dict[str, tuple]:
    """crm.tenant's columns: name -> (type, nullable, default)."""
    query = (
        "SELECT column_name, data_type, is_nullable, column_default FROM information_schema.columns"
        " WHERE table_schema = 'crm' AND table_name = 'tenant'"
    )
    with engine.connect() as conn:
        return {name: tuple(rest) for name, *rest in conn.exec_driver_sql(query)}


def insert_tenant(conn, **calendar) -> None:
    columns = ", ".join(("tenant_id", "name", *calendar))
    values = ", ".join(("gen_random_uuid()", "'t'", *(f":{key}" for key in calendar)))
    conn.execute(text(f"INSERT INTO crm.tenant ({columns}) VALUES ({values})"), calendar)


@pytest.mark.parametrize(
    "calendar",
    [
        {"time_zone": "Mars/Olympus"},  # no such zone
        {"time_zone": "+05"},  # an offset PostgreSQL reads as a POSIX rule
        {"time_zone": "EST5EDT,M3.2.0,M11.1.0"},  # a POSIX rule
        {"time_zone": "UTC+3"},
        {"time_zone": "PST"},  # an abbreviation PostgreSQL knows, not a zone
        {"time_zone": "europe/paris"},  # PostgreSQL finds zone files in any case; zoneinfo does not
        {"time_zone": "posix/Europe/Paris"},
        {"time_zone": "localtime"},
        {"time_zone": ""},
        {"week_start": 0},
        {"week_start": 8},
        {"fiscal_year_start_month": 13},
        {"fiscal_year_named_by": "middle"},
    ],
)
def test_the_database_refuses_a_bad_tenant_calendar(engine, calendar):
    with engine.connect() as conn, pytest.raises(IntegrityError, match="violates check constraint"):
        insert_tenant(conn, **calendar)


def test_the_database_takes_real_zones_and_gives_existing_tenants_the_default_calendar(engine):
    with engine.connect() as conn:
        insert_tenant(conn)
        insert_tenant(conn, time_zone="Australia/Sydney", week_start=7, fiscal_year_start_month=7)
        insert_tenant(conn, time_zone="EST5EDT", fiscal_year_named_by="start")  # a legacy tzdata name
        rows = conn.execute(text(f"SELECT {', '.join(TENANT_CALENDAR)} FROM crm.tenant ORDER BY time_zone")).all()
        conn.rollback()
    assert [tuple(row) for row in rows] == [
        ("Australia/Sydney", 7, 7, "end"),
        ("EST5EDT", 1, 1, "start"),
        ("UTC", 1, 1, "end"),
    ]


def accepted_by_the_database(engine, names: list[str]) -> set[str]:
    with engine.connect() as conn:
        checked = conn.execute(
            text("SELECT n, reporting.is_time_zone_name(n) FROM unnest(CAST(:names AS text[])) n"), {"names": names}
        )
        return {name for name, ok in checked if ok}


def test_the_zone_check_accepts_the_zones_python_and_postgresql_both_know(engine):
    """With a '/', every name either side lists; without one (a slow lookup each), a sample."""
    with engine.connect() as conn:
        server = set(conn.exec_driver_sql("SELECT name FROM pg_timezone_names").scalars())
    python = set(zoneinfo.available_timezones())
    slashed = sorted(name for name in server | python if "/" in name)
    legacy = ["UTC", "EST5EDT", "Cuba", "Zulu", "GMT0", "Factory", "PST", "localtime", "posixrules", "EST5EDT2"]
    accepted = accepted_by_the_database(engine, slashed + legacy)
    assert accepted == {name for name in slashed + legacy if name in server and local_time.is_zone_name(name)}
    assert {name for name in accepted if name in python} == {
        name for name in local_time.known_zone_names() if name in server and name in slashed + legacy
    }


def test_a_crm_role_without_rights_on_reporting_inserts_tenants(engine):
    with engine.connect() as conn:
        conn.exec_driver_sql("CREATE ROLE crm_app_0009")
        conn.exec_driver_sql("GRANT USAGE ON SCHEMA crm TO crm_app_0009")
        conn.exec_driver_sql("GRANT INSERT ON crm.tenant TO crm_app_0009")
        conn.exec_driver_sql("SET LOCAL ROLE crm_app_0009")
        insert_tenant(conn, time_zone="Asia/Kathmandu")
        with pytest.raises(IntegrityError, match="tenant_time_zone_check"):
            insert_tenant(conn, time_zone="Asia/Kathmandoo")
        conn.rollback()


def test_0009_adds_the_calendar_and_its_downgrade_removes_it(database_factory):
    engine = create_engine(database_factory("tenant_calendar"))
    try:
        migrate.upgrade(engine, "0008")
        before = tenant_columns(engine)
        with engine.begin() as conn:
            conn.exec_driver_sql("INSERT INTO crm.tenant (tenant_id, name) VALUES (gen_random_uuid(), 'existing')")
        migrate.upgrade(engine, "0009")
        after = tenant_columns(engine)
        with engine.connect() as conn:
            existing = conn.execute(text(f"SELECT {', '.join(TENANT_CALENDAR)} FROM crm.tenant")).one()
        migrate.downgrade(engine, "0008")
        assert tenant_columns(engine) == before
        with engine.connect() as conn:
            assert conn.exec_driver_sql("SELECT to_regproc('reporting.is_time_zone_name')").scalar() is None
    finally:
        engine.dispose()
    assert {name: after[name] for name in after.keys() - before.keys()} == {
        "time_zone": ("text", "NO", "'UTC'::text"),
        "week_start": ("smallint", "NO", "1"),
        "fiscal_year_start_month": ("smallint", "NO", "1"),
        "fiscal_year_named_by": ("text", "NO", "'end'::text"),
    }
    assert tuple(existing) == ("UTC", 1, 1, "end")


def test_0009_keeps_the_calendar_columns_of_a_crm_that_has_them(database_factory):
    """A CRM that owns crm.tenant and has the columns already: kept as they are, no check added, none dropped."""
    engine = create_engine(database_factory("crm_calendar"))
    try:
        with engine.begin() as conn:
            conn.exec_driver_sql("CREATE SCHEMA crm")
            conn.exec_driver_sql(
                "CREATE TABLE crm.tenant (tenant_id uuid PRIMARY KEY, name text NOT NULL,"
                " created_at timestamptz NOT NULL DEFAULT now(), time_zone text NOT NULL DEFAULT 'UTC',"
                " week_start smallint NOT NULL DEFAULT 1, fiscal_year_start_month smallint NOT NULL DEFAULT 1,"
                " fiscal_year_named_by text NOT NULL DEFAULT 'end')"
            )
        owned = tenant_columns(engine)
        migrate.upgrade(engine)
        assert tenant_columns(engine) == owned
        with engine.connect() as conn:
            insert_tenant(conn, time_zone="CRM's own business")  # the CRM's column, the CRM's checks
            conn.commit()
        assert drift.check(engine) == []
        migrate.downgrade(engine, "0008")
        assert tenant_columns(engine) == owned
    finally:
        engine.dispose()


def test_0009_downgrade_in_a_crm_schema_leaves_the_columns_it_added_and_drops_the_zone_check(database_factory):
    engine = create_engine(database_factory("crm_calendar_added"))
    try:
        with engine.begin() as conn:
            conn.exec_driver_sql("CREATE SCHEMA crm")
            conn.exec_driver_sql(
                "CREATE TABLE crm.tenant (tenant_id uuid PRIMARY KEY, name text NOT NULL,"
                " created_at timestamptz NOT NULL DEFAULT now())"
            )
        migrate.upgrade(engine)
        assert set(TENANT_CALENDAR) <= set(tenant_columns(engine))
        migrate.downgrade(engine, "0008")
        assert set(TENANT_CALENDAR) <= set(tenant_columns(engine))
        with engine.connect() as conn:
            insert_tenant(conn, time_zone="Mars/Olympus")  # the check went with its function
            conn.rollback()
    finally:
        engine.dispose()


# --- frozen revisions ----------------------------------------------------------


def imported_modules(source: str) -> set[str]:
    """Every module a Python source imports (relative imports keep their dots), and dynamic import calls."""
    found = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            found.add("." * node.level + (node.module or ""))
        elif isinstance(node, ast.Name) and node.id in ("__import__", "importlib"):
            found.add(node.id)
    return found


# --- 0010: weighted_pipeline's close_quarter --------------------------------------

OLD_RUN = """
INSERT INTO crm.tenant (tenant_id, name) VALUES (:tenant, 't');
INSERT INTO reporting.report_run (run_id, tenant_id, report_type, generated_at, period_start, period_end,
  period_grain, input_params, input_fingerprint, status)
VALUES (:run, :tenant, 'weighted_pipeline', now(), '2025-06-01', '2025-07-01', 'month', '{}', repeat('0', 64),
  'SUCCEEDED');
INSERT INTO reporting.report_weighted_pipeline_fact (run_id, tenant_id, pipeline_id, principal_id, close_month,
  deal_count, total_amount, weighted_amount)
VALUES (:run, :tenant, gen_random_uuid(), gen_random_uuid(), '2025-08-01', 1, 10, 5);
"""


def test_0010_appends_close_quarter_old_runs_have_none_and_its_downgrade_restores_0009s(database_factory):
    engine = create_engine(database_factory("close_quarter"))
    tenant, run = uuid.uuid4(), uuid.uuid4()
    view = "report_weighted_pipeline_latest"
    try:
        migrate.upgrade(engine, "0009")
        before = latest_views(engine)
        with engine.begin() as conn:
            for statement in OLD_RUN.strip().split(";\n"):
                conn.execute(text(statement), {"tenant": tenant, "run": run})
        migrate.upgrade(engine, "0010")
        after = latest_views(engine)
        with engine.connect() as conn:
            shown = conn.execute(text(f"SELECT * FROM reporting.{view} WHERE run_id = :r"), {"r": run}).mappings().one()
        migrate.downgrade(engine, "0009")
        assert latest_views(engine) == before
        with engine.connect() as conn:
            gone = "SELECT to_regclass('reporting.report_weighted_pipeline_fact') IS NOT NULL AND NOT EXISTS ("
            gone += " SELECT FROM information_schema.columns WHERE column_name = 'close_quarter')"
            assert conn.exec_driver_sql(gone).scalar_one()
    finally:
        engine.dispose()
    assert list(shown)[-2:] == ["so_far", "close_quarter"]  # appended: CREATE OR REPLACE VIEW keeps the others
    assert shown["close_month"] == date(2025, 8, 1) and shown["close_quarter"] is None  # a run made before 0010
    assert {name for name in after if after[name] != before[name]} == {view}
    assert after[view][1:] == before[view][1:]  # options, comment and grants kept


def test_no_revision_imports_the_projects_code():
    """A revision is frozen: shared code that changes later cannot change what it does."""
    revisions = sorted(path for path in VERSIONS.glob("*.py") if path.name != "__init__.py")
    assert len(revisions) >= 2
    for path in revisions:
        modules = imported_modules(path.read_text())
        assert "alembic" in modules
        foreign = {m for m in modules if m.split(".")[0] not in FROZEN_IMPORTS}
        assert not foreign, f"{path.name} imports {sorted(foreign)}: inline the SQL it needs"


def test_the_frozen_import_check_sees_project_and_relative_imports():
    source = "from dyno_reports.storage.migrations import ddl\nfrom . import helpers\nimport alembic.op\n"
    assert imported_modules(source) == {"dyno_reports.storage.migrations", ".", "alembic.op"}


# --- the migration transaction's timeouts ----------------------------------------


def settings_seen_by_create_table(engine) -> list[tuple[str, str]]:
    """Records, right after each CREATE TABLE a migration runs, lock_timeout and statement_timeout
    as its own transaction sees them (a raw cursor on the same connection)."""
    seen: list[tuple[str, str]] = []

    @event.listens_for(engine, "after_cursor_execute")
    def probe(conn, cursor, statement, parameters, context, executemany):
        if "CREATE TABLE" in statement:
            raw = cursor.connection.cursor()
            raw.execute("SELECT current_setting('lock_timeout'), current_setting('statement_timeout')")
            seen.append(raw.fetchone())

    return seen


def show_timeouts(engine) -> tuple[str, str]:
    with engine.connect() as conn:
        row = conn.exec_driver_sql("SELECT current_setting('lock_timeout'), current_setting('statement_timeout')")
        return tuple(row.one())


def test_migrations_run_with_lock_and_statement_timeouts(database_factory, monkeypatch):
    monkeypatch.delenv("DYNO_MIGRATION_LOCK_TIMEOUT", raising=False)
    monkeypatch.delenv("DYNO_MIGRATION_STATEMENT_TIMEOUT", raising=False)
    engine = create_engine(database_factory("timeouts"), pool_size=1)
    try:
        before = show_timeouts(engine)
        seen = settings_seen_by_create_table(engine)
        assert migrate.upgrade(engine) == migrate.head_revision()
        assert len(seen) >= 2  # 0001 and 0002 both create tables
        assert set(seen) == {("5s", "10min")}
        assert show_timeouts(engine) == before  # SET LOCAL: gone with the migration transaction
    finally:
        engine.dispose()


def test_migration_timeouts_come_from_the_environment_when_the_migration_runs(engine, monkeypatch):
    monkeypatch.setenv("DYNO_MIGRATION_LOCK_TIMEOUT", "750ms")
    monkeypatch.setenv("DYNO_MIGRATION_STATEMENT_TIMEOUT", "2min")
    with engine.begin() as conn:  # env.py runs inside this transaction: read its settings there
        cfg = migrate.alembic_config()
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "head")
        settings = conn.exec_driver_sql("SELECT current_setting('lock_timeout'), current_setting('statement_timeout')")
        assert tuple(settings.one()) == ("750ms", "2min")


@pytest.mark.parametrize("variable", ["DYNO_MIGRATION_LOCK_TIMEOUT", "DYNO_MIGRATION_STATEMENT_TIMEOUT"])
def test_a_malformed_migration_timeout_is_refused_before_anything_runs(database_factory, monkeypatch, variable):
    monkeypatch.setenv(variable, "5 seconds")
    engine = create_engine(database_factory("bad_timeout"))
    try:
        with pytest.raises(ConfigError, match=variable):
            migrate.upgrade(engine)
        assert migrate.current_revision(engine) is None
    finally:
        engine.dispose()


# --- dyno-reports db check --------------------------------------------------------


def dyno(url, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "DYNO_DATABASE_URL": url.render_as_string(hide_password=False)}
    return subprocess.run(
        [sys.executable, "-m", "dyno_reports.cli.main", *args], env=env, capture_output=True, text=True, timeout=120
    )


def test_db_check_says_no_drift_after_upgrade(database_url):
    done = dyno(database_url, "db", "check")
    assert (done.returncode, done.stdout, done.stderr) == (0, "no drift\n", "")


def test_db_check_names_a_column_added_out_of_band(database_factory):
    url = database_factory("drift_cli")
    engine = create_engine(url)
    try:
        migrate.upgrade(engine)
        with engine.begin() as conn:
            conn.exec_driver_sql("ALTER TABLE reporting.report_run ADD COLUMN x int")
    finally:
        engine.dispose()
    done = dyno(url, "db", "check")
    assert done.returncode == 1
    assert done.stdout.splitlines() == [
        "remove_column reporting.report_run.x: INTEGER in the database, not in the models"
    ]
    assert done.stderr == "error: 1 difference(s) between the models (storage/tables.py) and the database\n"


def test_db_check_on_a_database_behind_the_migrations(database_factory):
    url = database_factory("drift_behind")
    engine = create_engine(url)
    try:
        migrate.upgrade(engine, "0001")
    finally:
        engine.dispose()
    done = dyno(url, "db", "check")
    assert done.returncode == 1
    assert done.stdout.splitlines() == [
        f"revision reporting.alembic_version: database at 0001, migrations at {migrate.head_revision()}"
        " (run `dyno-reports db upgrade`)"
    ]


OUT_OF_BAND = {
    "reporting: a table the models lack": (
        "CREATE TABLE reporting.stray (i int)",
        ["remove_table reporting.stray: in the database, not in the models"],
    ),
    "reporting: a changed type": (  # of a column no view reads (the latest views pin report_run's and the facts')
        "ALTER TABLE reporting.report_type ALTER COLUMN fact_table TYPE varchar(64)",
        ["modify_type reporting.report_type.fact_table: VARCHAR(64) in the database, TEXT in the models"],
    ),
    "reporting: a dropped default": (
        "ALTER TABLE reporting.report_run ALTER COLUMN generated_at DROP DEFAULT",
        ["modify_default reporting.report_run.generated_at: no default in the database, DEFAULT now() in the models"],
    ),
    "reporting: nullability": (
        "ALTER TABLE reporting.report_run ALTER COLUMN dagster_run_id SET NOT NULL",
        ["modify_nullable reporting.report_run.dagster_run_id: NOT NULL in the database, NULL in the models"],
    ),
    "reporting: an extra index": (
        "CREATE INDEX ix_stray ON reporting.report_run (status)",
        ["remove_index reporting.report_run: index ix_stray (status) in the database, not in the models"],
    ),
    "reporting: a dropped CHECK constraint (autogenerate cannot see it)": (
        "ALTER TABLE reporting.report_win_loss_fact DROP CONSTRAINT ck_report_win_loss_fact_won_count",
        [
            "add_check_constraint reporting.report_win_loss_fact: ck_report_win_loss_fact_won_count"
            " in the models, not in the database"
        ],
    ),
    "reporting: a dropped guard trigger": (
        "DROP TRIGGER facts_need_succeeded_run ON reporting.report_deal_velocity_fact",
        [
            "add_trigger reporting.report_deal_velocity_fact: facts_need_succeeded_run"
            " in the models, not in the database"
        ],
    ),
    "reporting: a disabled guard trigger": (
        "ALTER TABLE reporting.report_run DISABLE TRIGGER report_run_status_is_final",
        [
            "enable_trigger reporting.report_run: report_run_status_is_final"
            " is disabled in the database, enabled in the models"
        ],
    ),
    "crm: a contract column gone": (
        "ALTER TABLE crm.deal_history DROP COLUMN is_deleted",
        ["add_column crm.deal_history.is_deleted: BOOLEAN in the models, not in the database"],
    ),
    "crm: a contract type changed": (
        "ALTER TABLE crm.stage ALTER COLUMN name TYPE varchar(40)",
        ["modify_type crm.stage.name: VARCHAR(40) in the database, TEXT in the models"],
    ),
    "crm: the CRM's own additions are not drift": (
        "ALTER TABLE crm.deal ADD COLUMN source text; CREATE INDEX ix_deal_source ON crm.deal (source);"
        " CREATE TABLE crm.activity (tenant_id uuid REFERENCES crm.tenant, activity_id uuid PRIMARY KEY);"
        " ALTER TABLE crm.deal ADD CONSTRAINT deal_name_unique UNIQUE (tenant_id, name);"
        " ALTER TABLE crm.deal ADD COLUMN owner uuid, ADD FOREIGN KEY (tenant_id, owner) REFERENCES crm.principal",
        [],
    ),
}


@pytest.mark.parametrize("change", OUT_OF_BAND, ids=list(OUT_OF_BAND))
def test_db_check_differences_after_an_out_of_band_change(engine, change):
    ddl, expected = OUT_OF_BAND[change]
    with engine.connect() as conn:  # the change and the comparison in one transaction, rolled back
        conn.exec_driver_sql(ddl)
        assert [str(d) for d in drift.differences(conn)] == expected
        conn.rollback()
    assert drift.check(engine) == []
