"""The one run executor every caller uses (CLI, Dagster, tests).

A run is one transaction: insert the `report_run` header as IN_PROGRESS, compute
the facts in PostgreSQL with one INSERT ... SELECT, mark the header SUCCEEDED,
commit. Any error rolls all of it back; the run is then recorded as FAILED with
its error message and no facts, in a second short transaction.
"""

import hashlib
import json
import logging
import uuid
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any
from uuid import UUID

from sqlalchemy import Connection, Engine, func, insert, literal, select, text, update
from sqlalchemy.dialects.postgresql import UUID as PG_UUID
from sqlalchemy.exc import DBAPIError

from dyno_reports import periods
from dyno_reports.errors import InputError
from dyno_reports.reports import get_report
from dyno_reports.reports.base import ReportDefinition, ReportOptions, parse_options
from dyno_reports.storage.tables import pipeline, report_run, tenant

log = logging.getLogger(__name__)
ERROR_MESSAGE_LIMIT = 4000


@dataclass(frozen=True)
class RunRequest:
    """Everything a run depends on, validated: the run's identity is these inputs."""

    report: ReportDefinition
    tenant_id: UUID
    window: periods.Window
    options: ReportOptions
    dagster_run_id: str | None = None

    def input_params(self) -> dict[str, Any]:
        return {"options": self.options.canonical(), "period_grain": self.window.grain}

    def fingerprint(self) -> str:
        """sha256 of the canonical inputs (tenant, report_type, window, options with defaults)."""
        canonical = {
            "tenant_id": str(self.tenant_id),
            "report_type": self.report.report_type,
            "period_start": _iso(self.window.start),
            "period_end": _iso(self.window.end),
            "options": self.options.canonical(),
        }
        encoded = json.dumps(canonical, sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(encoded.encode()).hexdigest()

    def sql_params(self) -> dict[str, Any]:
        return {
            "tenant_id": self.tenant_id,
            "period_start": self.window.start,
            "period_end": self.window.end,
            **self.options.sql_params(),
        }


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
            "period_start": _iso(window.start),
            "period_end": _iso(window.end),
            "period_grain": window.grain,
            "options": self.request.options.canonical(),
            "input_fingerprint": self.request.fingerprint(),
            "fact_rows": self.fact_rows,
            "headline": {k: _jsonable(v) for k, v in self.headline.items()},
            "error_message": self.error_message,
        }


def build_request(
    conn: Connection,
    report_type: str,
    tenant_id: str | UUID,
    *,
    period_start: str | datetime | None = None,
    period_end: str | datetime | None = None,
    options: str | dict[str, Any] | None = None,
    dagster_run_id: str | None = None,
) -> RunRequest:
    """Validate every input against the database; raise InputError before anything is written."""
    report = get_report(report_type)
    tenant_uuid = parse_tenant_id(tenant_id)
    window = periods.resolve_window(
        _instant(period_start, "period start"), _instant(period_end, "period end")
    )
    parsed_options = parse_options(report.options_model, _options_dict(options))
    _check_tenant(conn, tenant_uuid)
    _check_pipelines(conn, tenant_uuid, parsed_options.pipeline_ids)
    return RunRequest(report, tenant_uuid, window, parsed_options, dagster_run_id)


def execute(engine: Engine, request: RunRequest, *, run_id: UUID | None = None) -> RunResult:
    """Run the report: SUCCEEDED with its facts, or FAILED with its error and no facts."""
    run_id = run_id or uuid.uuid4()
    try:
        with engine.begin() as conn:
            fact_rows, headline = _run_in_transaction(conn, request, run_id)
    except Exception as exc:  # every failure must leave a FAILED header, whatever raised
        message = describe_error(exc)
        log.warning("report run %s (%s) failed: %s", run_id, request.report.report_type, message)
        record_failure(engine, request, run_id, message)
        return RunResult(run_id, "FAILED", request, error_message=message)
    return RunResult(run_id, "SUCCEEDED", request, fact_rows=fact_rows, headline=headline)


def _run_in_transaction(conn: Connection, request: RunRequest, run_id: UUID) -> tuple[int, dict]:
    # Row-level security (to come) reads the tenant from this setting; it is local to the transaction.
    conn.execute(text("SELECT set_config('dyno.tenant_id', :tenant, true)"), {"tenant": str(request.tenant_id)})
    conn.execute(insert(report_run).values(**_header_values(request, run_id, "IN_PROGRESS")))
    fact_rows = conn.execute(_insert_facts(request.report, run_id, request.tenant_id), request.sql_params()).rowcount
    headline = _headline(conn, request, run_id)
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


def _headline(conn: Connection, request: RunRequest, run_id: UUID) -> dict[str, Decimal | int]:
    """Sums of the report's additive metrics over the run's facts (the numbers Dagster plots)."""
    table = request.report.fact_table
    sums = [func.coalesce(func.sum(table.c[name]), 0).label(name) for name in request.report.headline_metrics]
    row = conn.execute(select(*sums).where(table.c.tenant_id == request.tenant_id, table.c.run_id == run_id)).one()
    return dict(row._mapping)


def record_failure(engine: Engine, request: RunRequest, run_id: UUID, message: str) -> None:
    """Leave a FAILED header for `run_id` (insert it, or fail the IN_PROGRESS one)."""
    values = _header_values(request, run_id, "FAILED") | {"error_message": message[:ERROR_MESSAGE_LIMIT]}
    with engine.begin() as conn:
        updated = conn.execute(
            update(report_run)
            .where(
                report_run.c.tenant_id == request.tenant_id,
                report_run.c.run_id == run_id,
                report_run.c.status == "IN_PROGRESS",
            )
            .values(status="FAILED", error_message=values["error_message"])
        ).rowcount
        if not updated:
            conn.execute(insert(report_run).values(**values))


def _header_values(request: RunRequest, run_id: UUID, status: str) -> dict[str, Any]:
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


def parse_tenant_id(raw: str | UUID) -> UUID:
    if isinstance(raw, UUID):
        return raw
    try:
        return UUID(str(raw).strip())
    except ValueError:
        raise InputError(f"tenant {raw!r} is not a UUID") from None


def _check_tenant(conn: Connection, tenant_id: UUID) -> None:
    found = conn.execute(select(tenant.c.tenant_id).where(tenant.c.tenant_id == tenant_id)).first()
    if found is None:
        raise InputError(f"unknown tenant {tenant_id} (not in crm.tenant)")


def _check_pipelines(conn: Connection, tenant_id: UUID, pipeline_ids: tuple[UUID, ...] | None) -> None:
    if not pipeline_ids:
        return
    owned = set(
        conn.execute(
            select(pipeline.c.pipeline_id).where(
                pipeline.c.tenant_id == tenant_id, pipeline.c.pipeline_id.in_(pipeline_ids)
            )
        ).scalars()
    )
    missing = [str(p) for p in pipeline_ids if p not in owned]
    if missing:
        raise InputError(f"pipeline(s) {', '.join(missing)} do not belong to tenant {tenant_id}")


def _instant(value: str | datetime | None, what: str) -> datetime | None:
    if value is None or isinstance(value, datetime):
        return value
    return periods.parse_instant(value, what)


def _options_dict(options: str | dict[str, Any] | None) -> dict[str, Any] | None:
    if options is None or isinstance(options, dict):
        return options
    try:
        return json.loads(options)
    except json.JSONDecodeError as exc:
        raise InputError(f"options are not valid JSON: {exc.msg} at position {exc.pos}") from None


def _iso(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat()


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
        parsed = parse_options(report.options_model, _options_dict(options))
    except InputError:
        parsed = None
    if parsed is not None:
        record_failure(engine, RunRequest(report, tenant_uuid, window, parsed, dagster_run_id), run_id, message)
        return run_id
    canonical = {
        "tenant_id": str(tenant_uuid), "report_type": report_type,
        "period_start": _iso(window.start), "period_end": _iso(window.end), "options_raw": options,
    }
    fingerprint = hashlib.sha256(json.dumps(canonical, sort_keys=True, separators=(",", ":"), default=str).encode()).hexdigest()
    with engine.begin() as conn:
        conn.execute(insert(report_run).values(
            run_id=run_id, tenant_id=tenant_uuid, report_type=report_type,
            period_start=window.start, period_end=window.end, period_grain=window.grain,
            input_params={"options_raw": options, "period_grain": window.grain}, input_fingerprint=fingerprint,
            status="FAILED", error_message=message[:ERROR_MESSAGE_LIMIT], dagster_run_id=dagster_run_id,
        ))
    return run_id
