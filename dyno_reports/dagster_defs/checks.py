"""Asset checks on the facts this Dagster run wrote: generic per report, plus pipeline_overview's stage rows
and pipeline_movement's balance.

Checks of a partitioned asset run once per run without a partition, so each
looks at the report runs whose `dagster_run_id` is this run (indexed), and at
their facts through the fact table's `(run_id, ...)` key: never a scan of the
whole fact table. They are declared on the report's asset and evaluated in its
own step, right after the IO manager stored the facts (the asset body yields its
output, then the results): no step of their own to start and record. A check whose
query fails (the database unreachable, say) is a failed result of WARN severity
saying so, never a failed step: every partition has committed by then, and a
failed step would be re-executed.
"""

from collections.abc import Iterator

from dagster import (
    AssetCheckResult,
    AssetCheckSeverity,
    AssetCheckSpec,
)
from sqlalchemy import Engine, Text, and_, cast, func, not_, or_, select, true
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.sql import ColumnElement, Select

from dyno_reports.reports.base import ReportDefinition
from dyno_reports.reports.pipeline_movement_executor import ADDED, AMOUNT_ONLY, TAKEN
from dyno_reports.storage.tables import pipeline_movement_fact, pipeline_overview_fact, report_run, stage


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


def unbalanced_movement_facts(dagster_run_id: str) -> Select:
    """pipeline_movement fact rows of this Dagster run where start + added - taken != end (amounts or counts)."""
    fact = pipeline_movement_fact
    runs = _runs_of(dagster_run_id, "pipeline_movement").subquery()

    def balance(measure: str, movements: tuple[str, ...]) -> ColumnElement:
        total: ColumnElement = fact.c[f"start_{measure}"]
        for movement in movements:
            column = fact.c[f"{movement}_{measure}"]
            total = total + column if movement in ADDED else total - column
        return total

    amounts_off = balance("amount", ADDED + TAKEN) != fact.c.end_amount
    counts = tuple(m for m in ADDED + TAKEN if m not in AMOUNT_ONLY)
    counts_off = balance("count", counts) != fact.c.end_count
    return (
        select(func.count())
        .select_from(fact.join(runs, and_(runs.c.run_id == fact.c.run_id, runs.c.tenant_id == fact.c.tenant_id)))
        .where(or_(amounts_off, counts_off))
    )


def check_specs(report: ReportDefinition, asset: str) -> list[AssetCheckSpec]:
    """The report's checks, declared on its asset `asset` (`@asset(check_specs=...)`; one per cadence)."""
    rt = report.report_type
    specs = [
        AssetCheckSpec(
            "facts_from_succeeded_runs",
            asset=asset,
            description="every fact row this Dagster run wrote belongs to a SUCCEEDED run of the same tenant",
        ),
        AssetCheckSpec(
            "metrics_not_negative",
            asset=asset,
            description="no negative count, amount, rate or duration in the facts this Dagster run wrote",
        ),
    ]
    if rt == "pipeline_overview":
        specs.append(
            AssetCheckSpec(
                "stage_rows_complete",
                asset=asset,
                description="each SUCCEEDED run of this Dagster run has a row for every stage in its scope",
            )
        )
    if rt == "pipeline_movement":
        specs.append(
            AssetCheckSpec(
                "movement_rows_balance",
                asset=asset,
                description="every fact row this Dagster run wrote balances: start + created + reopened + "
                "moved_in + increased - decreased - moved_out - won - lost - deleted = end, for amounts, "
                "and without increased/decreased for counts",
            )
        )
    return specs


def check_results(
    report: ReportDefinition, asset: str, engine: Engine, dagster_run_id: str, selected: set[str]
) -> Iterator[AssetCheckResult]:
    """The selected checks' results on the facts `dagster_run_id` wrote (after the IO manager stored them), for
    the asset `asset` (a Dagster run runs one cadence of a report: its report runs are this asset's)."""
    rt = report.report_type
    checks = [
        (
            "facts_from_succeeded_runs",
            lambda: facts_not_from_succeeded_runs(report, dagster_run_id),
            "fact rows of a run that is not SUCCEEDED or of another tenant",
            AssetCheckSeverity.ERROR,
        ),
        (
            "metrics_not_negative",
            lambda: negative_metric_facts(report, dagster_run_id),
            "fact rows with a negative metric",
            AssetCheckSeverity.ERROR,
        ),
        (
            "stage_rows_complete",
            lambda: stages_missing_from_overview(dagster_run_id),
            "stages missing from the runs' facts",
            AssetCheckSeverity.WARN,
        ),
        (
            "movement_rows_balance",
            lambda: unbalanced_movement_facts(dagster_run_id),
            "fact rows that do not balance",
            AssetCheckSeverity.ERROR,
        ),
    ]
    runs: int | None = None
    for name, query, what, severity in checks:
        if name not in selected:
            continue
        try:
            runs = _run_count(engine, dagster_run_id, rt) if runs is None else runs
            bad = _count(engine, query())
        except SQLAlchemyError as exc:
            yield _not_evaluated(name, asset, exc)
            continue
        yield _result(name, asset, bad, what, runs, severity)


def _not_evaluated(name: str, asset: str, exc: SQLAlchemyError) -> AssetCheckResult:
    """A check whose query failed: failed, as a warning, with the reason (the step itself succeeds)."""
    reason = " ".join(str(getattr(exc, "orig", None) or exc).split())[:500]
    return AssetCheckResult(
        check_name=name,
        asset_key=asset,
        passed=False,
        severity=AssetCheckSeverity.WARN,
        metadata={"error": reason},
        description=f"could not be evaluated: {reason}",
    )
