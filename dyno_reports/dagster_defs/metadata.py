"""Materialisation metadata of one partition, read back from its committed `report_run` and facts.

One path for every caller: the IO manager after each partition's commit, and the
failure hook and reapers when they report a committed partition that the killed
or failed Dagster run never got to materialise.
"""

from typing import Any
from uuid import UUID

from dagster import MetadataValue
from sqlalchemy import Engine, Integer, func, select

from dyno_reports import executor, names
from dyno_reports.dagster_defs.preview import facts_preview
from dyno_reports.reports import get_report
from dyno_reports.storage.tables import report_run


def partition_metadata(
    engine: Engine, tenant_id: UUID, run_id: UUID, preview_rows: int = 10, result: executor.RunResult | None = None
) -> dict[str, Any]:
    """The report's run_id, row count, numeric headline figures (plotted across runs) and a facts preview.

    `result`, when the caller has just executed the run, saves reading its counts back.
    """
    with engine.connect() as conn:
        header = conn.execute(
            select(report_run).where(report_run.c.tenant_id == tenant_id, report_run.c.run_id == run_id)
        ).one()
        report = get_report(header.report_type)
        table = report.fact_table
        if result is not None:
            fact_rows, headline = result.fact_rows, result.headline
        else:
            fact_rows = conn.execute(
                select(func.count()).where(table.c.tenant_id == header.tenant_id, table.c.run_id == run_id)
            ).scalar_one()
            headline = executor.headline_of(conn, report, header.tenant_id, run_id)
        tenant = names.tenant_name(conn, header.tenant_id)
    start = "" if header.period_start is None else header.period_start.isoformat()
    metadata: dict[str, Any] = {
        "run_id": MetadataValue.text(str(run_id)),
        "tenant_id": MetadataValue.text(str(header.tenant_id)),
        "tenant": MetadataValue.text(tenant or ""),
        "period": MetadataValue.text(f"[{start}, {header.period_end.isoformat()})"),
        "options": MetadataValue.json(header.input_params.get("options", {})),
        "dagster/row_count": MetadataValue.int(fact_rows),
    }
    for name, value in headline.items():  # sum(bigint) comes back as numeric: counts stay ints
        is_count = isinstance(table.c[name].type, Integer)
        metadata[name] = MetadataValue.int(int(value)) if is_count else MetadataValue.float(float(value))
    metadata["preview"] = MetadataValue.md(facts_preview(engine, report, header.tenant_id, run_id, fact_rows, preview_rows))
    return metadata
