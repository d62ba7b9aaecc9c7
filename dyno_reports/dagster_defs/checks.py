"""Asset checks on the facts this Dagster run wrote: generic per report, plus pipeline_overview's stage rows.

Checks of a partitioned asset run once per run without a partition, so each
looks at the report runs whose `dagster_run_id` is this run (indexed), and at
their facts through the fact table's `(run_id, ...)` key: never a scan of the
whole fact table. A report's checks are one step (a multi-asset check), run in
the run's own process (in-process executor).
"""

from collections.abc import Iterator

from dagster import (
    AssetCheckExecutionContext,
    AssetCheckResult,
    AssetChecksDefinition,
    AssetCheckSeverity,
    AssetCheckSpec,
    multi_asset_check,
)
from sqlalchemy import Engine, Text, and_, cast, func, not_, or_, select, true
from sqlalchemy.sql import Select

from dyno_reports.dagster_defs.resources import ReportDatabase
from dyno_reports.reports import REGISTRY
from dyno_reports.reports.base import ReportDefinition
from dyno_reports.storage.tables import pipeline_overview_fact, report_run, stage


def _count(engine: Engine, query: Select) -> int:
    with engine.connect() as conn:
        return int(conn.execute(query).scalar_one())


def _result(
    name: str, asset: str, bad: int, what: str, runs: int, severity: AssetCheckSeverity = AssetCheckSeverity.ERROR
) -> AssetCheckResult:
    return AssetCheckResult(
        check_name=name,
        asset_key=asset,
        passed=bad == 0,
        severity=severity,
        metadata={"offending_rows": bad, "report_runs_checked": runs},
        description=f"{bad} {what}" if bad else f"no {what} in {runs} report run(s) of this Dagster run",
    )


def _runs_of(dagster_run_id: str, report_type: str) -> Select:
    """The report runs this Dagster run wrote for one report (whatever their status)."""
    return select(report_run.c.run_id, report_run.c.tenant_id, report_run.c.status, report_run.c.input_params).where(
        report_run.c.dagster_run_id == dagster_run_id, report_run.c.report_type == report_type
    )


def _run_count(engine: Engine, dagster_run_id: str, report_type: str) -> int:
    return _count(engine, select(func.count()).select_from(_runs_of(dagster_run_id, report_type).subquery()))


def facts_not_from_succeeded_runs(report: ReportDefinition, dagster_run_id: str) -> Select:
    fact = report.fact_table
    runs = _runs_of(dagster_run_id, report.report_type).subquery()
    return (
        select(func.count())
        .select_from(fact.join(runs, runs.c.run_id == fact.c.run_id))
        .where(or_(runs.c.status != "SUCCEEDED", runs.c.tenant_id != fact.c.tenant_id))
    )


def negative_metric_facts(report: ReportDefinition, dagster_run_id: str) -> Select:
    fact = report.fact_table
    runs = _runs_of(dagster_run_id, report.report_type).subquery()
    return (
        select(func.count())
        .select_from(fact.join(runs, and_(runs.c.run_id == fact.c.run_id, runs.c.tenant_id == fact.c.tenant_id)))
        .where(or_(*(fact.c[m] < 0 for m in report.metrics)))
    )


def stages_missing_from_overview(dagster_run_id: str) -> Select:
    """Stages in a SUCCEEDED pipeline_overview run's scope (its options) that have no fact row."""
    runs = _runs_of(dagster_run_id, "pipeline_overview").where(report_run.c.status == "SUCCEEDED").subquery()
    options = runs.c.input_params["options"]
    include_closed = func.coalesce(options["include_closed"].as_boolean(), False)
    pipeline_ids = options["pipeline_ids"]
    in_scope = and_(
        or_(include_closed, stage.c.kind == "open"),
        or_(
            func.jsonb_typeof(pipeline_ids).is_distinct_from("array"),
            pipeline_ids.has_key(cast(stage.c.pipeline_id, Text)),
        ),
    )
    has_row = (
        select(true())
        .where(
            pipeline_overview_fact.c.run_id == runs.c.run_id,
            pipeline_overview_fact.c.tenant_id == runs.c.tenant_id,
            pipeline_overview_fact.c.stage_id == stage.c.stage_id,
        )
        .exists()
    )
    return (
        select(func.count())
        .select_from(runs.join(stage, stage.c.tenant_id == runs.c.tenant_id))
        .where(in_scope, not_(has_row))
    )


def report_checks(report: ReportDefinition) -> AssetChecksDefinition:
    """The report's checks as one step (each check step costs the run a few stored events)."""
    rt = report.report_type
    specs = [
        AssetCheckSpec(
            "facts_from_succeeded_runs",
            asset=rt,
            description="every fact row this Dagster run wrote belongs to a SUCCEEDED run of the same tenant",
        ),
        AssetCheckSpec(
            "metrics_not_negative",
            asset=rt,
            description="no negative count, amount, rate or duration in the facts this Dagster run wrote",
        ),
    ]
    if rt == "pipeline_overview":
        specs.append(
            AssetCheckSpec(
                "stage_rows_complete",
                asset=rt,
                description="each SUCCEEDED run of this Dagster run has a row for every stage in its scope",
            )
        )

    @multi_asset_check(specs=specs, name=f"{rt}_checks", can_subset=True)
    def _checks(context: AssetCheckExecutionContext, dyno_db: ReportDatabase) -> Iterator[AssetCheckResult]:
        engine, dagster_run_id = dyno_db.engine(), context.run.run_id
        runs = _run_count(engine, dagster_run_id, rt)
        selected = {key.name for key in context.selected_asset_check_keys}
        if "facts_from_succeeded_runs" in selected:
            bad = _count(engine, facts_not_from_succeeded_runs(report, dagster_run_id))
            yield _result(
                "facts_from_succeeded_runs",
                rt,
                bad,
                "fact rows of a run that is not SUCCEEDED or of another tenant",
                runs,
            )
        if "metrics_not_negative" in selected:
            bad = _count(engine, negative_metric_facts(report, dagster_run_id))
            yield _result("metrics_not_negative", rt, bad, "fact rows with a negative metric", runs)
        if "stage_rows_complete" in selected:
            bad = _count(engine, stages_missing_from_overview(dagster_run_id))
            yield _result(
                "stage_rows_complete", rt, bad, "stages missing from the runs' facts", runs, AssetCheckSeverity.WARN
            )

    return _checks


def all_report_checks() -> list[AssetChecksDefinition]:
    return [report_checks(report) for _, report in sorted(REGISTRY.items())]
