"""The report registry: every report the engine knows, by its stable `report_type`.

Each report lives in `reports/<report_type>_executor.py` (the methodology's naming)
and declares a module-level `REPORT`; the registry collects them, so adding a
report means adding its module (and its fact table migration), nothing else.
"""

import importlib
import pkgutil

from dyno_reports.errors import InputError, shown
from dyno_reports.reports.base import ReportDefinition

MODULE_SUFFIX = "_executor"


def _discover() -> dict[str, ReportDefinition]:
    found = {}
    for module in sorted(m.name for m in pkgutil.iter_modules(__path__) if m.name.endswith(MODULE_SUFFIX)):
        report = importlib.import_module(f"{__name__}.{module}").REPORT
        if module != report.report_type + MODULE_SUFFIX:
            raise ValueError(f"module {module} declares report {report.report_type!r}")
        found[report.report_type] = report
    return found


REGISTRY: dict[str, ReportDefinition] = _discover()


def get_report(report_type: str) -> ReportDefinition:
    try:
        return REGISTRY[report_type]
    except KeyError:
        known = ", ".join(sorted(REGISTRY))
        raise InputError(f"unknown report {shown(report_type)} (known: {known})") from None
