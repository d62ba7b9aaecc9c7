"""The report registry: every report the engine knows, by its stable `report_type`.

Each report lives in `reports/<report_type>_executor.py` (the methodology's naming)
and declares a module-level `REPORT`; the registry collects them, so adding a
report means adding its module (and its fact table migration), nothing else.

Loading is lazy: `get_report(name)` imports that report's module alone (a run needs one report, and each
module builds its options model and SQL on import); `REGISTRY` imports them all when first read.
"""

import importlib
import pkgutil
import re
from functools import cache
from typing import TYPE_CHECKING

from dyno_reports.errors import InputError, shown

if TYPE_CHECKING:
    from dyno_reports.reports.base import ReportDefinition

MODULE_SUFFIX = "_executor"
_REPORT_TYPE = re.compile(r"[a-z][a-z0-9_]*")


@cache
def report_types() -> tuple[str, ...]:
    """Every report type, from the module names alone (nothing imported)."""
    modules = (m.name for m in pkgutil.iter_modules(__path__) if m.name.endswith(MODULE_SUFFIX))
    return tuple(sorted(name.removesuffix(MODULE_SUFFIX) for name in modules))


@cache
def _load(report_type: str) -> "ReportDefinition":
    module = report_type + MODULE_SUFFIX
    report = importlib.import_module(f"{__name__}.{module}").REPORT
    if report.report_type != report_type:
        raise ValueError(f"module {module} declares report {report.report_type!r}")
    return report


@cache
def _registry() -> "dict[str, ReportDefinition]":
    return {report_type: _load(report_type) for report_type in report_types()}


def __getattr__(name: str) -> "dict[str, ReportDefinition]":
    if name == "REGISTRY":  # `from dyno_reports.reports import REGISTRY` loads every report, once
        return _registry()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def get_report(report_type: str) -> "ReportDefinition":
    if isinstance(report_type, str) and _REPORT_TYPE.fullmatch(report_type) and report_type in report_types():
        return _load(report_type)
    known = ", ".join(report_types())
    raise InputError(f"unknown report {shown(report_type)} (known: {known})")
