"""`dyno-reports diff RUN_A RUN_B`: what changed between two runs of one question, as text or CSV.

The comparison is run_diff.py's one statement; this module reads the two headers and formats. Nothing
here writes to the database.
"""

from typing import Any

import click

from dyno_reports.cli.read import NAME_HEADERS, recorded_calendar
from dyno_reports.engine import run_window
from dyno_reports.read import names, results, run_diff, text_table
from dyno_reports.reports import get_report
from dyno_reports.reports.base import ReportDefinition
from dyno_reports.storage import db, migrate

# The value columns each block of the text shows, after the dimensions and the metric's name.
BLOCK_VALUES = {"added": ("new",), "removed": ("old",), "changed": ("old", "new", "change")}


@click.command(
    "diff",
    help="What changed from RUN_A to RUN_B, two SUCCEEDED runs of one question (tenant, report, period, "
    "options), e.g. a run and its refresh after a late import: rows added (in RUN_B only), removed (in RUN_A "
    "only) and changed, metric by metric, by dimension; unchanged rows are counted.",
)
@click.argument("run_a", metavar="RUN_A")
@click.argument("run_b", metavar="RUN_B")
@click.option(
    "--csv", "as_csv", is_flag=True, help="One row per difference: change, the dimensions, metric, old, new, delta."
)
@click.option(
    "--any-question",
    is_flag=True,
    help="Also compare runs of different questions (another period or options) of one tenant and report.",
)
def diff_command(run_a: str, run_b: str, as_csv: bool, any_question: bool) -> None:
    first, second = results.parse_run_id(run_a), results.parse_run_id(run_b)
    with db.get_engine().connect() as conn:
        migrate.require_head(conn)
        headers = results.run_header(conn, first), results.run_header(conn, second)
        differences = run_diff.check_pair(*headers, any_question)
        report = get_report(headers[0].report_type)
        tenant_id = headers[0].tenant_id
        diff = run_diff.diff_runs(conn, report, tenant_id, first, second)
        run_names = run_diff.both_runs_names(conn, report, tenant_id, [first, second])
    if as_csv:
        click.echo(text_table.csv_text(*_csv_table(report, run_names, diff)), nl=False)
        return
    for label, value in _header_lines(report, run_names.tenant, headers, differences):
        click.echo(f"{label:<10} {value}".rstrip())
    for change in run_diff.CHANGES:
        rows = [row for row in diff.rows if row.change == change]
        if rows:
            click.echo("")
            click.echo(f"{change} ({run_diff.rows_text(len(rows))})")
            for line in _block_lines(report, run_names, change, rows):
                click.echo(line)
    click.echo("")
    click.echo(diff.counts_text())


def _header_lines(
    report: ReportDefinition, tenant_name: str | None, headers: tuple[Any, Any], differences: list[str]
) -> list[tuple[str, str]]:
    """Report and tenant, then the period, UTC window and options (once when both runs share them, else one
    line per run), then each run: id, generated_at, known_at (when recorded), older or newer, so far."""
    first, second = headers
    lines = [
        ("report", f"{report.report_type}  ({report.title})"),
        ("tenant", f"{tenant_name or '(not in crm.tenant)'}  ({first.tenant_id})"),
    ]
    readings = {
        "period": lambda h: run_window.local_reading(
            recorded_calendar(h.input_params or {}), h.period_start, h.period_end, h.period_grain
        ),
        "utc": lambda h: results.period_text(h.period_start, h.period_end),
        "options": run_diff.options_text,
    }
    for label, read in readings.items():
        value_a, value_b = read(first), read(second)
        lines += [(label, value_a)] if value_a == value_b else [(f"{label} A", value_a), (f"{label} B", value_b)]
    if differences:
        lines.append(("question", "different (--any-question): " + "; ".join(differences)))
    for name, header, other in (("A", first, second), ("B", second, first)):
        lines.append((f"run {name}", _run_text(header, other)))
    return lines


def _run_text(header: Any, other: Any) -> str:
    parts = [str(header.run_id), f"generated {header.generated_at.isoformat()}"]
    known_at = header._mapping.get("known_at")  # recorded by runs once report_run has the column
    if known_at is not None:
        parts.append(f"known at {known_at.isoformat()}")
    if header.generated_at != other.generated_at:
        parts.append("older" if header.generated_at < other.generated_at else "newer")
    if (header.input_params or {}).get("so_far") is True:
        parts.append("so far: the period had not ended when this ran")
    return "  ".join(parts)


def _block_lines(report: ReportDefinition, run_names: names.RunNames, change: str, rows: list) -> list[str]:
    """A block as a table: the dimensions (names beside ids), the column compared, its value(s)."""
    values = BLOCK_VALUES[change]
    headers = [NAME_HEADERS.get(d, d) for d in report.dimensions] + ["metric", *values]
    cells = []
    for row in rows:
        dimensions = [_dimension_cell(run_names, d, v) for d, v in zip(report.dimensions, row.dimensions, strict=True)]
        for compared in row.columns:
            shown_values = {
                "old": text_table.cell(compared.old),
                "new": text_table.cell(compared.new),
                "change": text_table.signed(compared.delta),
            }
            cells.append([*dimensions, compared.column, *(shown_values[v] for v in values)])
    right = [False] * (len(report.dimensions) + 1) + [True] * len(values)
    return text_table.aligned(headers, cells, right)


def _dimension_cell(run_names: names.RunNames, column: str, value: Any) -> str:
    if column in NAME_HEADERS:
        return text_table.cell(run_names.label(column, value))
    return text_table.cell(value)


def _csv_table(
    report: ReportDefinition, run_names: names.RunNames, diff: run_diff.RunDiff
) -> tuple[list[str], list[list]]:
    """`change`, each dimension (an id column followed by its name, as `show --csv`), `metric`, `old`, `new`,
    `delta`: one row per compared column of an added or removed row, per changed column of a changed row."""
    headers = ["change"]
    for dimension in report.dimensions:
        headers += [dimension, NAME_HEADERS[dimension]] if dimension in NAME_HEADERS else [dimension]
    headers += ["metric", "old", "new", "delta"]
    rows = []
    for row in diff.rows:
        dimensions: list[Any] = []
        for dimension, value in zip(report.dimensions, row.dimensions, strict=True):
            named = [value, run_names.name_of(dimension, value) or ""]
            dimensions += named if dimension in NAME_HEADERS else [value]
        for compared in row.columns:
            rows.append([row.change, *dimensions, compared.column, compared.old, compared.new, compared.delta])
    return headers, rows
