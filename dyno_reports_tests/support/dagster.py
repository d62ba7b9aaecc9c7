"""Dagster pieces the asset tests share: the report resources on a test database, an instance with tenants (no DB)."""

import warnings
from collections.abc import Iterator
from contextlib import contextmanager

from dagster import AssetsDefinition, BetaWarning, DagsterInstance, instance_for_test

from dyno_reports.dagster_defs.assets import report_asset
from dyno_reports.dagster_defs.cadences import ReportAsset
from dyno_reports.dagster_defs.io_manager import ReportRunIOManager
from dyno_reports.dagster_defs.resources import ReportDatabase
from dyno_reports.reports import registry


def report_resources(url: str) -> dict:
    """The resources the report assets need, on the database at `url`."""
    return {"dyno_db": ReportDatabase(database_url=url), "report_io_manager": ReportRunIOManager(database_url=url)}


def report_asset_of(report_type: str, start: str = "2025-01-01", cadence: str | None = None) -> AssetsDefinition:
    """The report's asset of `cadence` (default: its main one) as the definitions build it (partitions from
    `start`)."""
    report = registry()[report_type]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", BetaWarning)  # backfill_policy, as in report_assets
        return report_asset(ReportAsset(report, cadence or report.cadence), start)


@contextmanager
def instance_with_tenants(*tenants: str) -> Iterator[DagsterInstance]:
    """A throwaway Dagster instance whose `tenant` dynamic partitions are `tenants`."""
    with instance_for_test() as instance:
        instance.add_dynamic_partitions("tenant", list(tenants))
        yield instance
