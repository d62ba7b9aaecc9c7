"""The IO manager that writes report runs: one executor run (header + facts, one transaction) per partition.

The asset body hands over validated `executor.RunRequest`s keyed by partition key;
`handle_output` executes them in partition order, each in its own transaction
with its own `report_run` row (`dagster_run_id` = this Dagster run), and attaches
metadata to each partition's materialisation separately. Metadata goes through the
step's per-partition asset metadata, because `add_output_metadata` would copy one
dict onto every partition of a multi-partition (backfill) run.
"""

import dataclasses
from decimal import Decimal
from typing import Any

from dagster import ConfigurableIOManager, InputContext, MetadataValue, OutputContext
from pydantic import Field
from sqlalchemy import Engine, Integer, select

from dyno_reports import executor
from dyno_reports.dagster_defs.resources import engine_for


class ReportRunFailed(Exception):
    """At least one partition's report run ended FAILED (its header records the error)."""


class ReportRunIOManager(ConfigurableIOManager):
    """Runs `executor.execute` per partition and records the outcome as materialisation metadata."""

    database_url: str | None = Field(
        default=None, description="SQLAlchemy URL; empty = DYNO_DATABASE_URL, else the embedded PostgreSQL"
    )
    preview_rows: int = Field(default=10, description="fact rows shown in the markdown preview")

    def handle_output(self, context: OutputContext, obj: dict[str, executor.RunRequest]) -> None:
        engine = engine_for(self.database_url)
        failed = []
        for partition_key in sorted(obj):
            request = dataclasses.replace(obj[partition_key], dagster_run_id=context.run_id)
            result = executor.execute(engine, request)
            context.log.info(f"{partition_key}: report run {result.run_id} {result.status} ({result.fact_rows} fact rows)")
            if not result.succeeded:
                failed.append(f"{partition_key}: report run {result.run_id} FAILED: {result.error_message}")
                continue
            _add_partition_metadata(context, partition_key, run_metadata(engine, result, self.preview_rows), len(obj))
        if failed:
            raise ReportRunFailed("; ".join(failed))

    def load_input(self, context: InputContext) -> Any:
        raise NotImplementedError("report facts live in reporting.<fact table>; query them by report_run.run_id")


def _add_partition_metadata(context: OutputContext, partition_key: str, metadata: dict, partitions: int) -> None:
    if context.has_asset_key and context.has_asset_partitions:
        try:
            step_context = context.step_context
        except Exception:  # built outside a run (direct IO manager tests): only one partition can be described
            step_context = None
        if step_context is not None:
            step_context.add_asset_metadata(metadata, asset_key=context.asset_key, partition_key=partition_key)
            return
    if partitions == 1:
        context.add_output_metadata(metadata)


def run_metadata(engine: Engine, result: executor.RunResult, preview_rows: int) -> dict[str, Any]:
    """The report's run_id, row count, numeric headline figures (plotted across runs) and a facts preview."""
    summary = result.summary()
    metadata: dict[str, Any] = {
        "run_id": MetadataValue.text(summary["run_id"]),
        "tenant_id": MetadataValue.text(summary["tenant_id"]),
        "period": MetadataValue.text(f"[{summary['period_start']}, {summary['period_end']})"),
        "options": MetadataValue.json(summary["options"]),
        "dagster/row_count": MetadataValue.int(result.fact_rows),
    }
    table = result.request.report.fact_table
    for name, value in result.headline.items():  # sum(bigint) comes back as numeric: counts stay ints
        is_count = isinstance(table.c[name].type, Integer)
        metadata[name] = MetadataValue.int(int(value)) if is_count else MetadataValue.float(float(value))
    metadata["preview"] = MetadataValue.md(facts_preview(engine, result, preview_rows))
    return metadata


def facts_preview(engine: Engine, result: executor.RunResult, limit: int) -> str:
    report = result.request.report
    table = report.fact_table
    columns = [table.c[name] for name in report.fact_columns]
    with engine.connect() as conn:
        rows = conn.execute(
            select(*columns)
            .where(table.c.tenant_id == result.request.tenant_id, table.c.run_id == result.run_id)
            .order_by(*(table.c[d] for d in report.dimensions)).limit(limit)
        ).all()
    header = "| " + " | ".join(report.fact_columns) + " |"
    rule = "|" + "---|" * len(report.fact_columns)
    lines = [header, rule, *("| " + " | ".join(_cell(v) for v in row) + " |" for row in rows)]
    shown = f"first {len(rows)} of {result.fact_rows}" if result.fact_rows > len(rows) else f"{len(rows)}"
    return f"**{report.title}**: {shown} fact rows\n\n" + "\n".join(lines)


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, Decimal):
        return format(value, "f")
    return str(value)
