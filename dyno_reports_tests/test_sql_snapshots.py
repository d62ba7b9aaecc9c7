"""The reports' SQL snapshots (dyno_reports/reports/<report>/<report>.sql) against their statements (no DB): each
file is what `make sql-snapshots` writes now, and differs from the statement in whitespace only."""

import re
from dataclasses import replace

import pytest

from dyno_reports.reports import get_report, report_types, sql_snapshots
from dyno_reports.reports.sql_snapshots import MAX_LINE, REGENERATE, REPORTS_DIR, snapshot_path, wrap_line

HEADER_LINES = 4


def assert_snapshot_current(report_type: str) -> None:
    path = snapshot_path(report_type)
    assert path.exists(), f"{path} is missing: run `{REGENERATE}` and commit it"
    assert path.read_text() == sql_snapshots.snapshot_text(report_type), (
        f"{path} differs from {report_type}'s statement: run `{REGENERATE}` "
        f"(python -m dyno_reports.reports.sql_snapshots), review the diff and commit it"
    )


@pytest.mark.parametrize("report_type", report_types())
def test_the_snapshot_is_the_current_statement(report_type):
    assert_snapshot_current(report_type)


def test_every_snapshot_is_of_a_report():
    assert sorted(path.stem for path in REPORTS_DIR.glob("*/*.sql")) == sorted(report_types())


@pytest.mark.parametrize("report_type", report_types())
def test_the_snapshot_differs_from_the_statement_in_whitespace_only(report_type):
    lines = snapshot_path(report_type).read_text().splitlines()
    assert all(line.startswith("-- ") for line in lines[:HEADER_LINES])
    assert "\n".join(lines[HEADER_LINES:]).split() == get_report(report_type).sql.split()
    assert max(len(line) for line in lines) <= MAX_LINE


def test_a_changed_statement_fails_with_the_command_that_regenerates(monkeypatch):
    report = get_report("win_loss")
    changed = replace(report, sql=report.sql.replace("ORDER BY pipeline_id", "ORDER BY  pipeline_id"))
    monkeypatch.setattr(sql_snapshots, "get_report", lambda report_type: changed)
    with pytest.raises(AssertionError, match=re.escape(f"run `{REGENERATE}`")):
        assert_snapshot_current("win_loss")


def test_a_long_line_is_cut_before_its_least_nested_operator():
    line = "    SELECT " + " + ".join(f"f(a{n} * b{n})" for n in range(12)) + " AS total"
    assert wrap_line(line, 60) == [
        "    SELECT f(a0 * b0) + f(a1 * b1) + f(a2 * b2) + f(a3 * b3)",
        "        + f(a4 * b4) + f(a5 * b5) + f(a6 * b6) + f(a7 * b7)",
        "        + f(a8 * b8) + f(a9 * b9) + f(a10 * b10)",
        "        + f(a11 * b11) AS total",
    ]


def test_no_cut_inside_a_quote_or_a_comment():
    literal = "'" + " x" * 40 + "'"
    assert wrap_line(f"  WHERE a = {literal} AND b = 1", 30) == ["  WHERE a =", f"      {literal}", "      AND b = 1"]
    comment = "  -- " + " word" * 20
    assert wrap_line(comment, 30) == [comment]
    assert wrap_line("  aaaa, bbbb -- " + "c" * 30, 20) == ["  aaaa,", "      bbbb", "      -- " + "c" * 30]
