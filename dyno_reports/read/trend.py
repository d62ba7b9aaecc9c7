"""Trends: one metric of a report over successive periods of a cadence, compared run to run in PostgreSQL.

The periods are the tenant's own weeks, months or fiscal quarters (`trend_periods`, from its calendar). Each
period reads the latest SUCCEEDED run of exactly that tenant, report, period
and options (`reporting.report_run_latest`, matched by input fingerprint: a final
run before a so-far one, whose period had not ended when it ran); nothing
is stored (the methodology computes trends by comparing runs). One statement
builds the grid periods x dimension values, the value of each cell, its change
from the previous period (`lag`), and the names of the ids (tenant-scoped joins).

A metric is summed over the rows of a group when summing means something: counts
and amounts (`additive_metrics`). Any other metric (a rate, an average, days) is
shown only for groups that single out one fact row per run, so `--by` must name
enough dimensions for that.
"""

from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any
from uuid import UUID

from sqlalchemy import (
    BigInteger,
    Connection,
    Integer,
    Numeric,
    Text,
    and_,
    case,
    cast,
    column,
    func,
    select,
    true,
    values,
)
from sqlalchemy.dialects.postgresql import TIMESTAMP

from dyno_reports.core import periods
from dyno_reports.core.errors import InputError, shown
from dyno_reports.core.tenant_calendar import Period, TenantCalendar
from dyno_reports.read import names, results, text_table
from dyno_reports.reports.base import CADENCES, ReportDefinition
from dyno_reports.reports.options import ReportOptions
from dyno_reports.storage.tables import MONEY

MAX_PERIODS = 520


@dataclass(frozen=True)
class TrendPoint:
    """One cell: a period and a group of dimension values (`group`: ids, `labels`: their names or None)."""

    period_start: datetime
    period_end: datetime
    run_id: UUID | None
    group: tuple[Any, ...]
    labels: tuple[str | None, ...]
    value: Decimal | int | None
    change: Decimal | int | None
    so_far: bool = False  # the period's run is a so-far run: it ran before the period ended

    def group_labels(self) -> list[str]:
        """Each dimension value as `name (short id)` when it has a name, else the value itself ("none" for NULL)."""
        return [
            f"{label} ({names.short_id(value)})" if label is not None else (text_table.cell(value) or "none")
            for label, value in zip(self.labels, self.group, strict=True)
        ]


def additive_metrics(report: ReportDefinition) -> tuple[str, ...]:
    """The metrics a sum over fact rows means something for: counts, and money that is not an average."""
    additive = []
    for name in report.metrics:
        sql_type = report.fact_table.c[name].type
        is_count = isinstance(sql_type, Integer)
        is_money = isinstance(sql_type, Numeric) and (sql_type.precision, sql_type.scale) == (
            MONEY.precision,
            MONEY.scale,
        )
        if is_count or (is_money and not name.startswith("avg_")):
            additive.append(name)
    return tuple(additive)


def check_metric_and_dimensions(report: ReportDefinition, metric: str, by: tuple[str, ...]) -> None:
    """InputError for an unknown metric or dimension, a repeated dimension, or a non-additive metric without --by."""
    if metric not in report.metrics:
        raise InputError(f"{report.report_type} has no metric {shown(metric)} (metrics: {', '.join(report.metrics)})")
    for dimension in by:
        if dimension not in report.group_columns:
            known = ", ".join(report.group_columns)
            raise InputError(f"{report.report_type} has no dimension {shown(dimension)} (dimensions: {known})")
    if len(set(by)) != len(by):
        raise InputError("--by names a dimension more than once")
    if not by and metric not in additive_metrics(report):
        raise InputError(
            f"{metric} is not a count or an amount, so it cannot be summed over {report.report_type}'s rows: "
            f"group it with --by (dimensions: {','.join(report.group_columns)})"
        )


def trend_periods(
    calendar: TenantCalendar, cadence: str, count: int, through: date | None = None, now: datetime | None = None
) -> list[Period]:
    """`count` successive periods of the cadence in the tenant's calendar (its weeks, months or fiscal
    quarters), oldest first, ending with the period containing the local date `through`, else with the
    last one closed at `now` (default: the current instant)."""
    if not 1 <= count <= MAX_PERIODS:
        raise InputError(f"--last must be from 1 to {MAX_PERIODS}, got {count}")
    if cadence not in CADENCES:
        raise InputError(f"unknown cadence {shown(cadence)} (cadences: {', '.join(CADENCES)})")
    if through is None:
        last = calendar.last_closed(cadence, now or datetime.now(UTC))
    else:
        last = calendar.period(cadence, through)
    return calendar.periods_ending(last, count)


def trend(
    conn: Connection,
    report: ReportDefinition,
    tenant_id: UUID,
    metric: str,
    by: tuple[str, ...],
    windows: list[periods.Window],
    options: ReportOptions,
) -> list[TrendPoint]:
    """The grid periods x groups, ordered by group (names, then ids) and period."""
    check_metric_and_dimensions(report, metric, by)
    additive = metric in additive_metrics(report)
    rows = conn.execute(_trend_query(report, tenant_id, metric, by, windows, options, additive)).all()
    if not additive and any(row.fact_rows > 1 for row in rows):
        raise InputError(
            f"{metric} is not a count or an amount and the groups of --by {','.join(by) or '(none)'} hold several "
            f"fact rows per run: add dimensions to --by (dimensions: {','.join(report.group_columns)})"
        )
    return [
        TrendPoint(
            row.period_start,
            row.period_end,
            row.run_id,
            tuple(row._mapping[d] for d in by),
            tuple(row._mapping[f"{d}_name"] if d in names.NAMED_ID_COLUMNS else None for d in by),
            row.value,
            row.change,
            bool(row.so_far),
        )
        for row in rows
    ]


def _trend_query(report, tenant_id, metric, by, windows, options, additive):
    fact = report.fact_table
    period_rows = [(w.start, w.end, results.fingerprint_of(report, tenant_id, w, options)) for w in windows]
    wanted = values(
        column("period_start", TIMESTAMP(timezone=True)),
        column("period_end", TIMESTAMP(timezone=True)),
        column("input_fingerprint", Text),
        name="wanted",
    ).data(period_rows)
    latest = results.report_run_latest
    runs = (
        select(wanted.c.period_start, wanted.c.period_end, latest.c.run_id, latest.c.so_far)
        .select_from(
            wanted.outerjoin(
                latest,
                and_(
                    latest.c.tenant_id == tenant_id,
                    latest.c.report_type == report.report_type,
                    latest.c.input_fingerprint == wanted.c.input_fingerprint,
                ),
            )
        )
        .cte("runs")
    )
    total: Any = func.sum(fact.c[metric]) if additive else func.min(fact.c[metric])
    if isinstance(fact.c[metric].type, Integer):
        total = cast(total, BigInteger)  # sum(bigint) is numeric in PostgreSQL
    grouped = (
        select(fact.c.run_id, *(fact.c[d] for d in by), total.label("value"), func.count().label("fact_rows"))
        .where(fact.c.tenant_id == tenant_id, fact.c.run_id.in_(select(runs.c.run_id)))
        .group_by(fact.c.run_id, *(fact.c[d] for d in by))
        .cte("grouped")
    )
    groups = select(*(grouped.c[d] for d in by)).distinct().cte("groups") if by else None
    return _grid(runs, grouped, groups, by, tenant_id, additive)


def _grid(runs, grouped, groups, by, tenant_id, additive):
    joined = runs.join(groups, true()) if groups is not None else runs
    match = [grouped.c.run_id == runs.c.run_id]
    match += [grouped.c[d].is_not_distinct_from(groups.c[d]) for d in by] if groups is not None else []
    joined = joined.outerjoin(grouped, and_(*match))
    group_columns = [groups.c[d] for d in by] if groups is not None else []
    name_columns = []
    for dimension in by:
        if dimension in names.NAMED_ID_COLUMNS:
            crm_table, id_name, name_name = names.NAMED_ID_COLUMNS[dimension]
            crm = crm_table.alias(f"{dimension}_names")
            joined = joined.outerjoin(crm, and_(crm.c.tenant_id == tenant_id, crm.c[id_name] == groups.c[dimension]))
            name_columns.append(crm.c[name_name].label(f"{dimension}_name"))
    value = grouped.c.value
    if additive:  # a group absent from a run it could appear in had nothing: 0
        value = case((runs.c.run_id.is_(None), None), else_=func.coalesce(value, 0))
    cells = (
        select(
            runs.c.period_start,
            runs.c.period_end,
            runs.c.run_id,
            runs.c.so_far,
            *group_columns,
            *name_columns,
            value.label("value"),
            func.coalesce(grouped.c.fact_rows, 0).label("fact_rows"),
        )
        .select_from(joined)
        .subquery("cells")
    )
    partition = [cells.c[d] for d in by]
    previous = func.lag(cells.c.value).over(partition_by=partition or None, order_by=cells.c.period_start)
    ordering = [cells.c[f"{d}_name"] for d in by if d in names.NAMED_ID_COLUMNS] + partition
    return select(cells, (cells.c.value - previous).label("change")).order_by(*ordering, cells.c.period_start)
