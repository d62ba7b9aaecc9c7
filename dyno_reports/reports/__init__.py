"""The report registry: every report the engine knows, by its stable `report_type`."""

from dyno_reports.errors import InputError
from dyno_reports.reports.base import ReportDefinition
from dyno_reports.reports.pipeline_overview_executor import REPORT as PIPELINE_OVERVIEW

REGISTRY: dict[str, ReportDefinition] = {
    report.report_type: report
    for report in (PIPELINE_OVERVIEW,)
}


def get_report(report_type: str) -> ReportDefinition:
    try:
        return REGISTRY[report_type]
    except KeyError:
        known = ", ".join(sorted(REGISTRY))
        raise InputError(f"unknown report {report_type!r} (known: {known})") from None
