"""Asset checks on the fact tables, generic per report plus pipeline_overview's stage completeness.

Checks of a partitioned asset run once per run without a partition, so each
looks at the whole fact table (indexed joins on run_id).
"""

from dagster import AssetCheckResult, AssetCheckSeverity, AssetChecksDefinition, asset_check
from sqlalchemy import Engine, text

from dyno_reports.dagster_defs.resources import ReportDatabase
from dyno_reports.reports import REGISTRY
from dyno_reports.reports.base import ReportDefinition

STAGE_ROWS_COMPLETE_SQL = """
WITH latest AS (
    SELECT DISTINCT ON (tenant_id) run_id, tenant_id, input_params -> 'options' AS o
    FROM reporting.report_run
    WHERE report_type = 'pipeline_overview' AND status = 'SUCCEEDED'
    ORDER BY tenant_id, period_end DESC, generated_at DESC
)
SELECT count(*)
FROM latest l
JOIN crm.stage s ON s.tenant_id = l.tenant_id
WHERE (COALESCE((l.o ->> 'include_closed')::boolean, false) OR s.kind = 'open')
  AND (jsonb_typeof(l.o -> 'pipeline_ids') IS DISTINCT FROM 'array' OR (l.o -> 'pipeline_ids') ? s.pipeline_id::text)
  AND NOT EXISTS (SELECT 1 FROM reporting.report_pipeline_overview_fact f
                  WHERE f.run_id = l.run_id AND f.stage_id = s.stage_id)
"""


def _count(engine: Engine, sql: str) -> int:
    with engine.connect() as conn:
        return int(conn.execute(text(sql)).scalar_one())


def _result(bad: int, what: str, severity=AssetCheckSeverity.ERROR) -> AssetCheckResult:
    return AssetCheckResult(
        passed=bad == 0, severity=severity, metadata={"offending_rows": bad},
        description=f"{bad} {what}" if bad else f"no {what}",
    )


def report_checks(report: ReportDefinition) -> list[AssetChecksDefinition]:
    table = f"reporting.{report.fact_table.name}"
    rt = report.report_type

    @asset_check(asset=rt, name="facts_from_succeeded_runs",
                 description="every fact row belongs to a SUCCEEDED run of this report and the same tenant")
    def facts_from_succeeded_runs(dyno_db: ReportDatabase) -> AssetCheckResult:
        bad = _count(dyno_db.engine(), f"""
            SELECT count(*) FROM {table} f JOIN reporting.report_run r ON r.run_id = f.run_id
            WHERE r.status <> 'SUCCEEDED' OR r.report_type <> '{rt}' OR r.tenant_id <> f.tenant_id""")
        return _result(bad, "fact rows of a run that is not a SUCCEEDED run of this report and tenant")

    negative = " OR ".join(f"f.{m} < 0" for m in report.metrics)

    @asset_check(asset=rt, name="metrics_not_negative", description="no negative count, amount, rate or duration")
    def metrics_not_negative(dyno_db: ReportDatabase) -> AssetCheckResult:
        bad = _count(dyno_db.engine(), f"SELECT count(*) FROM {table} f WHERE {negative}")
        return _result(bad, "fact rows with a negative metric")

    checks = [facts_from_succeeded_runs, metrics_not_negative]
    if rt == "pipeline_overview":

        @asset_check(asset=rt, name="stage_rows_complete",
                     description="each tenant's latest SUCCEEDED run has a row for every stage in its scope")
        def stage_rows_complete(dyno_db: ReportDatabase) -> AssetCheckResult:
            bad = _count(dyno_db.engine(), STAGE_ROWS_COMPLETE_SQL)
            return _result(bad, "stages missing from the latest runs (a stage added since shows here too)",
                           AssetCheckSeverity.WARN)

        checks.append(stage_rows_complete)
    return checks


def all_report_checks() -> list[AssetChecksDefinition]:
    return [check for _, report in sorted(REGISTRY.items()) for check in report_checks(report)]
