"""Alembic environment: runs on the connection that `dyno_reports.storage.migrate` hands over."""

from alembic import context

from dyno_reports.storage.migrate import VERSION_SCHEMA
from dyno_reports.storage.tables import metadata

# Any number of processes may call `db upgrade` at once (CLI, Dagster, tests):
# one transaction-scoped advisory lock serialises them.
MIGRATION_LOCK_KEY = 727_110_001

connection = context.config.attributes["connection"]
connection.exec_driver_sql(f"SELECT pg_advisory_xact_lock({MIGRATION_LOCK_KEY})")
connection.exec_driver_sql(f"CREATE SCHEMA IF NOT EXISTS {VERSION_SCHEMA}")
context.configure(
    connection=connection,
    target_metadata=metadata,
    version_table_schema=VERSION_SCHEMA,
    transactional_ddl=True,
)
with context.begin_transaction():
    context.run_migrations()
