"""What changed between two runs of one question (`dyno-reports diff`): rows added, removed and changed.

Two runs of a tenant and report compare when they answer the same question (the same input
fingerprint: window and options), e.g. a run and its refresh after a late import; `check_pair` says
what else differs and refuses it unless asked. The comparison is one statement: a FULL OUTER JOIN of
the two runs' fact rows on the report's dimensions, NULL matching NULL (a dimension such as `close_month`
may be NULL), every attribute and metric compared exactly (`IS DISTINCT FROM` on the stored numeric),
differences listed and unchanged rows only counted. Python formats what it returns.
"""

import json
from dataclasses import dataclass
from typing import Any
from uuid import UUID

from sqlalchemy import Connection, Row, Select, case, func, literal, null, or_, select, true

from dyno_reports.core.errors import InputError
from dyno_reports.read import names, results
from dyno_reports.reports.base import ReportDefinition

# The kinds of difference, in the order they are listed; `unchanged` rows are counted only.
CHANGES = ("added", "removed", "changed")


@dataclass(frozen=True)
class ColumnDiff:
    """One compared column of a row: its value in the first run (old) and the second (new), and for a
    changed metric new - old (None for an attribute, a NULL side, an added or removed row)."""

    column: str
    old: Any
    new: Any
    delta: Any


@dataclass(frozen=True)
class RowDiff:
    """A row that differs: `added` (second run only), `removed` (first run only) or `changed`; `columns`
    holds every compared column of an added or removed row, only the changed ones of a changed row."""

    change: str
    dimensions: tuple[Any, ...]
    columns: tuple[ColumnDiff, ...]


@dataclass(frozen=True)
class RunDiff:
    """The rows that differ, in the order listed (added, removed, changed, then by dimensions), and how
    many rows both runs have the same."""

    rows: list[RowDiff]
    unchanged: int

    def count(self, change: str) -> int:
        return sum(1 for row in self.rows if row.change == change)

    def counts_text(self) -> str:
        """`16 rows changed, 0 added, 0 removed, 48 unchanged`, or `no differences: 64 rows unchanged`."""
        if not self.rows:
            return f"no differences: {rows_text(self.unchanged)} unchanged"
        added, removed, changed = (self.count(change) for change in ("added", "removed", "changed"))
        return f"{rows_text(changed)} changed, {added} added, {removed} removed, {self.unchanged} unchanged"


def rows_text(count: int) -> str:
    return f"{count} row" if count == 1 else f"{count} rows"


def compared_columns(report: ReportDefinition) -> tuple[str, ...]:
    """The fact columns compared row by row: the attributes (which follow from the dimensions) and metrics."""
    return report.attributes + report.metrics


def check_pair(first: Row[Any], second: Row[Any], any_question: bool) -> list[str]:
    """Refuse runs that cannot be compared (InputError): not SUCCEEDED, of two tenants or reports, or of two
    questions unless `any_question`. Returns what differs between the questions (empty: the same question)."""
    for header in (first, second):
        if header.status != "SUCCEEDED":
            error = f": {header.error_message}" if header.error_message else ""
            raise InputError(f"report run {header.run_id} is {header.status}, it has no facts to compare{error}")
    if first.tenant_id != second.tenant_id:
        raise InputError(
            f"runs of different tenants: {first.run_id} is of tenant {first.tenant_id}, "
            f"{second.run_id} of tenant {second.tenant_id}"
        )
    if first.report_type != second.report_type:
        raise InputError(
            f"runs of different reports: {first.run_id} is {first.report_type}, {second.run_id} is {second.report_type}"
        )
    differences = question_differences(first, second)
    if differences and not any_question:
        raise InputError(f"runs of different questions: {'; '.join(differences)} (--any-question compares them anyway)")
    return differences


def question_differences(first: Row[Any], second: Row[Any]) -> list[str]:
    """What differs between two runs' questions of one tenant and report: their period, their options."""
    if first.input_fingerprint == second.input_fingerprint:
        return []
    differences = []
    first_period = results.period_text(first.period_start, first.period_end)
    second_period = results.period_text(second.period_start, second.period_end)
    if first_period != second_period:
        differences.append(f"period {first_period} vs {second_period}")
    first_options, second_options = options_text(first), options_text(second)
    if first_options != second_options:
        differences.append(f"options {first_options} vs {second_options}")
    return differences or [f"input fingerprint {first.input_fingerprint[:8]} vs {second.input_fingerprint[:8]}"]


def options_text(header: Row[Any]) -> str:
    return json.dumps((header.input_params or {}).get("options", {}), sort_keys=True)


def diff_query(report: ReportDefinition, tenant_id: UUID, first: UUID, second: UUID) -> Select:
    """The one statement: a row per difference (change, the dimensions, then old_, new_, delta_ and
    changed_ per compared column) ordered added, removed, changed then by dimensions, each carrying the
    count of unchanged rows; no difference at all is one row with that count and NULLs."""
    old, new = _facts(report, tenant_id, first, "old"), _facts(report, tenant_id, second, "new")
    same_row = old.c.row_key == new.c.row_key
    columns = compared_columns(report)
    differs = {c: old.c[c].is_distinct_from(new.c[c]) for c in columns}
    change = case(
        (old.c.run_id.is_(None), literal("added")),
        (new.c.run_id.is_(None), literal("removed")),
        (or_(*differs.values()), literal("changed")),
        else_=literal("unchanged"),
    )
    per_column = []
    for c in columns:
        delta = new.c[c] - old.c[c] if c in report.metrics else null()
        per_column += [old.c[c].label(f"old_{c}"), new.c[c].label(f"new_{c}"), delta.label(f"delta_{c}")]
        per_column.append(differs[c].label(f"changed_{c}"))
    paired = (
        select(
            change.label("change"),
            *(func.coalesce(new.c[d], old.c[d]).label(d) for d in report.dimensions),
            *per_column,
        )
        .select_from(old.join(new, same_row, full=True))
        .cte("paired")
    )
    counted = select(func.count().filter(paired.c.change == "unchanged").label("unchanged")).subquery("counted")
    differing = select(paired).where(paired.c.change != "unchanged").subquery("differing")
    rank = case(*((differing.c.change == kind, i) for i, kind in enumerate(CHANGES)))
    return (
        select(counted.c.unchanged, *differing.c)
        .select_from(counted.outerjoin(differing, true()))
        .order_by(rank, *(differing.c[d] for d in report.dimensions))
    )


def _facts(report: ReportDefinition, tenant_id: UUID, run_id: UUID, name: str) -> Any:
    """The run's fact rows with `row_key`: its dimensions as a jsonb array, equal for two rows exactly when
    every dimension IS NOT DISTINCT FROM the other's (NULL as JSON null). PostgreSQL runs a FULL JOIN only on
    hash- or merge-joinable conditions, which IS NOT DISTINCT FROM is not; jsonb equality is both."""
    table = report.fact_table
    row_key = func.jsonb_build_array(*(table.c[d] for d in report.dimensions)).label("row_key")
    return (
        select(table.c.run_id, row_key, *(table.c[c] for c in report.fact_columns))
        .where(table.c.tenant_id == tenant_id, table.c.run_id == run_id)
        .subquery(name)
    )


def diff_runs(conn: Connection, report: ReportDefinition, tenant_id: UUID, first: UUID, second: UUID) -> RunDiff:
    """The rows of `second` that are not, or not the same, in `first`, and how many are the same."""
    fetched = conn.execute(diff_query(report, tenant_id, first, second)).mappings().all()
    rows = [_row_diff(report, row) for row in fetched if row["change"] is not None]
    return RunDiff(rows=rows, unchanged=fetched[0]["unchanged"])


def _row_diff(report: ReportDefinition, row: Any) -> RowDiff:
    listed = [c for c in compared_columns(report) if row["change"] != "changed" or row[f"changed_{c}"]]
    return RowDiff(
        change=row["change"],
        dimensions=tuple(row[d] for d in report.dimensions),
        columns=tuple(ColumnDiff(c, row[f"old_{c}"], row[f"new_{c}"], row[f"delta_{c}"]) for c in listed),
    )


def both_runs_names(conn: Connection, report: ReportDefinition, tenant_id: UUID, run_ids: list[UUID]) -> names.RunNames:
    """Display names of every named id in either run's facts (a removed row's ids are in the first only)."""
    by_column: dict[str, dict[UUID, str]] = {}
    tenant = None
    for run_id in run_ids:
        run_names = names.run_names(conn, report.fact_table, tenant_id, run_id)
        tenant = run_names.tenant
        for column, named in run_names.by_column.items():
            by_column.setdefault(column, {}).update(named)
    return names.RunNames(tenant=tenant, by_column=by_column)


def summary_line(report: ReportDefinition, diff: RunDiff) -> str:
    """The diff in one line: `3 rows changed, 1 added, 0 removed, 8 unchanged; won_amount +1200.00` (the net
    change of each headline metric that moved: new total - old total), or `no differences: 12 rows unchanged`."""
    counts = diff.counts_text()
    moved = [f"{metric} {delta:+}" for metric in report.headline_metrics if (delta := _net_change(diff, metric))]
    return f"{counts}; {', '.join(moved)}" if moved else counts


def _net_change(diff: RunDiff, metric: str) -> Any:
    """new total - old total of an additive metric, from the rows that differ (NULL counts as nothing)."""
    total: Any = 0
    for row in diff.rows:
        for column in row.columns:
            if column.column == metric:
                total += (column.new or 0) - (column.old or 0)
    return total
