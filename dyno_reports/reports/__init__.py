"""The report registry: every report the engine knows, by its stable `report_type`.

Each report is one folder, `reports/<report_type>/`: its definition and SQL in `<report_type>_executor.py`
(the methodology's module name) declaring a module-level `REPORT` (its own fact checks included, from the
folder's `checks.py` when it has any), and its SQL snapshot `<report_type>.sql`; the registry collects them.
What else a new report needs (fact table, migration, reference, docs) is listed in docs/reports/README.md,
"Adding a report", and checked by test_new_report_checklist.

Loading is lazy: `get_report(name)` imports that report's module alone (a run needs one report, and each
module builds its options model and SQL on import); `registry()` imports them all on its first call.
"""

import importlib
import pkgutil
import re
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING

from dyno_reports.core.errors import InputError, shown

if TYPE_CHECKING:
    from dyno_reports.reports.base import ReportDefinition

MODULE_SUFFIX = "_executor"
_REPORT_TYPE = re.compile(r"[a-z][a-z0-9_]*")


@cache
def report_types() -> tuple[str, ...]:
    """Every report type: the folders of this package that hold a `<folder>_executor.py` (nothing imported)."""
    folders = (m.name for m in pkgutil.iter_modules(__path__) if m.ispkg)
    return tuple(sorted(name for name in folders if (Path(__path__[0]) / name / f"{name}{MODULE_SUFFIX}.py").is_file()))


@cache
def _load(report_type: str) -> "ReportDefinition":
    module = report_type + MODULE_SUFFIX
    report = importlib.import_module(f"{__name__}.{report_type}.{module}").REPORT
    if report.report_type != report_type:
        raise ValueError(f"module {module} declares report {report.report_type!r}")
    return report


@cache
def registry() -> "dict[str, ReportDefinition]":
    """Every report by report type: each report's module imported, once (the same dict on every call)."""
    return {report_type: _load(report_type) for report_type in report_types()}


def get_report(report_type: str) -> "ReportDefinition":
    if isinstance(report_type, str) and _REPORT_TYPE.fullmatch(report_type) and report_type in report_types():
        return _load(report_type)
    known = ", ".join(report_types())
    raise InputError(f"unknown report {shown(report_type)} (known: {known})")
