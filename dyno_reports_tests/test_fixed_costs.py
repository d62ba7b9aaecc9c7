"""What `dyno-reports run` loads and asks before its SQL: imports (subprocesses running a report on real
PostgreSQL), the schema check (real PostgreSQL for the database side, no DB for the revision files)."""

import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import create_engine

from dyno_reports.core.errors import ConfigError
from dyno_reports.storage import db, migrate
from dyno_reports_tests.support.history import DEAL_IDS, PIPELINE_IDS, T0, TenantData, load


def loaded_modules(code: str, env: dict[str, str] | None = None) -> list[str]:
    """The modules a fresh interpreter holds after `code` (which may print lines of its own before)."""
    script = f"{code}\nimport sys\nprint('MODULES', *sorted(sys.modules))"
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env, timeout=120)
    assert done.returncode == 0, done.stderr
    (line,) = [line for line in done.stdout.splitlines() if line.startswith("MODULES ")]
    return line.split()[1:]


def test_the_head_from_file_names_is_alembics_head():
    assert migrate.code_head_revision() == migrate.head_revision() is not None


def test_every_revision_file_is_named_by_its_revision_and_revises_the_one_before():
    from alembic.script import ScriptDirectory

    revisions = list(ScriptDirectory.from_config(migrate.alembic_config()).walk_revisions())
    for revision in revisions:
        assert revision.path is not None and Path(revision.path).name.startswith(f"{revision.revision}_")
        assert migrate.REVISION_FILE.fullmatch(Path(revision.path).name)
        expected_down = None if revision.revision == "0001" else f"{int(revision.revision) - 1:04d}"
        assert revision.down_revision == expected_down, revision.path


def test_require_head_reads_the_version_row_and_refuses_other_revisions(database_factory, database_url):
    empty = create_engine(database_factory("fixed_costs_empty"))
    at_head = create_engine(database_url)
    try:
        with pytest.raises(ConfigError, match=r"the database is at migration none, this code needs \d{4}"):
            migrate.require_head(empty)
        migrate.require_head(at_head)
        with at_head.connect() as conn:
            migrate.require_head(conn)
            assert migrate.database_revision(conn) == migrate.code_head_revision()
    finally:
        empty.dispose()
        at_head.dispose()


def test_get_report_imports_that_report_alone():
    modules = loaded_modules("from dyno_reports.reports import get_report\nget_report('win_loss')")
    assert [m for m in modules if m.endswith("_executor")] == ["dyno_reports.reports.win_loss.win_loss_executor"]


def run_code(engine, report: str, *options: str) -> str:
    """Python code running `dyno-reports run REPORT [OPTIONS]` in process on a new one-deal tenant, checking it
    succeeded (each piece of code made here gets its own tenant)."""
    data = TenantData()
    lead, *_ = data.add_pipeline(PIPELINE_IDS[0], ["open", "won", "lost"])
    data.add_deal(DEAL_IDS[0], [(T0, lead, 10)])
    load(engine, data)
    end = (T0 + timedelta(days=7)).isoformat()
    args = ["run", report, "--tenant", str(data.tenant_id), "--period-start", T0.isoformat(), "--period-end", end]
    code = "\n".join(["from dyno_reports.cli import main as cli", "try:", f"    cli.main({[*args, *options]!r})"])
    return code + "\nexcept SystemExit as exc:\n    assert not exc.code, exc.code\n"


def run_command_modules(engine, cli_env, report: str, *options: str) -> list[str]:
    """The modules a fresh interpreter holds after `dyno-reports run REPORT [OPTIONS]` succeeded in it."""
    modules = loaded_modules(run_code(engine, report, *options), cli_env)
    assert "dyno_reports.engine.executor" in modules  # the run did happen in that process
    return modules


def packages(modules: list[str]) -> set[str]:
    return {m.split(".")[0] for m in modules}


@pytest.mark.parametrize("options", [(), ("--options", "{}")], ids=["no options", "empty options"])
def test_a_run_without_options_loads_neither_alembic_nor_dagster_nor_pydantic(engine, cli_env, options):
    modules = run_command_modules(engine, cli_env, "pipeline_overview", *options)
    assert not packages(modules) & {"alembic", "dagster", "pydantic", "pydantic_core"}
    assert "dyno_reports.reports.options" not in modules


def test_a_run_with_options_validates_them_with_the_pydantic_model(engine, cli_env):
    modules = run_command_modules(engine, cli_env, "pipeline_overview", "--options", '{"include_closed": true}')
    assert "pydantic" in packages(modules) and "dyno_reports.reports.options" in modules
    assert not packages(modules) & {"alembic", "dagster"}


def test_the_run_freezes_its_startup_objects_once_and_leaves_the_gc_on(engine, cli_env):
    """The run's imports load with the cyclic GC paused and are frozen after (run_process.imports_without_gc), once:
    a second run in the same process (as in tests) freezes nothing more."""
    probe = "import gc\nprint('GC', gc.isenabled(), gc.get_freeze_count())\n"
    code = run_code(engine, "win_loss") + probe + run_code(engine, "win_loss") + probe
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=cli_env, timeout=120)
    assert done.returncode == 0, done.stderr
    first, second = [line.split()[1:] for line in done.stdout.splitlines() if line.startswith("GC ")]
    assert first[0] == "True" and int(first[1]) > 10_000  # SQLAlchemy alone is some 100k objects
    assert second[0] == "True" and int(second[1]) <= int(first[1])  # frozen objects may be freed, none added


def test_the_engine_looks_up_no_hstore_type_on_first_connect(database_factory):
    """SQLAlchemy's psycopg dialect would fetch hstore's type info on an engine's first connect (one more
    round trip per process); nothing here reads hstore, so it comes back as text even where it is installed."""
    url = database_factory("fixed_costs_hstore")
    admin = create_engine(url, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.exec_driver_sql("CREATE EXTENSION hstore")
    finally:
        admin.dispose()
    engine = db.engine_for(url.render_as_string(hide_password=False))
    try:
        with db.connect(engine) as conn:
            assert conn.exec_driver_sql("SELECT 'a=>1'::hstore").scalar_one() == '"a"=>"1"'
    finally:
        engine.dispose()
