"""Run a report through the real executor and read its facts back (real PostgreSQL)."""

from collections.abc import Callable
from datetime import datetime
from typing import Any
from uuid import UUID

from sqlalchemy import Engine, select

from dyno_reports.engine import executor, run_request
from dyno_reports.reports import get_report
from dyno_reports.storage.tables import report_run
from dyno_reports_tests.reference import calendar as ref_calendar
from dyno_reports_tests.support.history import TenantData, load
from dyno_reports_tests.support.local_windows import AskedWindow

CALENDAR_KEYS = ("time_zone", "week_start", "fiscal_year_start_month", "fiscal_year_named_by")


def run(
    engine: Engine,
    report_type: str,
    tenant_id: UUID,
    start: datetime | str | None,
    end: datetime | str | None,
    options: dict[str, Any] | None = None,
    *,
    as_known_at: datetime | None = None,
    so_far: bool = False,
    **window: str,
) -> executor.RunResult:
    """`window`: build_request's other window keywords (`grain` and `period`); `as_known_at`: K (default: the
    run's start minus the CRM's longest write)."""
    with engine.connect() as conn:
        request = run_request.build_request(
            conn,
            report_type,
            tenant_id,
            period_start=start,
            period_end=end,
            options=options,
            as_known_at=as_known_at,
            so_far=so_far,
            **window,
        )
    return executor.execute(engine, request)


def facts_by_key(engine: Engine, report_type: str, run_id: UUID) -> dict[Any, dict]:
    """The run's fact rows keyed by the tuple of their dimension values."""
    report = get_report(report_type)
    table = report.fact_table
    with engine.connect() as conn:
        rows = conn.execute(select(table).where(table.c.run_id == run_id)).mappings().all()
    return {tuple(row[c] for c in report.dimensions): {c: row[c] for c in report.fact_columns} for row in rows}


def run_and_read(
    engine: Engine,
    report_type: str,
    tenant_id: UUID,
    start: datetime | None,
    end: datetime,
    options: dict[str, Any] | None = None,
) -> dict[Any, dict]:
    result = run(engine, report_type, tenant_id, start, end, options)
    assert result.succeeded, result.error_message
    facts = facts_by_key(engine, report_type, result.run_id)
    assert result.fact_rows == len(facts)
    return facts


def assert_matches_reference(
    engine: Engine,
    report_type: str,
    expected: Callable[..., dict],
    data: TenantData,
    window: tuple[datetime | None, datetime] | AskedWindow,
    pipeline_ids: list[UUID] | None,
    known_at: datetime | None = None,
    **options: Any,
) -> None:
    """Load the tenant, run the report through the executor as known at `known_at` (None: the default K),
    and compare its facts with the reference `expected(data, start, end, pipeline_ids, known_at=known_at,
    **options)` and its headline with their sums. A window that ends after K makes a so-far run. A window
    asked in local time (`AskedWindow`) must also resolve to the reference calendar's instants, recorded
    with the tenant's calendar."""
    start, end = (window.start, window.end) if isinstance(window, AskedWindow) else window
    load(engine, data)
    run_options = dict(options)
    if pipeline_ids is not None:
        run_options["pipeline_ids"] = [str(p) for p in pipeline_ids]

    if isinstance(window, AskedWindow):
        asked = dict(window.asked)
        asked_start, asked_end = asked.pop("period_start", None), asked.pop("period_end", None)
    else:
        asked, asked_start, asked_end = {}, start, end
    result = run(
        engine,
        report_type,
        data.tenant_id,
        asked_start,
        asked_end,
        run_options or None,
        as_known_at=known_at,
        so_far=True,
        **asked,
    )

    assert result.succeeded, result.error_message
    assert_recorded_window(engine, result.run_id, data.calendar, start, end)
    assert known_at is None or result.request.known_at == known_at
    want = expected(data, start, end, pipeline_ids, known_at=known_at, **options)
    assert facts_by_key(engine, report_type, result.run_id) == want
    assert result.fact_rows == len(want)
    headline = get_report(report_type).headline_metrics
    assert result.headline == {m: sum((row[m] for row in want.values()), 0) for m in headline}


def assert_recorded_window(
    engine: Engine, run_id: UUID, calendar: tuple, start: datetime | None, end: datetime
) -> None:
    """The run's header records these instants, their grain read by the reference calendar, and the calendar."""
    with engine.connect() as conn:
        header = conn.execute(select(report_run).where(report_run.c.run_id == run_id)).one()
    assert (header.period_start, header.period_end) == (start, end)
    assert header.period_grain == ref_calendar.grain(ref_calendar.RefCalendar(*calendar), start, end)
    assert tuple(header.input_params["calendar"][key] for key in CALENDAR_KEYS) == calendar


def stage_row(facts: dict[Any, dict], stage) -> dict:
    """The fact row of a stage-keyed report (dimensions pipeline_id, stage_id)."""
    return facts[(stage.pipeline_id, stage.stage_id)]
