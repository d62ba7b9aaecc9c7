"""Run requests: every input of a report run, validated against the database before anything is written.

The validated inputs are the run's identity: their canonical JSON (options with
defaults, pipeline ids sorted) is recorded in `report_run.input_params` and its
sha256 in `report_run.input_fingerprint`.
"""

import hashlib
import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

from sqlalchemy import Connection, select

from dyno_reports import periods
from dyno_reports.errors import InputError
from dyno_reports.reports import get_report
from dyno_reports.reports.base import ReportDefinition, ReportOptions, parse_options
from dyno_reports.storage.tables import pipeline, tenant


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
            "period_start": iso(self.window.start),
            "period_end": iso(self.window.end),
            "options": self.options.canonical(),
        }
        return fingerprint(canonical)

    def sql_params(self) -> dict[str, Any]:
        return {
            "tenant_id": self.tenant_id,
            "period_start": self.window.start,
            "period_end": self.window.end,
            **self.options.sql_params(),
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
    window = periods.resolve_window(_instant(period_start, "period start"), _instant(period_end, "period end"))
    parsed_options = parse_options(report.options_model, options_dict(options))
    _check_tenant(conn, tenant_uuid)
    _check_pipelines(conn, tenant_uuid, parsed_options.pipeline_ids)
    return RunRequest(report, tenant_uuid, window, parsed_options, dagster_run_id)


def fingerprint(canonical: dict[str, Any]) -> str:
    """sha256 of canonical JSON (sorted keys, no spaces)."""
    encoded = json.dumps(canonical, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(encoded.encode()).hexdigest()


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


def options_dict(options: str | dict[str, Any] | None) -> dict[str, Any] | None:
    if options is None or isinstance(options, dict):
        return options
    try:
        return json.loads(options)
    except json.JSONDecodeError as exc:
        raise InputError(f"options are not valid JSON: {exc.msg} at position {exc.pos}") from None


def iso(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat()
