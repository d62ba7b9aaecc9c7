"""Checks on the facts one Dagster run wrote, as SQL counting the offending rows: what a report declares in
`ReportDefinition.fact_checks`, and the two every report gets (`generic_checks`).

Pure SQLAlchemy: `dagster_defs/checks.py` turns each into a Dagster asset check. A check looks at the
report runs whose `dagster_run_id` is the run (indexed), and at their facts through the fact table's
`(run_id, ...)` key: never a scan of the whole fact table.
"""

from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from typing import TYPE_CHECKING

from sqlalchemy import and_, func, or_, select
from sqlalchemy.sql import Select

from dyno_reports.storage.tables import report_run

if TYPE_CHECKING:
    from dyno_reports.reports.base import ReportDefinition


@dataclass(frozen=True)
class FactCheck:
    """One check. `name` and `description` are the Dagster check's (its key: never rename one lightly);
    `offending` says what an offending row is, in the result ("fact rows that do not balance");
    `query(dagster_run_id)` counts them (one row, one column); `warn_only`: a failure is a warning."""

    name: str
    description: str
    offending: str
    query: Callable[[str], Select]
    warn_only: bool = False


def runs_of(dagster_run_id: str, report_type: str) -> Select:
    """The report runs this Dagster run wrote for one report (whatever their status)."""
    return select(report_run.c.run_id, report_run.c.tenant_id, report_run.c.status, report_run.c.input_params).where(
        report_run.c.dagster_run_id == dagster_run_id, report_run.c.report_type == report_type
    )


def run_count(dagster_run_id: str, report_type: str) -> Select:
    """How many report runs this Dagster run wrote for one report."""
    return select(func.count()).select_from(runs_of(dagster_run_id, report_type).subquery())


def facts_not_from_succeeded_runs(report: "ReportDefinition", dagster_run_id: str) -> Select:
    fact = report.fact_table
    runs = runs_of(dagster_run_id, report.report_type).subquery()
    return (
        select(func.count())
        .select_from(fact.join(runs, runs.c.run_id == fact.c.run_id))
        .where(or_(runs.c.status != "SUCCEEDED", runs.c.tenant_id != fact.c.tenant_id))
    )


def negative_metric_facts(report: "ReportDefinition", dagster_run_id: str) -> Select:
    fact = report.fact_table
    runs = runs_of(dagster_run_id, report.report_type).subquery()
    return (
        select(func.count())
        .select_from(fact.join(runs, and_(runs.c.run_id == fact.c.run_id, runs.c.tenant_id == fact.c.tenant_id)))
        .where(or_(*(fact.c[m] < 0 for m in report.metrics)))
    )


def generic_checks(report: "ReportDefinition") -> tuple[FactCheck, ...]:
    """The checks every report gets, before its own."""
    return (
        FactCheck(
            "facts_from_succeeded_runs",
            "every fact row this Dagster run wrote belongs to a SUCCEEDED run of the same tenant",
            "fact rows of a run that is not SUCCEEDED or of another tenant",
            partial(facts_not_from_succeeded_runs, report),
        ),
        FactCheck(
            "metrics_not_negative",
            "no negative count, amount, rate or duration in the facts this Dagster run wrote",
            "fact rows with a negative metric",
            partial(negative_metric_facts, report),
        ),
    )


def all_checks(report: "ReportDefinition") -> tuple[FactCheck, ...]:
    """The generic checks, then the report's own; a name used twice is refused."""
    checks = (*generic_checks(report), *report.fact_checks)
    names = [check.name for check in checks]
    if len(set(names)) != len(names):
        raise ValueError(f"{report.report_type}: fact check names {names} repeat one")
    return checks
