"""One asset per registered report: key = report_type, partitioned tenant x period by its cadence.

The body turns each partition into tenant + `[period_start, period_end)` and
validates it with `executor.build_request`; the IO manager then executes the
requests. Options come from the typed run config (`run_config.py`): options the
report refuses fail the whole run with one `Failure` before anything is written,
while a partition whose tenant is refused (say, deleted from crm.tenant) is
handed over as a `RefusedPartition`, so one tenant of a batch cannot stop the others.

Stop means stop: the assets have no Dagster `RetryPolicy` (Dagster 1.13 applies
one to interrupted steps, so a terminated run ran again). A lost connection is
retried where it happens (`retrying.py`: validation here, each partition in the
IO manager); an outage longer than those attempts, refused inputs and failed runs
(SQL errors) end in one `Failure(allow_retries=False)`. A run of a backfill whose
cancel was requested does nothing: it ends CANCELED before validating anything
(`stopping.py`). A crashed run worker is Dagster's run retries' (dagster.yaml).
"""

import warnings

from dagster import (
    AssetExecutionContext,
    AssetsDefinition,
    BackfillPolicy,
    BetaWarning,
    Config,
    Failure,
    Output,
    asset,
)
from sqlalchemy import Connection

from dyno_reports import executor, periods
from dyno_reports.dagster_defs.checks import check_results, check_specs
from dyno_reports.dagster_defs.failures import report_failure_hook
from dyno_reports.dagster_defs.io_manager import RefusedPartition
from dyno_reports.dagster_defs.partitions import report_partitions, target_of
from dyno_reports.dagster_defs.resources import ReportDatabase
from dyno_reports.dagster_defs.retrying import DatabaseOutage, Reconnecting
from dyno_reports.dagster_defs.run_config import options_of, report_config_class
from dyno_reports.dagster_defs.stopping import cancelled_backfill, stop_for_backfill
from dyno_reports.errors import InputError
from dyno_reports.reports import REGISTRY
from dyno_reports.reports.base import ReportDefinition, parse_options

GROUP = "dyno_reports"
POOL = "dyno_source_db"
IO_MANAGER_KEY = "report_io_manager"
# One run holds up to 100 partitions: a tenant's 26-week backfill is one run, and
# "every tenant, one period" (a schedule tick or a UI backfill) is N / 100 runs.
# A run's fixed cost (worker start-up, about 2.5 s of CPU, and its run and step events)
# outweighs the parallelism of smaller runs on the 2 pool slots: measured in
# benchmarks/dagster_ops (the 200-tenant tick, 4 runs of 50 vs 2 of 100).
MAX_PARTITIONS_PER_RUN = 100

PartitionWork = executor.RunRequest | RefusedPartition


def report_asset(report: ReportDefinition, start: str) -> AssetsDefinition:
    report_config = report_config_class(report)

    @asset(
        name=report.report_type,
        group_name=GROUP,
        description=report.description,
        partitions_def=report_partitions(report.cadence, start),
        pool=POOL,
        io_manager_key=IO_MANAGER_KEY,
        backfill_policy=BackfillPolicy.multi_run(max_partitions_per_run=MAX_PARTITIONS_PER_RUN),
        hooks={report_failure_hook},
        check_specs=check_specs(report),
        kinds={"postgres"},
        metadata={
            "title": report.title,
            "cadence": report.cadence,
            "fact_table": f"reporting.{report.fact_table.name}",
            "options": report.option_fields(),
        },
    )
    def _report(context: AssetExecutionContext, config: report_config, dyno_db: ReportDatabase):  # type: ignore[valid-type]
        backfill_id = cancelled_backfill(context.instance, context.run)
        if backfill_id is not None:  # the run ends CANCELED, as its backfill, with no partition run
            raise stop_for_backfill(context.instance, context.run, backfill_id, "this run does no work")
        # Dagster stores a yielded output (the IO manager runs every partition) before it resumes the body,
        # so the checks below see this run's committed facts.
        yield Output(partition_requests(context, report, config, dyno_db))
        selected = {key.name for key in context.selected_asset_check_keys}
        yield from check_results(report, dyno_db.engine(), context.run.run_id, selected)

    return _report


def partition_requests(
    context: AssetExecutionContext, report: ReportDefinition, config: Config, dyno_db: ReportDatabase
) -> dict[str, PartitionWork]:
    """Validated requests by partition key; refused options fail the run at once with one clear message."""
    options = options_of(config)
    try:
        parse_options(report.options_model, options)
    except InputError as exc:
        raise Failure(description=f"{report.report_type}: {exc}", allow_retries=False) from None
    partitions_def = context.assets_def.partitions_def
    keys = sorted(context.partition_keys)

    def validate(conn: Connection) -> dict[str, PartitionWork]:
        work: dict[str, PartitionWork] = {}
        for key in keys:
            target = target_of(partitions_def, key)
            try:
                work[key] = executor.build_request(
                    conn,
                    report.report_type,
                    target.tenant_id,
                    period_start=target.period_start,
                    period_end=target.period_end,
                    options=options,
                )
            except InputError as exc:
                window = periods.Window(target.period_start, target.period_end)
                work[key] = RefusedPartition(report.report_type, target.tenant_id, window, options, exc)
        return work

    try:
        with Reconnecting(dyno_db.engine(), context.log) as database:  # read only: retried whole when cut
            return database.run(validate, f"validating {len(keys)} partition(s)")
    except DatabaseOutage as exc:
        message = f"{report.report_type}: {exc}; no partition ran"
        raise Failure(description=message, allow_retries=False) from None


def report_assets(start: str) -> list[AssetsDefinition]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", BetaWarning)  # backfill_policy is beta; we rely on multi_run deliberately
        return [report_asset(report, start) for _, report in sorted(REGISTRY.items())]
