"""What a new report needs, checked for every registered report (no DB: files, metadata and migration texts).

The list is docs/reports/README.md's "Adding a report"; PIECES below checks each of its items, under the
same bold names, and a test keeps the two lists the same. A missing piece fails naming the report and it.
"""

import re
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import pytest

from dyno_reports.reports import registry
from dyno_reports.reports.base import ReportDefinition
from dyno_reports.storage.tables import metadata
from dyno_reports_tests.reference import REFERENCES
from dyno_reports_tests.test_report_versions import STATEMENTS

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "docs" / "reports" / "README.md"
MIGRATIONS = ROOT / "dyno_reports" / "storage" / "migrations" / "versions"


def _missing_files(*paths: str) -> str | None:
    absent = [path for path in paths if not (ROOT / path).is_file()]
    return ", ".join(absent) if absent else None


def _migrations_without(pattern: str) -> str | None:
    found = any(re.search(pattern, path.read_text()) for path in MIGRATIONS.glob("[0-9]*.py"))
    return None if found else f"no migration in {MIGRATIONS.relative_to(ROOT)} matches {pattern!r}"


def _definitions_section(name: str) -> str | None:
    text = (ROOT / "docs" / "definitions.md").read_text()
    reports = text.split("\n## The reports\n", 1)[-1].split("\n## ", 1)[0]
    return None if f"\n### {name}\n" in reports else f'no "### {name}" under "## The reports" of docs/definitions.md'


def _report_module(report: ReportDefinition) -> str | None:
    return _missing_files(f"dyno_reports/reports/{report.report_type}/{report.report_type}_executor.py")


def _fact_table(report: ReportDefinition) -> str | None:
    name = f"report_{report.report_type}_fact"
    if metadata.tables.get(f"reporting.{name}") is not report.fact_table:
        return f"reporting.{name} in dyno_reports/storage/tables.py, as REPORT.fact_table"
    return None


def _migration(report: ReportDefinition) -> str | None:
    name = report.report_type
    return _migrations_without(rf"CREATE TABLE reporting\.report_{name}_fact\b") or _migrations_without(
        rf"VALUES \('{name}', 'report_{name}_fact'\)"
    )


def _latest_view(report: ReportDefinition) -> str | None:
    return _migrations_without(rf"VIEW reporting\.report_{report.report_type}_latest\b")


def _reference(report: ReportDefinition) -> str | None:
    name = report.report_type
    absent = _missing_files(f"dyno_reports_tests/reference/{name}.py")
    return absent or (None if name in REFERENCES else "its entry in dyno_reports_tests/reference REFERENCES")


def _tests(report: ReportDefinition) -> str | None:
    return _missing_files(f"dyno_reports_tests/test_{report.report_type}.py")


def _design_docs(report: ReportDefinition) -> str | None:
    name = report.report_type
    absent = _missing_files(*(f"docs/reports/{name}_design{part}.md" for part in ("", "_details", "_final")))
    row = f"| {name} | [design]({name}_design.md) |"
    return absent or (None if row in README.read_text() else f"its row in the table of {README.relative_to(ROOT)}")


def _sql_snapshot(report: ReportDefinition) -> str | None:
    return _missing_files(f"dyno_reports/reports/{report.report_type}/{report.report_type}.sql")


def _statement_version(report: ReportDefinition) -> str | None:
    found = report.report_type in STATEMENTS
    return None if found else "its entry in STATEMENTS of dyno_reports_tests/test_report_versions.py"


def _definitions(report: ReportDefinition) -> str | None:
    return _definitions_section(report.report_type)


# Each piece: what is missing (files, entries), or None when it is there.
PIECES: dict[str, Callable[[ReportDefinition], str | None]] = {
    "Report module": _report_module,
    "Fact table": _fact_table,
    "Migration": _migration,
    "Latest view": _latest_view,
    "Reference": _reference,
    "Tests": _tests,
    "Design docs": _design_docs,
    "SQL snapshot": _sql_snapshot,
    "Statement version": _statement_version,
    "Definitions": _definitions,
}


@pytest.mark.parametrize("piece", sorted(PIECES))
@pytest.mark.parametrize("report_type", sorted(registry()))
def test_every_report_has_every_piece(report_type, piece):
    missing = PIECES[piece](registry()[report_type])
    assert missing is None, f"report {report_type} lacks its {piece}: {missing} (docs/reports/README.md)"


def test_the_readmes_list_is_the_one_checked_here():
    section = README.read_text().split("\n## Adding a report\n", 1)[-1].split("\n## ", 1)[0]
    listed = re.findall(r"^\d+\. \*\*([^*]+)\*\*:", section, flags=re.MULTILINE)
    assert listed == list(PIECES), f"docs/reports/README.md lists {listed}; this test checks {list(PIECES)}"


def test_a_report_with_none_of_the_pieces_lacks_every_one():
    stranger = replace(next(iter(registry().values())), report_type="no_such_report")
    assert [piece for piece, missing in PIECES.items() if missing(stranger) is None] == []
