"""`dyno-reports show` and `dyno-reports trend`: reading stored runs back, as tables, CSV or a chart.

Nothing here writes to the database. matplotlib is imported only by `trend --png`.
"""

import json
from typing import Any

import click

from dyno_reports.core.errors import DynoError, InputError, UnknownTenant, shown
from dyno_reports.core.tenant_calendar import TenantCalendar
from dyno_reports.engine import run_window
from dyno_reports.engine.run_request import options_dict, parse_tenant_id
from dyno_reports.read import names, results, text_table, trend
from dyno_reports.reports import get_report
from dyno_reports.reports.base import CADENCES
from dyno_reports.reports.options import parse_options
from dyno_reports.storage import db, migrate

# id column -> its header beside the id (the name column in CSV, the label column in text)
NAME_HEADERS = {"pipeline_id": "pipeline", "stage_id": "stage", "principal_id": "owner"}
PERIOD_HEADERS = {"week": "week from", "month": "month", "quarter": "quarter"}
# `show` turns a facts table wider than this (characters) with at most TURNED_MAX_ROWS rows.
WIDE_TABLE = 160
TURNED_MAX_ROWS = 8


@click.command("show", help="Print one report run: its header, then its facts with names beside ids.")
@click.argument("run_id", metavar="RUN_ID")
@click.option("--csv", "as_csv", is_flag=True, help="Only the facts, as CSV: each id column with a name column.")
def show_command(run_id: str, as_csv: bool) -> None:
    parsed = results.parse_run_id(run_id)
    with db.get_engine().connect() as conn:
        migrate.require_head(conn)
        header = results.run_header(conn, parsed)
        report = get_report(header.report_type)
        run_names = names.run_names(conn, report.fact_table, header.tenant_id, parsed)
        facts = [tuple(row[1:]) for row in conn.execute(results.facts_query(report, header.tenant_id, [parsed]))]
    columns = report.fact_columns
    if as_csv:
        if header.status != "SUCCEEDED":
            raise DynoError(f"report run {parsed} is {header.status}, it has no facts: {header.error_message or ''}")
        csv_headers = [h for c in columns for h in ((c, NAME_HEADERS[c]) if c in NAME_HEADERS else (c,))]
        csv_rows = [_csv_cells(run_names, columns, row) for row in facts]
        click.echo(text_table.csv_text(csv_headers, csv_rows), nl=False)
        return
    for label, value in _header_lines(header, report, run_names.tenant, len(facts)):
        click.echo(f"{label:<10} {value}")
    if header.status == "SUCCEEDED":
        click.echo("")
        for line in _facts_lines(report, run_names, facts):
            click.echo(line)


def _header_lines(header: Any, report: Any, tenant_name: str | None, fact_rows: int) -> list[tuple[str, str]]:
    params = header.input_params or {}
    options = params.get("options", {})
    period = run_window.local_reading(
        recorded_calendar(params), header.period_start, header.period_end, header.period_grain
    )
    if params.get("so_far") is True:
        period += "  so far: the period had not ended when this ran"
    lines = [
        ("report", f"{report.report_type}  ({report.title})"),
        ("run", f"{header.run_id}  {header.status}"),
        ("tenant", f"{tenant_name or '(not in crm.tenant)'}  ({header.tenant_id})"),
        ("period", period),
        ("utc", results.period_text(header.period_start, header.period_end)),
        ("options", json.dumps(options, sort_keys=True)),
        ("generated", header.generated_at.isoformat()),
        ("dagster", f"run {header.dagster_run_id}" if header.dagster_run_id else "- (not run by Dagster)"),
    ]
    if header.status == "FAILED":
        lines.append(("error", text_table.cell(header.error_message)))
    elif header.status == "SUCCEEDED":
        lines.append(("facts", f"{fact_rows} row(s)"))
    return lines


def recorded_calendar(input_params: dict[str, Any]) -> TenantCalendar:
    """The calendar a run's window was resolved in, as its input_params record it; UTC (the default calendar)
    for runs made before runs recorded one, and for a record this Python cannot read (a zone its tzdata lacks)."""
    try:
        return TenantCalendar.from_json(input_params["calendar"])
    except (KeyError, InputError):
        return TenantCalendar()


def _facts_lines(report: Any, run_names: names.RunNames, facts: list[tuple]) -> list[str]:
    """The facts as a table; turned a quarter (one column per fact row, one line per metric) when a row
    would be wider than WIDE_TABLE and there are few rows: a wide report such as a movement waterfall
    then reads top to bottom."""
    columns = report.fact_columns
    cells = [[_text_cell(run_names, c, v) for c, v in zip(columns, row, strict=True)] for row in facts]
    lines = text_table.aligned([NAME_HEADERS.get(c, c) for c in columns], cells, [c in report.metrics for c in columns])
    if max(map(len, lines)) <= WIDE_TABLE or not 0 < len(facts) <= TURNED_MAX_ROWS:
        return lines
    dimensions = len(report.group_columns)
    headers = ["", *(" / ".join(row[:dimensions]) for row in cells)]
    turned = [[metric] + [row[dimensions + i] for row in cells] for i, metric in enumerate(report.metrics)]
    return text_table.aligned(headers, turned, [False] + [True] * len(cells))


def _text_cell(run_names: names.RunNames, column: str, value: Any) -> str:
    if column in NAME_HEADERS:
        return text_table.cell(run_names.label(column, value))
    return text_table.cell(value)


def _csv_cells(run_names: names.RunNames, columns: tuple[str, ...], row: tuple) -> list[Any]:
    cells: list[Any] = []
    for column, value in zip(columns, row, strict=True):
        cells.append(value)
        if column in NAME_HEADERS:
            cells.append(run_names.name_of(column, value) or "")
    return cells


@click.command(
    "trend",
    help="A metric of REPORT over successive periods of the tenant's calendar (its weeks, months or fiscal "
    "quarters, in its time zone): each period from the latest SUCCEEDED run of exactly that period and options, "
    "with its change from the previous period. Periods without such a run say `no run`.",
)
@click.argument("report_type", metavar="REPORT")
@click.option("--tenant", "tenant_id", required=True, help="Tenant UUID.")
@click.option("--metric", required=True, help="A metric of the report (`dyno-reports list` names them).")
@click.option("--by", "by_text", default="", help="Comma-separated dimensions to group by, e.g. pipeline_id,stage_id.")
@click.option("--cadence", default=None, help="week, month or quarter (fiscal); default: the report's main cadence.")
@click.option("--last", "count", default=8, show_default=True, type=int, help="How many periods.")
@click.option(
    "--through", default=None, help="A local date: end with the period containing it (default: the last closed)."
)
@click.option("--options", "options_json", default=None, help="The runs' options as a JSON object (default: {}).")
@click.option("--csv", "as_csv", is_flag=True, help="CSV instead of a table.")
@click.option("--png", "png_path", default=None, type=click.Path(dir_okay=False), help="Also draw a chart to FILE.")
def trend_command(
    report_type, tenant_id, metric, by_text, cadence, count, through, options_json, as_csv, png_path
) -> None:
    report = get_report(report_type)
    tenant = parse_tenant_id(tenant_id)
    by = tuple(d.strip() for d in by_text.split(",") if d.strip())
    trend.check_metric_and_dimensions(report, metric, by)
    cadence = cadence or report.cadence
    if cadence not in CADENCES:
        raise InputError(f"--cadence must be one of {', '.join(CADENCES)}, got {shown(cadence)}")
    options = parse_options(report.options_model, options_dict(options_json))
    with db.get_engine().connect() as conn:
        migrate.require_head(conn)
        tenant_name = names.tenant_name(conn, tenant)
        calendar = run_window.read_calendar(conn, tenant)
        if tenant_name is None or calendar is None:
            raise UnknownTenant(tenant)
        through_day = calendar.local_date(calendar.parse_bound(through, "--through")) if through else None
        walked = trend.trend_periods(calendar, cadence, count, through_day)
        points = trend.trend(conn, report, tenant, metric, by, [p.window for p in walked], options)
    labels = {p.start: p.label for p in walked}
    if as_csv:
        click.echo(text_table.csv_text(*_csv_table(by, metric, points, labels, calendar.time_zone)), nl=False)
    else:
        zone = calendar.time_zone
        span = f"{len(walked)} {cadence}s {walked[0].first_day} to {walked[-1].end_day} ({zone})"
        click.echo(f"{report.report_type}: {metric} for {tenant_name} ({tenant}), {span}")
        click.echo(f"options {json.dumps(options.canonical(), sort_keys=True)}")
        click.echo("")
        headers = [NAME_HEADERS.get(d, d) for d in by] + [PERIOD_HEADERS[cadence], metric, "change", "run"]
        rows = [_trend_cells(labels[p.period_start], by, p) for p in points]
        for line in text_table.aligned(headers, rows, [False] * (len(by) + 1) + [True, True, False]):
            click.echo(line)
    if png_path:
        from dyno_reports.cli.trend_chart import draw_trend

        draw_trend(png_path, report, metric, tenant_name, by, points, calendar, cadence)
        click.echo(f"chart written to {png_path}", err=True)


def _trend_cells(label: str, by: tuple[str, ...], point: trend.TrendPoint) -> list[str]:
    groups = point.group_labels()
    if point.run_id is None:
        return [*groups, label, "no run", "", "-"]
    value = text_table.cell(point.value)
    run = names.short_id(point.run_id) + (" (so far)" if point.so_far else "")
    return [*groups, label, value, text_table.signed(point.change), run]


def _csv_table(
    by: tuple[str, ...], metric: str, points: list[trend.TrendPoint], labels: dict, zone: str
) -> tuple[list[str], list[list]]:
    """period_start and period_end (UTC instants), the period's label in the tenant's calendar (its header names
    the zone), the groups (an id with its name), the value, its change, the run."""
    headers = ["period_start", "period_end", f"period ({zone})"]
    for dimension in by:
        headers += [dimension, NAME_HEADERS[dimension]] if dimension in NAME_HEADERS else [dimension]
    headers += [metric, "change", "run_id", "so_far"]
    rows = []
    for p in points:
        row: list[Any] = [p.period_start, p.period_end, labels[p.period_start]]
        for dimension, value, label in zip(by, p.group, p.labels, strict=True):
            row += [value, label or ""] if dimension in NAME_HEADERS else [value]
        so_far = "" if p.run_id is None else str(p.so_far).lower()
        rows.append([*row, p.value, p.change, p.run_id, so_far])
    return headers, rows
