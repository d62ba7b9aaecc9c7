"""Dagster's PostgreSQL storage with a connection kept open per process (dagster.yaml's `storage: custom`).

`dagster-postgres` opens a new connection for every stored event and every run
lookup, except in the webserver. A report run stores at least one event per
partition (its materialisation) and its creation one planned event per partition:
on a 100-tenant weekly batch run in-process (`python -m benchmarks.dagster_storage`,
docs/scaling.md), reusing connections took it from 87 to 34 ms per partition. This
class is Dagster's own `DagsterPostgresStorage` with pooling in every process
(daemon, code server, run workers): Dagster's webserver
pools the same way (`optimize_for_webserver`, which keeps one connection; storing a
materialisation nests a second, so we keep two). Same tables, same configuration.
"""

from typing import Any

from dagster_postgres import DagsterPostgresStorage

from dyno_reports.dagster_defs.dagster_private import (
    ConfigurableClassData,
    postgres_engine,
    postgres_storage_config,
    replace_storage_engine,
)

# Kept per storage and process: an event's store nests a second connection (its asset tags).
POOL_SIZE = 2
# Opened beyond those while threads (the daemon's, the run queue's) need them at once, closed after use.
# Unbounded, as without the pool: a bound would make a thread that holds one connection and needs a nested
# second wait (`pool_timeout`) for others that do the same.
MAX_OVERFLOW = -1
# Seconds before a kept connection is replaced; a connection the server dropped is found by the pre-ping.
POOL_RECYCLE = 600


class PooledPostgresStorage(DagsterPostgresStorage):
    """`DagsterPostgresStorage` whose run, event log and schedule storages each keep a connection open."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        token_provider = kwargs.get("token_provider")
        storages: tuple[Any, ...] = (self.run_storage, self.event_log_storage, self.schedule_storage)
        for storage in storages:
            # The webserver replaces this engine again with its own (`optimize_for_webserver`).
            engine = postgres_engine(
                self.postgres_url,
                token_provider,
                isolation_level="AUTOCOMMIT",
                pool_size=POOL_SIZE,
                max_overflow=MAX_OVERFLOW,
                pool_recycle=POOL_RECYCLE,
                pool_pre_ping=True,
            )
            replace_storage_engine(storage, engine)

    @classmethod
    def from_config_value(cls, inst_data: ConfigurableClassData | None, config_value: Any) -> "PooledPostgresStorage":
        postgres_url, token_provider = postgres_storage_config(config_value)
        return cls(  # DagsterPostgresStorage.from_config_value, which names its own class
            postgres_url=postgres_url,
            should_autocreate_tables=config_value.get("should_autocreate_tables", True),
            inst_data=inst_data,
            token_provider=token_provider,
        )
