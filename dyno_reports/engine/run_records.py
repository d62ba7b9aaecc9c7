"""Run records written outside a run's own transaction, and the settings that scope a transaction to a tenant.

`record_failure` leaves the FAILED header of a run that did not commit (in a short transaction of its own);
`record_input_failure` the header of a run that never had valid inputs. `enter_tenant` and `run_settings`
are the transaction-local settings every tenant transaction starts with (one statement).
"""

import functools
import json
import uuid
from collections.abc import Mapping
from typing import Any
from uuid import UUID

from sqlalchemy import Connection, Engine, TextClause, insert, text, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.exc import DBAPIError

from dyno_reports.core import config, periods
from dyno_reports.core.errors import DynoError, InputError
from dyno_reports.core.tenant_calendar import TenantCalendar
from dyno_reports.engine.run_request import RunRequest, fingerprint, iso, options_dict, parse_tenant_id
from dyno_reports.reports import get_report
from dyno_reports.storage.tables import report_run

ERROR_MESSAGE_LIMIT = 4000
# How often the server checks, while a run's query executes, that the client is still connected
# (PostgreSQL 14+, Linux/BSD/macOS): a killed client's query stops within about this long.
CLIENT_CHECK_INTERVAL = "1s"


def enter_tenant(conn: Connection, tenant_id: UUID) -> None:
    """Scope the transaction on `conn` to one tenant: the setting the row-level security policies read
    (`dyno.tenant_id`) and, when DYNO_EXECUTOR_ROLE is set, that role (`set_config('role', ...)`, which is
    `SET LOCAL ROLE`). Both end with the transaction; one round trip."""
    conn.execute(run_settings(config.executor_role()), setting_values(tenant_id, config.executor_role()))


def run_settings(
    role: str | None,
    *,
    check_interval: bool = False,
    report_settings: Mapping[str, str] | None = None,
    lock_question: bool = False,
) -> TextClause:
    """One SELECT of transaction-local `set_config` calls (a select list evaluates left to right).

    `report_settings` (a report's `transaction_settings()`) become bound `setting_<i>`/`value_<i>` pairs;
    `setting_values(..., report_settings)` binds them. Every value is bound, so the statement depends only
    on its shape and is built once per shape (building a `text()` costs a run about 0.1 ms of CPU).
    `lock_question` also takes the run's question lock (`reuse.py`; bind `reuse.question_lock_values`)."""
    return _settings_statement(bool(role), check_interval, len(report_settings or {}), lock_question)


@functools.cache
def _settings_statement(
    with_role: bool, check_interval: bool, report_settings: int, lock_question: bool = False
) -> TextClause:
    calls = []
    if check_interval:
        calls.append("set_config('client_connection_check_interval', :check_interval, true)")
    calls.append("set_config('dyno.tenant_id', :tenant, true)")
    # psycopg prepares a statement run 5 times on one connection (batch runs reuse theirs), and a generic
    # plan would be chosen without the tenant's size: a 40-deal tenant's plan for a 1M-deal one.
    calls.append("set_config('plan_cache_mode', 'force_custom_plan', true)")
    calls += [f"set_config(:setting_{i}, :value_{i}, true)" for i in range(report_settings)]
    if lock_question:  # held until the transaction ends; waits for a run of the same question to end
        calls.append("pg_advisory_xact_lock(CAST(:question_class AS integer), CAST(:question_key AS integer))")
    if with_role:  # last: the statement itself was authorised for the connecting user
        calls.append("set_config('role', :role, true)")
    return text("SELECT " + ", ".join(calls))


def setting_values(
    tenant_id: UUID, role: str | None, report_settings: Mapping[str, str] | None = None
) -> dict[str, str]:
    values = {"tenant": str(tenant_id), "check_interval": CLIENT_CHECK_INTERVAL}
    for i, (name, value) in enumerate((report_settings or {}).items()):
        values |= {f"setting_{i}": name, f"value_{i}": value}
    return values | ({"role": role} if role else {})


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
        "period_grain": request.period_grain,
        "input_params": request.input_params(),
        "input_fingerprint": request.fingerprint(),
        "status": status,
        "dagster_run_id": request.dagster_run_id,
        "known_at": request.known_at,
        "report_version": request.report.report_version,
    }


def describe_error(exc: BaseException) -> str:
    """One readable line: the database's own message for SQL errors, not the statement; our own errors'
    messages as they are (they are written to be read)."""
    if isinstance(exc, DynoError):
        return str(exc)
    if isinstance(exc, DBAPIError) and exc.orig is not None:
        return f"{type(exc.orig).__name__}: {str(exc.orig).strip()}"
    return f"{type(exc).__name__}: {exc}"


def record_input_failure(
    engine: Engine,
    report_type: str,
    tenant_id: str | UUID,
    window: periods.Window,
    options: str | dict[str, Any] | None,
    message: str,
    *,
    dagster_run_id: str | None = None,
    calendar: TenantCalendar | None = None,
) -> UUID:
    """Insert a FAILED header for a run that never had a valid RunRequest (bad options, a killed orchestrator run).

    Valid options are recorded canonically as usual; unparseable ones verbatim under `options_raw`. `calendar`:
    the tenant's, when the caller knows it (the window's grain is read in it; default: UTC).
    """
    calendar = calendar or TenantCalendar()
    report = get_report(report_type)
    tenant_uuid = parse_tenant_id(tenant_id)
    run_id = uuid.uuid4()
    try:
        from dyno_reports.reports.options import parse_options  # pydantic, loaded only to record a refused input

        parsed = parse_options(report.options_model, options_dict(options))
    except InputError:
        parsed = None
    if parsed is not None:
        failed = RunRequest(report, tenant_uuid, window, parsed, dagster_run_id, calendar=calendar)
        record_failure(engine, failed, run_id, message)
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
                period_grain=calendar.grain_of(window.start, window.end),
                input_params={
                    "options_raw": storable_raw(options),
                    "period_grain": calendar.grain_of(window.start, window.end),
                    "calendar": calendar.as_json(),
                },
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
