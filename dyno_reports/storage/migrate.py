"""Apply the Alembic migrations programmatically (`dyno-reports db upgrade`), and check a database is at head.

Alembic is imported only by the functions that migrate: `require_head`, on every command's path, reads
the one row of the version table and compares it with `code_head_revision()`, which takes the head from
the revision files' names (`NNNN_<what>.py`, revision `NNNN`, each revising the one before; a test holds
every file to that and the result to Alembic's own script head) instead of parsing the scripts.
"""

import os
import re
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import Connection, Engine, text
from sqlalchemy.exc import ProgrammingError

from dyno_reports.core.errors import ConfigError

if TYPE_CHECKING:
    from alembic.config import Config

MIGRATIONS = Path(__file__).with_name("migrations")
VERSION_SCHEMA = "reporting"
VERSION_TABLE = "alembic_version"
# A revision file: its revision id is its 4-digit prefix.
REVISION_FILE = re.compile(r"(\d{4})_\w+\.py")

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


def alembic_config() -> "Config":
    from alembic.config import Config

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
    from alembic import command

    cfg = alembic_config()
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, revision)
    return current_revision(engine)


def downgrade(engine: Engine, revision: str) -> str | None:
    from alembic import command

    cfg = alembic_config()
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.downgrade(cfg, revision)
    return current_revision(engine)


def current_revision(engine: Engine) -> str | None:
    from alembic.runtime.migration import MigrationContext

    with engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"version_table_schema": VERSION_SCHEMA})
        return context.get_current_revision()


def head_revision() -> str | None:
    """Alembic's head of the migration scripts (parses every script: for migrating and tests)."""
    from alembic.script import ScriptDirectory

    return ScriptDirectory.from_config(alembic_config()).get_current_head()


def code_head_revision() -> str | None:
    """The head revision this code needs, from the revision files' names alone (no script is parsed)."""
    revisions = [m.group(1) for m in map(REVISION_FILE.fullmatch, os.listdir(MIGRATIONS / "versions")) if m]
    return max(revisions, default=None)


def database_revision(conn: Connection) -> str | None:
    """The revision in the database's version table (one row), None when it has none yet (the connection's
    transaction is then rolled back: the failed query aborted it)."""
    try:
        return conn.execute(text(f"SELECT version_num FROM {VERSION_SCHEMA}.{VERSION_TABLE}")).scalar_one_or_none()
    except ProgrammingError:  # no version table: never migrated
        conn.rollback()
        return None


def require_head(bind: Engine | Connection) -> None:
    """Refuse to work on a database that is not migrated to the code's head revision (one query)."""
    if isinstance(bind, Engine):
        with bind.connect() as conn:
            return require_head(conn)
    current, head = database_revision(bind), code_head_revision()
    if current != head:
        raise ConfigError(
            f"the database is at migration {current or 'none'}, this code needs {head}: run `dyno-reports db upgrade`"
        )
    return None
