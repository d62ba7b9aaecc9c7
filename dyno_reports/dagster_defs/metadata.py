"""Materialisation metadata of one partition, read back from its committed `report_run` and facts.

Beside the numbers: the run's `known_at` (K) and `report_version` and, when the run replaced an earlier
answer to the same question (a refresh of a stale run), `replaced_run_id` and `diff_summary`, the diff
between the two in one line (`run_diff.py`).

One path for every caller: the IO manager after each partition's commit, and the
failure hook and the reconciliation sweep when they report a committed partition that the killed
or failed Dagster run never got to materialise.
"""

import contextlib
from typing import Any
from uuid import UUID

from dagster import MetadataValue
from sqlalchemy import Connection, Engine, Integer, and_, func, select, tuple_

from dyno_reports.dagster_defs.preview import preview_table
from dyno_reports.engine import executor
from dyno_reports.engine.run_request import iso
from dyno_reports.read import run_diff
from dyno_reports.reports import get_report
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
        replaced = replaced_run(conn, tenant_id, run_id)
        restatement = run_diff.diff_runs(conn, report, tenant_id, replaced, run_id) if replaced else None
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
        "known_at": MetadataValue.text(summary["known_at"] or ""),
        "report_version": MetadataValue.int(summary["report_version"] or 0),
        "dagster/row_count": MetadataValue.int(summary["fact_rows"]),
    }
    for name, value in summary["headline"].items():  # sum(bigint) comes back as numeric: counts stay ints
        is_count = isinstance(report.fact_table.c[name].type, Integer)
        metadata[name] = MetadataValue.int(int(value)) if is_count else MetadataValue.float(float(value))
    if restatement is not None:
        metadata["replaced_run_id"] = MetadataValue.text(str(replaced))
        metadata["diff_summary"] = MetadataValue.text(run_diff.summary_line(report, restatement))
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
        "known_at": iso(header.known_at),
        "report_version": header.report_version,
        "fact_rows": conn.execute(
            select(func.count()).where(table.c.tenant_id == tenant_id, table.c.run_id == run_id)
        ).scalar_one(),
        "headline": executor.headline_of(conn, report, tenant_id, run_id),
    }


def replaced_run(conn: Connection, tenant_id: UUID, run_id: UUID) -> UUID | None:
    """The answer this run replaced: the latest SUCCEEDED run of the same tenant, report and question (input
    fingerprint) made before it; None for a question answered the first time. One indexed lookup."""
    this, earlier = report_run.alias("this"), report_run.alias("earlier")
    same_question = and_(
        earlier.c.tenant_id == tenant_id,
        earlier.c.report_type == this.c.report_type,
        earlier.c.input_fingerprint == this.c.input_fingerprint,
        earlier.c.status == "SUCCEEDED",
        tuple_(earlier.c.generated_at, earlier.c.run_id) < tuple_(this.c.generated_at, this.c.run_id),
    )
    return conn.execute(
        select(earlier.c.run_id)
        .select_from(this.join(earlier, same_question))
        .where(this.c.tenant_id == tenant_id, this.c.run_id == run_id)
        .order_by(earlier.c.generated_at.desc(), earlier.c.run_id.desc())
        .limit(1)
    ).scalar_one_or_none()
