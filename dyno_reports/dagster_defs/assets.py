"""One asset per registered report and cadence (`cadences.py`: `win_loss` monthly, `win_loss_quarterly`),
partitioned period slot x tenant.

The body reads the calendars of the run's tenants (one query) and turns each
partition into its tenant's period (`slots.py`: the key's slot read in the
tenant's calendar), validated with `run_request.build_request`; the IO manager then
executes the requests. A partition whose period has not closed in its tenant's
zone, or closed less than the CRM's longest write ago (10 minutes: its run would
not be final), is refused before anything is written (`TooEarlyPartition`: no
header, no facts; the run fails with a message naming the local period, its zone
and when it closes), whatever else the run holds: a slot is due for a tenant once
it closed there and that time has passed, not before. The run config's
`as_known_at` (beside the options) gives every partition's run that K.
Options come from the typed run config (`run_config.py`): options the report
refuses fail the whole run with one `Failure` before anything is written, while
a partition whose tenant is refused (say, deleted from crm.tenant) is handed over
as a `RefusedPartition`, so one tenant of a batch cannot stop the others.

Stop means stop: the assets have no Dagster `RetryPolicy` (Dagster 1.13 applies
one to interrupted steps, so a terminated run ran again). A lost connection is
retried where it happens (`retrying.py`: validation here, each partition in the
IO manager); an outage longer than those attempts, refused inputs and failed runs
(SQL errors) end in one `Failure(allow_retries=False)`. A run of a backfill whose
cancel was requested does nothing: it ends CANCELED before validating anything
(`stopping.py`). A crashed run worker is Dagster's run retries' (dagster.yaml).
"""

import warnings
from datetime import UTC, datetime

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

from dyno_reports.core.errors import InputError
from dyno_reports.dagster_defs.cadences import CADENCE_NAMES, ReportAsset, report_assets_by_name
from dyno_reports.dagster_defs.checks import check_results, check_specs
from dyno_reports.dagster_defs.crm_assets import crm_asset_keys
from dyno_reports.dagster_defs.failures import report_failure_hook
from dyno_reports.dagster_defs.partitions import report_partitions
from dyno_reports.dagster_defs.resources import ReportDatabase
from dyno_reports.dagster_defs.retrying import DatabaseOutage, Reconnecting
from dyno_reports.dagster_defs.run_config import known_at_of, options_of, report_config_class
from dyno_reports.dagster_defs.slots import targets_of
from dyno_reports.dagster_defs.step_work import PartitionWork, RefusedPartition, StepWork, TooEarlyPartition
from dyno_reports.dagster_defs.stopping import cancelled_backfill, stop_for_backfill
from dyno_reports.engine import run_request
from dyno_reports.reports.options import parse_options

GROUP = "dyno_reports"
POOL = "dyno_source_db"
IO_MANAGER_KEY = "report_io_manager"
# One run holds up to 100 partitions: a tenant's 26-week backfill is one run, and
# "every tenant, one period" (a schedule tick or a UI backfill) is N / 100 runs.
# A run's fixed cost (worker start-up, about 2.5 s of CPU, and its run and step events)
# outweighs the parallelism of smaller runs on the 2 pool slots: measured in
# benchmarks/dagster_ops (the 200-tenant tick, 4 runs of 50 vs 2 of 100).
MAX_PARTITIONS_PER_RUN = 100
KEY_READING = {
    "week": "a key `2025-06-02|<tenant>` is the tenant's week containing 2025-06-02 in its own time zone "
    "and week start",
    "month": "a key `2025-06-01|<tenant>` is the tenant's June, local",
    "quarter": "a key `FY2026-Q1|<tenant>` is the tenant's fiscal quarter of that label, local",
}


def description_of(target: ReportAsset) -> str:
    """The report's description, and how this asset's keys are read."""
    return (
        f"{target.report.description}\n\n{CADENCE_NAMES[target.cadence].capitalize()}: {KEY_READING[target.cadence]}; "
        "a partition runs once its period has closed in the tenant's time zone, not before."
    )


def report_asset(target: ReportAsset, start: str) -> AssetsDefinition:
    report = target.report
    report_config = report_config_class(report)

    @asset(
        name=target.name,
        group_name=GROUP,
        description=description_of(target),
        partitions_def=report_partitions(target.cadence, start),
        pool=POOL,
        io_manager_key=IO_MANAGER_KEY,
        backfill_policy=BackfillPolicy.multi_run(max_partitions_per_run=MAX_PARTITIONS_PER_RUN),
        hooks={report_failure_hook},
        check_specs=check_specs(report, target.name),
        kinds={"postgres"},
        # the report's version (bumped when its results can change): Dagster shows partitions materialised
        # by an older version as having another code version
        code_version=str(report.report_version),
        deps=crm_asset_keys(),  # the CRM source tables it reads (crm_assets.py): lineage only
        metadata={
            "title": report.title,
            "report_type": report.report_type,
            "cadence": target.cadence,
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
        yield Output(partition_requests(context, target, config, dyno_db))
        selected = {key.name for key in context.selected_asset_check_keys}
        yield from check_results(report, target.name, dyno_db.engine(), context.run.run_id, selected)

    return _report


def partition_requests(
    context: AssetExecutionContext, target: ReportAsset, config: Config, dyno_db: ReportDatabase
) -> StepWork:
    """Validated requests by partition key; refused options fail the run at once with one clear message, and
    so does a run whose every partition is too early (nothing written)."""
    report, options, as_known_at = target.report, options_of(config), known_at_of(config)
    try:
        parse_options(report.options_model, options)
    except InputError as exc:
        raise Failure(description=f"{target.name}: {exc}", allow_retries=False) from None
    keys = sorted(context.partition_keys)

    def validate(conn: Connection) -> StepWork:
        now = datetime.now(UTC)
        work: dict[str, PartitionWork] = {}
        targets = targets_of(conn, target.cadence, keys)
        for key, partition in targets.items():
            if not partition.due_at(now):
                work[key] = TooEarlyPartition(partition.too_early(now))
                continue
            try:
                work[key] = run_request.build_request(
                    conn,
                    report.report_type,
                    partition.tenant_id,
                    period_start=partition.period_start,
                    period_end=partition.period_end,
                    options=options,
                    now=now,
                    as_known_at=as_known_at,
                )
            except InputError as exc:
                work[key] = RefusedPartition(report.report_type, partition.tenant_id, partition.window, options, exc)
        return StepWork(work, {key: partition.described() for key, partition in targets.items()})

    try:
        with Reconnecting(dyno_db.engine(), context.log) as database:  # read only: retried whole when cut
            step = database.run(validate, f"validating {len(keys)} partition(s)")
    except DatabaseOutage as exc:
        message = f"{target.name}: {exc}; no partition ran"
        raise Failure(description=message, allow_retries=False) from None
    early = [work.message for work in step.partitions.values() if isinstance(work, TooEarlyPartition)]
    if early and len(early) == len(keys):
        more = f" (and {len(early) - 1} more partition(s) too early)" if len(early) > 1 else ""
        raise Failure(description=f"{target.name}: {early[0]}{more}", allow_retries=False)
    return step


def report_assets(start: str) -> list[AssetsDefinition]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", BetaWarning)  # backfill_policy is beta; we rely on multi_run deliberately
        return [report_asset(target, start) for target in report_assets_by_name().values()]
