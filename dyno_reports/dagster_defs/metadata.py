"""Materialisation metadata of one partition, read back from its committed `report_run` and facts.

One path for every caller: the IO manager after each partition's commit, and the
failure hook and the reconciliation sweep when they report a committed partition that the killed
or failed Dagster run never got to materialise.
"""

import contextlib
from typing import Any
from uuid import UUID

from dagster import MetadataValue
from sqlalchemy import Connection, Engine, Integer, func, select

from dyno_reports import executor
from dyno_reports.dagster_defs.preview import preview_table
from dyno_reports.reports import get_report
from dyno_reports.run_request import iso
from dyno_reports.storage.tables import report_run


def partition_metadata(
    engine: Engine,
    tenant_id: UUID,
    run_id: UUID,
    preview_rows: int = 10,
    result: executor.RunResult | None = None,
    *,
    connection: Connection | None = None,
    tenant_names: dict[UUID, str | None] | None = None,
    period_label: str | None = None,
) -> dict[str, Any]:
    """The report's run_id, the period (`period`: the local period the partition key stood for, e.g. `week of
    2025-06-02 (Australia/Sydney)`, given as `period_label` by the caller, who resolved the key in the
    tenant's calendar; `period_utc`: the run's instants `[start, end)`), row count, numeric headline figures
    (plotted across runs) and a facts preview (a table, `preview`, and what part of the facts it shows,
    `preview_shown`).

    `result`, when the caller has just executed the run, saves reading its header and counts back: the
    preview (with the names) is then the one query. `connection` (a caller's open one, e.g. the IO manager's
    for a whole step) and `tenant_names` (tenant id -> name, kept across a step's partitions) save more.
    """
    with contextlib.nullcontext(connection) if connection is not None else engine.connect() as conn:
        summary = result.summary() if result is not None else _summary_of(conn, tenant_id, run_id)
        report = get_report(summary["report_type"])
        preview = preview_table(conn, report, tenant_id, run_id, summary["fact_rows"], preview_rows, tenant_names)
        if connection is not None and conn.in_transaction():
            conn.rollback()  # read only: leave the caller's connection as it came, ready for the next run
    utc_window = f"[{summary['period_start'] or ''}, {summary['period_end']})"
    metadata: dict[str, Any] = {
        "run_id": MetadataValue.text(str(run_id)),
        "tenant_id": MetadataValue.text(str(tenant_id)),
        "tenant": MetadataValue.text(preview.tenant_name or ""),
        "period": MetadataValue.text(period_label or utc_window),
        "period_utc": MetadataValue.text(utc_window),
        "options": MetadataValue.json(summary["options"]),
        "dagster/row_count": MetadataValue.int(summary["fact_rows"]),
    }
    for name, value in summary["headline"].items():  # sum(bigint) comes back as numeric: counts stay ints
        is_count = isinstance(report.fact_table.c[name].type, Integer)
        metadata[name] = MetadataValue.int(int(value)) if is_count else MetadataValue.float(float(value))
    metadata["preview_shown"] = MetadataValue.text(preview.shown)
    metadata["preview"] = MetadataValue.table(preview.records, preview.schema)
    return metadata


def _summary_of(conn: Connection, tenant_id: UUID, run_id: UUID) -> dict[str, Any]:
    """What `RunResult.summary()` says of a committed run, read back from its header and facts."""
    header = conn.execute(
        select(report_run).where(report_run.c.tenant_id == tenant_id, report_run.c.run_id == run_id)
    ).one()
    report = get_report(header.report_type)
    table = report.fact_table
    return {
        "report_type": header.report_type,
        "period_start": iso(header.period_start),
        "period_end": iso(header.period_end),
        "options": header.input_params.get("options", {}),
        "fact_rows": conn.execute(
            select(func.count()).where(table.c.tenant_id == tenant_id, table.c.run_id == run_id)
        ).scalar_one(),
        "headline": executor.headline_of(conn, report, tenant_id, run_id),
    }
