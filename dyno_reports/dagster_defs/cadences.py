"""Which Dagster asset stands for which report and cadence.

A report has one asset per cadence it declares (`ReportDefinition.cadences`, main first): the main cadence's
asset is keyed by the report_type itself (`win_loss`, monthly), each other one by `<report_type>_<cadence
name>` (`win_loss_quarterly`). Every place that goes from an asset (a run's selection, a failure hook's op, a
CLI run's partition) to its report and cadence, or back, goes through `asset_named` and `asset_name`.
"""

from dataclasses import dataclass

from dyno_reports.reports import registry
from dyno_reports.reports.base import ReportDefinition

CADENCE_NAMES = {"week": "weekly", "month": "monthly", "quarter": "quarterly"}


@dataclass(frozen=True)
class ReportAsset:
    """One asset: a report run for one of its cadences."""

    report: ReportDefinition
    cadence: str

    @property
    def name(self) -> str:
        return asset_name(self.report, self.cadence)


def asset_name(report: ReportDefinition, cadence: str) -> str:
    """`report_type` for the report's main cadence, else `<report_type>_<weekly|monthly|quarterly>`."""
    return report.report_type if cadence == report.cadences[0] else f"{report.report_type}_{CADENCE_NAMES[cadence]}"


def report_assets_by_name() -> dict[str, ReportAsset]:
    """Every asset of the registry, by name (sorted by report, then the report's cadences in order)."""
    return {
        asset_name(report, cadence): ReportAsset(report, cadence)
        for _, report in sorted(registry().items())
        for cadence in report.cadences
    }


def asset_named(name: str) -> ReportAsset | None:
    """The report and cadence of the asset `name`; None for a name that is no report asset."""
    return report_assets_by_name().get(name)


def assets_of_cadence(cadence: str) -> list[ReportAsset]:
    return [asset for asset in report_assets_by_name().values() if asset.cadence == cadence]
