"""The one run executor every caller uses (CLI, Dagster, tests, benchmarks).

A run is one transaction: insert the `report_run` header as IN_PROGRESS, compute
the facts in PostgreSQL with one INSERT ... SELECT, mark the header SUCCEEDED,
commit. Any error rolls all of it back; the run is then recorded as FAILED with
its error message and no facts, in a second short transaction. Inputs are
validated before, by `run_request.build_request`.

A dead client stops its run: the run's transaction sets `client_connection_check_interval`, so the
server notices within a second that the client's socket closed (a killed process) and cancels the
query. A caller that wants to stop a run (the CLI on SIGINT/SIGTERM) raises `RunCancelled` from a
signal handler: psycopg cancels the running statement on the server, the transaction rolls back, and
the run is recorded FAILED with the reason in a new transaction before `RunCancelled` propagates.
"""

import json
import logging
import uuid
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any
from uuid import UUID

from sqlalchemy import BigInteger, Connection, Engine, cast, func, insert, literal, select, text, update
from sqlalchemy.dialects.postgresql import UUID as PG_UUID
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.exc import DBAPIError

from dyno_reports import config, db, periods
from dyno_reports.errors import InputError
from dyno_reports.reports import get_report
from dyno_reports.reports.base import ReportDefinition, parse_options
from dyno_reports.run_request import RunRequest, build_request, fingerprint, iso, options_dict, parse_tenant_id
from dyno_reports.storage.tables import report_run

# RunRequest and build_request are re-exported: callers run reports through this one module.
__all__ = [
    "RunCancelled",
    "RunRequest",
    "RunResult",
    "build_request",
    "describe_error",
    "enter_tenant",
    "execute",
    "header_values",
    "headline_of",
    "record_failure",
    "record_input_failure",
]

log = logging.getLogger(__name__)
ERROR_MESSAGE_LIMIT = 4000
# How often the server checks, while a run's query executes, that the client is still connected
# (PostgreSQL 14+, Linux/BSD/macOS): a killed client's query stops within about this long.
CLIENT_CHECK_INTERVAL = "1s"


class RunCancelled(KeyboardInterrupt):
    """Raised (from a signal handler) to stop a run. A KeyboardInterrupt, so psycopg cancels the statement
    running on the server before it re-raises, and `except Exception` handlers pass it through;
    `execute` records the run FAILED with `reason` ("cancelled (SIGINT)") and raises it on."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass
class RunResult:
    run_id: UUID
    status: str
    request: RunRequest
    fact_rows: int = 0
    error_message: str | None = None
    headline: dict[str, Decimal | int] = field(default_factory=dict)

    @property
    def succeeded(self) -> bool:
        return self.status == "SUCCEEDED"

    def summary(self) -> dict[str, Any]:
        """The JSON object `dyno-reports run --json` prints."""
        window = self.request.window
        return {
            "run_id": str(self.run_id),
            "status": self.status,
            "report_type": self.request.report.report_type,
            "tenant_id": str(self.request.tenant_id),
            "period_start": iso(window.start),
            "period_end": iso(window.end),
            "period_grain": window.grain,
            "options": self.request.options.canonical(),
            "input_fingerprint": self.request.fingerprint(),
            "fact_rows": self.fact_rows,
            "headline": {k: _jsonable(v) for k, v in self.headline.items()},
            "error_message": self.error_message,
        }


def execute(engine: Engine, request: RunRequest, *, run_id: UUID | None = None) -> RunResult:
    """Run the report: SUCCEEDED with its facts, or FAILED with its error and no facts."""
    run_id = run_id or uuid.uuid4()
    config.executor_role()  # a malformed DYNO_EXECUTOR_ROLE is refused before anything is written
    connection = db.connect(engine)  # transient connection failures retried: nothing is written yet
    try:
        with connection as conn, conn.begin():
            fact_rows, headline = _run_in_transaction(conn, request, run_id)
    except RunCancelled as exc:  # rolled back (psycopg cancelled the statement); recorded in a new transaction
        log.warning("report run %s (%s) %s", run_id, request.report.report_type, exc.reason)
        record_failure(engine, request, run_id, exc.reason)
        raise
    except Exception as exc:  # every failure must leave a FAILED header, whatever raised
        message = describe_error(exc)
        log.warning("report run %s (%s) failed: %s", run_id, request.report.report_type, message)
        record_failure(engine, request, run_id, message)
        return RunResult(run_id, "FAILED", request, error_message=message)
    return RunResult(run_id, "SUCCEEDED", request, fact_rows=fact_rows, headline=headline)


def enter_tenant(conn: Connection, tenant_id: UUID) -> None:
    """Scope the transaction on `conn` to one tenant: the setting the row-level security policies read
    (`dyno.tenant_id`), then `SET LOCAL ROLE` to DYNO_EXECUTOR_ROLE when set. Both end with the transaction."""
    conn.execute(text("SELECT set_config('dyno.tenant_id', :tenant, true)"), {"tenant": str(tenant_id)})
    role = config.executor_role()
    if role:
        conn.exec_driver_sql(f"SET LOCAL ROLE {conn.dialect.identifier_preparer.quote(role)}")


def _run_in_transaction(conn: Connection, request: RunRequest, run_id: UUID) -> tuple[int, dict]:
    conn.execute(
        text("SELECT set_config('client_connection_check_interval', :interval, true)"),
        {"interval": CLIENT_CHECK_INTERVAL},
    )
    enter_tenant(conn, request.tenant_id)
    conn.execute(insert(report_run).values(**header_values(request, run_id, "IN_PROGRESS")))
    fact_rows = conn.execute(_insert_facts(request.report, run_id, request.tenant_id), request.sql_params()).rowcount
    headline = headline_of(conn, request.report, request.tenant_id, run_id)
    conn.execute(
        update(report_run)
        .where(report_run.c.tenant_id == request.tenant_id, report_run.c.run_id == run_id)
        .values(status="SUCCEEDED", generated_at=func.clock_timestamp())
    )
    return fact_rows, headline


def _insert_facts(report: ReportDefinition, run_id: UUID, tenant_id: UUID):
    """INSERT INTO <fact table> (run_id, tenant_id, <columns>) SELECT :run_id, :tenant_id, q.* FROM (<report sql>) q."""
    table = report.fact_table
    computed = text(report.sql).columns(*(table.c[name] for name in report.fact_columns)).subquery("computed")
    rows = select(
        literal(run_id, PG_UUID(as_uuid=True)),
        literal(tenant_id, PG_UUID(as_uuid=True)),
        *(computed.c[name] for name in report.fact_columns),
    )
    statement = insert(table).from_select(["run_id", "tenant_id", *report.fact_columns], rows)
    return statement.execution_options(preserve_rowcount=True)  # SQLAlchemy keeps INSERT rowcounts only when asked


def headline_of(conn: Connection, report: ReportDefinition, tenant_id: UUID, run_id: UUID) -> dict[str, Decimal | int]:
    """Sums of the report's additive metrics over a run's facts (the numbers Dagster plots).

    sum(bigint) is numeric in PostgreSQL: sums of count columns are cast back to bigint.
    """
    table = report.fact_table
    sums = []
    for name in report.headline_metrics:
        total = func.coalesce(func.sum(table.c[name]), 0)
        is_count = isinstance(table.c[name].type, BigInteger)
        sums.append((cast(total, BigInteger) if is_count else total).label(name))
    row = conn.execute(select(*sums).where(table.c.tenant_id == tenant_id, table.c.run_id == run_id)).one()
    return dict(row._mapping)


def record_failure(engine: Engine, request: RunRequest, run_id: UUID, message: str) -> None:
    """Leave a FAILED header for `run_id` (insert it, or fail the IN_PROGRESS one)."""
    values = header_values(request, run_id, "FAILED") | {"error_message": storable_message(message)}
    with engine.begin() as conn:
        enter_tenant(conn, request.tenant_id)
        updated = conn.execute(
            update(report_run)
            .where(
                report_run.c.tenant_id == request.tenant_id,
                report_run.c.run_id == run_id,
                report_run.c.status == "IN_PROGRESS",
            )
            .values(status="FAILED", error_message=values["error_message"])
        ).rowcount
        if not updated:  # no header yet; or (a cancel that landed during COMMIT) a final one, which stays
            conn.execute(pg_insert(report_run).values(**values).on_conflict_do_nothing(index_elements=["run_id"]))


def header_values(request: RunRequest, run_id: UUID, status: str) -> dict[str, Any]:
    return {
        "run_id": run_id,
        "tenant_id": request.tenant_id,
        "report_type": request.report.report_type,
        "period_start": request.window.start,
        "period_end": request.window.end,
        "period_grain": request.window.grain,
        "input_params": request.input_params(),
        "input_fingerprint": request.fingerprint(),
        "status": status,
        "dagster_run_id": request.dagster_run_id,
    }


def describe_error(exc: BaseException) -> str:
    """One readable line: the database's own message for SQL errors, not the statement."""
    if isinstance(exc, DBAPIError) and exc.orig is not None:
        return f"{type(exc.orig).__name__}: {str(exc.orig).strip()}"
    return f"{type(exc).__name__}: {exc}"


def _jsonable(value: Any) -> Any:
    return str(value) if isinstance(value, Decimal) else value


def record_input_failure(
    engine: Engine,
    report_type: str,
    tenant_id: str | UUID,
    window: periods.Window,
    options: str | dict[str, Any] | None,
    message: str,
    *,
    dagster_run_id: str | None = None,
) -> UUID:
    """Insert a FAILED header for a run that never had a valid RunRequest (bad options, a killed orchestrator run).

    Valid options are recorded canonically as usual; unparseable ones verbatim under `options_raw`.
    """
    report = get_report(report_type)
    tenant_uuid = parse_tenant_id(tenant_id)
    run_id = uuid.uuid4()
    try:
        parsed = parse_options(report.options_model, options_dict(options))
    except InputError:
        parsed = None
    if parsed is not None:
        record_failure(engine, RunRequest(report, tenant_uuid, window, parsed, dagster_run_id), run_id, message)
        return run_id
    canonical = {
        "tenant_id": str(tenant_uuid),
        "report_type": report_type,
        "period_start": iso(window.start),
        "period_end": iso(window.end),
        "options_raw": storable_raw(options),
    }
    with engine.begin() as conn:
        enter_tenant(conn, tenant_uuid)
        conn.execute(
            insert(report_run).values(
                run_id=run_id,
                tenant_id=tenant_uuid,
                report_type=report_type,
                period_start=window.start,
                period_end=window.end,
                period_grain=window.grain,
                input_params={"options_raw": storable_raw(options), "period_grain": window.grain},
                input_fingerprint=fingerprint(canonical),
                status="FAILED",
                error_message=storable_message(message),
                dagster_run_id=dagster_run_id,
            )
        )
    return run_id


def storable_message(message: str) -> str:
    """An error message PostgreSQL's text accepts (no NUL), cut to ERROR_MESSAGE_LIMIT."""
    return message.replace("\x00", "\\x00")[:ERROR_MESSAGE_LIMIT]


def storable_raw(options: str | dict[str, Any] | None) -> str | None:
    """Refused options as recorded: their JSON text, NULs escaped (jsonb refuses \\u0000), cut to a bound."""
    if options is None:
        return None
    text = options if isinstance(options, str) else json.dumps(options, default=str)
    return storable_message(text)
