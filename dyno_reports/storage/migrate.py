"""Apply the Alembic migrations programmatically (`dyno-reports db upgrade`)."""

import os
import re
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine

from dyno_reports.errors import ConfigError

MIGRATIONS = Path(__file__).with_name("migrations")
VERSION_SCHEMA = "reporting"

# Migrations touch a schema the live CRM reads and writes: a DDL statement that waits
# for a lock makes every later query on that table queue behind it, so the migration
# gives up after LOCK_TIMEOUT (retry it later) rather than stall the CRM; and no
# statement may run for ever. Set for the migration transaction only (SET LOCAL).
DEFAULT_LOCK_TIMEOUT = "5s"
DEFAULT_STATEMENT_TIMEOUT = "10min"
TIMEOUT_VARIABLES = {
    "lock_timeout": ("DYNO_MIGRATION_LOCK_TIMEOUT", DEFAULT_LOCK_TIMEOUT),
    "statement_timeout": ("DYNO_MIGRATION_STATEMENT_TIMEOUT", DEFAULT_STATEMENT_TIMEOUT),
}
# A PostgreSQL duration: a number with an optional unit (none means milliseconds; 0 disables).
_DURATION = re.compile(r"\d+(\.\d+)?\s*(us|ms|s|min|h|d)?")


def alembic_config() -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    return cfg


def migration_timeouts() -> dict[str, str]:
    """`lock_timeout` and `statement_timeout` for the migration transaction, read when a migration runs:
    `DYNO_MIGRATION_LOCK_TIMEOUT` (default 5s) and `DYNO_MIGRATION_STATEMENT_TIMEOUT` (default 10min)."""
    timeouts = {}
    for setting, (variable, default) in TIMEOUT_VARIABLES.items():
        value = (os.environ.get(variable) or default).strip()
        if not _DURATION.fullmatch(value):
            raise ConfigError(
                f"{variable} must be a PostgreSQL duration such as 5s, 500ms, 10min or 0 (no limit), got {value!r}"
            )
        timeouts[setting] = value
    return timeouts


def upgrade(engine: Engine, revision: str = "head") -> str | None:
    """Bring the database to `revision`; returns the revision it is at afterwards."""
    cfg = alembic_config()
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, revision)
    return current_revision(engine)


def downgrade(engine: Engine, revision: str) -> str | None:
    cfg = alembic_config()
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.downgrade(cfg, revision)
    return current_revision(engine)


def current_revision(engine: Engine) -> str | None:
    with engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"version_table_schema": VERSION_SCHEMA})
        return context.get_current_revision()


def head_revision() -> str | None:
    return ScriptDirectory.from_config(alembic_config()).get_current_head()


def require_head(engine: Engine) -> None:
    """Refuse to work on a database that is not migrated to the code's head revision."""
    current, head = current_revision(engine), head_revision()
    if current != head:
        raise ConfigError(
            f"the database is at migration {current or 'none'}, this code needs {head}: run `dyno-reports db upgrade`"
        )
