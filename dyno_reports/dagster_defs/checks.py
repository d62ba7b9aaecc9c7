"""Asset checks on the facts this Dagster run wrote: each report's `fact_checks` (reports/fact_checks.py:
the generic ones, then the report's own) as Dagster check specs and results.

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
from sqlalchemy import Engine
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.sql import Select

from dyno_reports.reports.base import ReportDefinition
from dyno_reports.reports.fact_checks import FactCheck, all_checks, run_count


def _count(engine: Engine, query: Select) -> int:
    with engine.connect() as conn:
        return int(conn.execute(query).scalar_one())


def _result(check: FactCheck, asset: str, bad: int, runs: int) -> AssetCheckResult:
    return AssetCheckResult(
        check_name=check.name,
        asset_key=asset,
        passed=bad == 0,
        severity=AssetCheckSeverity.WARN if check.warn_only else AssetCheckSeverity.ERROR,
        metadata={"offending_rows": bad, "report_runs_checked": runs},
        description=f"{bad} {check.offending}"
        if bad
        else f"no {check.offending} in {runs} report run(s) of this Dagster run",
    )


def check_specs(report: ReportDefinition, asset: str) -> list[AssetCheckSpec]:
    """The report's checks, declared on its asset `asset` (`@asset(check_specs=...)`; one per cadence)."""
    return [AssetCheckSpec(check.name, asset=asset, description=check.description) for check in all_checks(report)]


def check_results(
    report: ReportDefinition, asset: str, engine: Engine, dagster_run_id: str, selected: set[str]
) -> Iterator[AssetCheckResult]:
    """The selected checks' results on the facts `dagster_run_id` wrote (after the IO manager stored them), for
    the asset `asset` (a Dagster run runs one cadence of a report: its report runs are this asset's)."""
    runs: int | None = None
    for check in all_checks(report):
        if check.name not in selected:
            continue
        try:
            runs = _count(engine, run_count(dagster_run_id, report.report_type)) if runs is None else runs
            bad = _count(engine, check.query(dagster_run_id))
        except SQLAlchemyError as exc:
            yield _not_evaluated(check.name, asset, exc)
            continue
        yield _result(check, asset, bad, runs)


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
