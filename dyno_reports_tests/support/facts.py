"""Run a report through the real executor and read its facts back (real PostgreSQL)."""

from collections.abc import Callable
from datetime import datetime
from typing import Any
from uuid import UUID

from sqlalchemy import Engine, select

from dyno_reports import executor
from dyno_reports.reports import get_report
from dyno_reports_tests.support.history import TenantData, load


def run(
    engine: Engine,
    report_type: str,
    tenant_id: UUID,
    start: datetime | None,
    end: datetime,
    options: dict[str, Any] | None = None,
) -> executor.RunResult:
    with engine.connect() as conn:
        request = executor.build_request(
            conn, report_type, tenant_id, period_start=start, period_end=end, options=options
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
    window: tuple[datetime | None, datetime],
    pipeline_ids: list[UUID] | None,
    **options: Any,
) -> None:
    """Load the tenant, run the report through the executor, and compare its facts with the reference
    `expected(data, start, end, pipeline_ids, **options)` and its headline with their sums."""
    start, end = window
    load(engine, data)
    run_options = dict(options)
    if pipeline_ids is not None:
        run_options["pipeline_ids"] = [str(p) for p in pipeline_ids]

    result = run(engine, report_type, data.tenant_id, start, end, run_options or None)

    assert result.succeeded, result.error_message
    want = expected(data, start, end, pipeline_ids, **options)
    assert facts_by_key(engine, report_type, result.run_id) == want
    assert result.fact_rows == len(want)
    headline = get_report(report_type).headline_metrics
    assert result.headline == {m: sum((row[m] for row in want.values()), 0) for m in headline}


def stage_row(facts: dict[Any, dict], stage) -> dict:
    """The fact row of a stage-keyed report (dimensions pipeline_id, stage_id)."""
    return facts[(stage.pipeline_id, stage.stage_id)]
