"""Transient database failures retried where they happen: a new connection, after a pause, and that piece of
the step's work done again (not the whole step: report steps have no Dagster RetryPolicy, which Dagster 1.13
also applies to interrupted steps, so a terminated run used to run again).

Each piece of a report step's work on the report database runs through `Reconnecting.run`: validating the
partitions, one partition's run, its materialisation metadata, the family's committed runs. When the
connection is refused, dropped or cut (`db.is_lost_connection`: no SQLSTATE or class 08, too many
connections, the server shutting down or starting), or the executor says a run failed so
(`RunResult.connection_lost`, raised here as `LostConnection`), it waits RETRY_BACKOFF_SECONDS[i], checks the
run was not asked to stop, reconnects and does that piece again. Repeating is safe: reads; a run whose
transaction rolled back; a run whose COMMIT went through but whose answer was lost, which the retry finds
(`executor.execute(..., reuse=...)`: this Dagster run is in its family) instead of computing it again.
When every attempt failed: `DatabaseOutage`, naming the database.
"""

import contextlib
import time
from collections.abc import Callable
from typing import Any, TypeVar

from dagster import Failure, MetadataValue
from sqlalchemy import Connection, Engine
from sqlalchemy.exc import DBAPIError

from dyno_reports.dagster_defs.stopping import RunWatch
from dyno_reports.storage import db

# Six attempts over 15.5 s of waiting: a server restart or a failover of a few seconds is ridden out; a
# longer outage fails the step with one Failure and leaves the bookkeeping to the reconciliation.
RETRY_BACKOFF_SECONDS = (0.5, 1.0, 2.0, 4.0, 8.0)
_sleep = time.sleep  # the tests replace it

T = TypeVar("T")


class LostConnection(Exception):
    """A run came back FAILED because its connection was lost (`RunResult.connection_lost`)."""


class DatabaseOutage(Exception):
    """Every attempt of a piece of work lost its connection: the report database is unreachable."""

    def __init__(self, database: str, attempts: int, waited: float, cause: BaseException) -> None:
        self.database = database
        cause_text = str(cause.orig if isinstance(cause, DBAPIError) and cause.orig is not None else cause)
        super().__init__(
            f"the report database {database} is unreachable ({attempts} attempts over {waited:g} s): "
            + " ".join(cause_text.split())
        )


class Reconnecting:
    """One connection of `engine` for a step's pieces of work, replaced whenever it is lost."""

    def __init__(
        self,
        engine: Engine,
        log: Any = None,
        watch: RunWatch | None = None,
        backoff: tuple[float, ...] = RETRY_BACKOFF_SECONDS,
    ) -> None:
        self.engine, self.log, self.watch, self.backoff = engine, log, watch, backoff
        self._conn: Connection | None = None

    def __enter__(self) -> "Reconnecting":
        return self

    def __exit__(self, *exc: object) -> None:
        self.discard()

    def run(self, work: Callable[[Connection], T], what: str) -> T:
        """`work(connection)`, retried on a lost connection; `what` names it in the log."""
        for attempt, delay in enumerate((*self.backoff, None), start=1):
            try:
                return work(self._connection())
            except (DBAPIError, LostConnection) as exc:
                if isinstance(exc, DBAPIError) and not db.is_lost_connection(exc):
                    raise
                self.discard()
                if delay is None:
                    raise DatabaseOutage(self.database(), attempt, sum(self.backoff), exc) from exc
                if self.log is not None:
                    self.log.warning(f"{what}: database connection lost (attempt {attempt}), retrying in {delay:g} s")
                _sleep(delay)
                if self.watch is not None:
                    self.watch.check(f"retrying {what}")
        raise AssertionError("unreachable")

    def database(self) -> str:
        return db.libpq_url(self.engine.url, hide_password=True)

    def discard(self) -> None:
        """Close the connection (a lost one is only released); the next piece of work opens another."""
        if self._conn is not None:
            with contextlib.suppress(Exception):
                self._conn.close()
            self._conn = None

    def _connection(self) -> Connection:
        if self._conn is not None and (self._conn.closed or self._conn.invalidated):
            self.discard()
        if self._conn is None:
            self._conn = self.engine.connect()
        return self._conn


def outage_failure(outage: DatabaseOutage, not_done: list[str], failed: dict[str, str], shown: int = 5) -> Failure:
    """The one Failure of a step the outage stopped: the database, the partitions not done (the first `shown`
    named); their headers are the reconciliation's to write once the database is back, not this step's."""
    named = ", ".join(not_done[:shown]) + (f" (and {len(not_done) - shown} more)" if len(not_done) > shown else "")
    return Failure(
        description=f"{outage}. {len(not_done)} partition(s) not done: {named}; the reconciliation records them "
        "once the database is back",
        metadata={
            "database": MetadataValue.text(outage.database),
            "partitions_not_done": MetadataValue.json(not_done),
            "failed_partitions": MetadataValue.json(failed),
        },
        allow_retries=False,
    )
