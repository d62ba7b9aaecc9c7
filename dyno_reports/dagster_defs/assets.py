"""One asset per registered report: key = report_type, partitioned tenant x period by its cadence.

The body only turns each partition into tenant + `[period_start, period_end)` and
validates it with `executor.build_request` (bad options or an unknown tenant fail
the run before anything is written); the IO manager then executes the requests.
"""

import warnings

from dagster import (
    AssetExecutionContext,
    BetaWarning,
    AssetsDefinition,
    BackfillPolicy,
    Config,
    asset,
)
from pydantic import Field

from dyno_reports import executor
from dyno_reports.dagster_defs.failures import report_failure_hook
from dyno_reports.dagster_defs.partitions import report_partitions, target_of
from dyno_reports.dagster_defs.resources import ReportDatabase
from dyno_reports.reports import REGISTRY
from dyno_reports.reports.base import ReportDefinition

GROUP = "dyno_reports"
POOL = "dyno_source_db"
IO_MANAGER_KEY = "report_io_manager"
MAX_PARTITIONS_PER_RUN = 26  # a tenant's half year of weeks, or two years of months, per backfill run


class ReportConfig(Config):
    """Run config of a report asset (Launchpad: ops.<report_type>.config.options)."""

    options: str = Field(
        default="{}", description='report options as a JSON object, e.g. {"include_closed": true}; {} = defaults'
    )


def report_asset(report: ReportDefinition, start: str) -> AssetsDefinition:
    @asset(
        name=report.report_type,
        group_name=GROUP,
        description=report.description,
        partitions_def=report_partitions(report.cadence, start),
        pool=POOL,
        io_manager_key=IO_MANAGER_KEY,
        backfill_policy=BackfillPolicy.multi_run(max_partitions_per_run=MAX_PARTITIONS_PER_RUN),
        hooks={report_failure_hook},
        kinds={"postgres"},
        metadata={
            "title": report.title,
            "cadence": report.cadence,
            "fact_table": f"reporting.{report.fact_table.name}",
            "options": report.option_fields(),
        },
    )
    def _report(context: AssetExecutionContext, config: ReportConfig, dyno_db: ReportDatabase):
        partitions_def = context.assets_def.partitions_def
        targets = [target_of(partitions_def, key) for key in sorted(context.partition_keys)]
        with dyno_db.engine().connect() as conn:
            requests = {
                t.partition_key: executor.build_request(
                    conn, report.report_type, t.tenant_id,
                    period_start=t.period_start, period_end=t.period_end,
                    options=config.options,
                )
                for t in targets
            }
        context.log.info(f"{report.report_type}: {len(requests)} partition(s) validated")
        return requests

    return _report


def report_assets(start: str) -> list[AssetsDefinition]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", BetaWarning)  # backfill_policy is beta; we rely on multi_run deliberately
        return [report_asset(report, start) for _, report in sorted(REGISTRY.items())]

