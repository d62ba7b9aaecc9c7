"""Report runs made outside Dagster (the `dyno-reports` CLI) as materialisations of their asset partition.

`report_runs_from_cli_sensor` (on by default) reads, each tick, the SUCCEEDED
`report_run` rows with no `dagster_run_id` that are new since its cursor, the
(generated_at, run_id) of the last run it considered: at most BATCH_RUNS per
tick, oldest first, in one fleet-wide query. It reports a run as a runless
materialisation of partition `<slot>|<tenant>` of the report's asset, with the
metadata a Dagster run's materialisation has (`metadata.partition_metadata`, so
`run_id` names the run and `load_input` reads its facts) plus `source: cli`, when

- its window is exactly the tenant's period of a slot of one of the report's
  assets (`slots.slot_of_window`, the calendars read in one query: a fiscal
  quarter goes to `win_loss_quarterly`), a slot the asset lists, closed in the
  tenant's zone by now, and it is not a so-far run (`input_params.so_far`);
- its options are the report's defaults (`options_from(None).canonical()`);
- its tenant is a registered `tenant` partition;
- the partition's latest materialisation is not newer: it neither names this run
  (already reported) nor a run generated later, and, unless it is itself a CLI
  report (whose record time is when it was reported, not when its run was made),
  was not recorded after this run's generated_at (a Dagster run, or the
  reconciliation sweep reporting one). Of several runs of one partition in a tick, the latest.

Any other run is skipped and counted, and the cursor moves past it: it is not
looked at again. The tick's skip reason (and log) says how many were reported and
why the others were skipped. Only runs older than SETTLE are read: a run becomes
visible at its commit, just after its generated_at (`clock_timestamp()` in its
statement), so a run that committed late is not passed by a cursor a later-stamped
run already moved; and a new tenant's first CLI runs are read after the tenant
sensor (every 60 s) has registered it. A tenant still unregistered then (the daemon
was off, the tenant sensor stopped) has its runs skipped and counted. Reporting
is idempotent: a reset cursor reports nothing twice.
"""

import json
from collections import Counter
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

from dagster import (
    AssetKey,
    AssetMaterialization,
    AssetRecordsFilter,
    DagsterInstance,
    DefaultSensorStatus,
    EventLogRecord,
    MetadataValue,
    MultiPartitionKey,
    SensorDefinition,
    SensorEvaluationContext,
    SensorResult,
    SkipReason,
    partition_loading_context,
    sensor,
)
from sqlalchemy import Connection, Engine, Row, func, literal, select, tuple_

from dyno_reports.core.tenant_calendar import TenantCalendar
from dyno_reports.dagster_defs.cadences import asset_name
from dyno_reports.dagster_defs.metadata import partition_metadata
from dyno_reports.dagster_defs.partitions import PERIOD, TENANT, period_partitions
from dyno_reports.dagster_defs.resources import ReportDatabase
from dyno_reports.dagster_defs.slots import DEFAULT_CALENDAR, calendars_of, slot_of_window
from dyno_reports.engine.run_request import iso
from dyno_reports.reports import registry
from dyno_reports.storage.tables import report_run

SENSOR_NAME = "report_runs_from_cli_sensor"
BATCH_RUNS = 500
SETTLE = timedelta(minutes=2)
SOURCE = "cli"
# why a run was not reported -> how the tick's summary says it
SKIPPED = {
    "window": "not one partition of the report's asset",
    "so_far": "so-far runs",
    "options": "non-default options",
    "tenant": "tenant not a registered partition",
    "newer": "partition materialised later or already reported",
}


def new_cli_runs(conn: Connection, after: tuple[datetime, UUID] | None, settle: timedelta, limit: int) -> list:
    """The next `limit` SUCCEEDED runs made outside Dagster after `after`, older than `settle`, oldest first."""
    run = report_run
    statement = select(
        run.c.run_id,
        run.c.tenant_id,
        run.c.report_type,
        run.c.generated_at,
        run.c.period_start,
        run.c.period_end,
        run.c.input_params,
    ).where(run.c.dagster_run_id.is_(None), run.c.status == "SUCCEEDED", run.c.generated_at < func.now() - settle)
    if after is not None:
        last = tuple_(literal(after[0], run.c.generated_at.type), literal(after[1], run.c.run_id.type))
        statement = statement.where(tuple_(run.c.generated_at, run.c.run_id) > last)
    return list(conn.execute(statement.order_by(run.c.generated_at, run.c.run_id).limit(limit)))


def period_key(cadence: str, start: str, calendar: TenantCalendar, run: Any, now: datetime) -> tuple[str, str] | None:
    """The slot whose period in `calendar` is exactly the run's window (`run`: a report_run row or a
    `staleness.StaleRun`), and that period described, if the asset lists the slot now and the period has
    closed by `now`."""
    found = slot_of_window(cadence, calendar, run.period_start, run.period_end)
    if found is None or found[1].end > now:
        return None
    with partition_loading_context(effective_dt=now):
        listed = period_partitions(cadence, start, now.date()).has_partition_key(found[0])
    return (found[0], calendar.describe(found[1])) if listed else None


def partition_of(
    run: Row, start: str, registered: set[str], now: datetime, calendar: TenantCalendar
) -> tuple[str, str, str] | str:
    """The run's asset, partition key (`<slot>|<tenant>`) and local period, or why it is not reported: a key
    of SKIPPED."""
    report = registry().get(run.report_type)
    cadences = report.cadences if report is not None else ()
    slots = ((cadence, period_key(cadence, start, calendar, run, now)) for cadence in cadences)
    found = next(((cadence, slot) for cadence, slot in slots if slot is not None), None)
    params = run.input_params or {}
    if report is None or found is None:
        return "window"
    if params.get("so_far") in (True, "true"):
        return "so_far"
    if _json(params.get("options")) != _json(report.options_from(None).canonical()):
        return "options"
    if str(run.tenant_id) not in registered:
        return "tenant"
    cadence, (slot, described) = found
    return asset_name(report, cadence), str(MultiPartitionKey({PERIOD: slot, TENANT: str(run.tenant_id)})), described


def _json(value: Any) -> str:
    """JSON equality, as jsonb's: `false` is not `0` (Python's `False == 0` would say it is)."""
    return json.dumps(value, sort_keys=True)


def reported_events(
    engine: Engine, instance: DagsterInstance, runs: Sequence[Row], start: str, now: datetime
) -> tuple[list[AssetMaterialization], Counter]:
    """The materialisations to report for `runs`, and the count of runs skipped for each reason of SKIPPED."""
    skipped: Counter = Counter()
    latest_in_batch: dict[tuple[str, str], tuple[Row, str]] = {}  # (asset, partition) -> its latest run here, period
    registered = set(instance.get_dynamic_partitions(TENANT))
    with engine.connect() as conn:
        calendars = calendars_of(conn, (str(run.tenant_id) for run in runs))
    for run in runs:  # in order: the last run of a partition is its latest
        found = partition_of(run, start, registered, now, calendars.get(str(run.tenant_id), DEFAULT_CALENDAR))
        if isinstance(found, str):
            skipped[found] += 1
            continue
        if found[:2] in latest_in_batch:
            skipped["newer"] += 1
        latest_in_batch[found[:2]] = (run, found[2])
    records = {(asset, key): _latest_record(instance, asset, key) for asset, key in latest_in_batch}
    events: list[AssetMaterialization] = []
    tenant_names: dict[UUID, str | None] = {}
    with engine.connect() as conn:
        generated = _named_runs(conn, [(latest_in_batch[k][0].tenant_id, r) for k, r in records.items() if r])
        for (asset, key), (run, described) in latest_in_batch.items():
            if _superseded(run, records[(asset, key)], generated):
                skipped["newer"] += 1
                continue
            metadata = partition_metadata(
                engine, run.tenant_id, run.run_id, connection=conn, tenant_names=tenant_names, period_label=described
            )
            metadata["source"] = MetadataValue.text(SOURCE)
            description = f"report run {run.run_id} made outside Dagster (dyno-reports), at {iso(run.generated_at)}"
            events.append(
                AssetMaterialization(
                    asset_key=AssetKey(asset), description=description, metadata=metadata, partition=key
                )
            )
    return events, skipped


def _latest_record(instance: DagsterInstance, asset: str, partition_key: str) -> EventLogRecord | None:
    records = instance.fetch_materializations(AssetRecordsFilter(AssetKey(asset), [partition_key]), limit=1)
    return records.records[0] if records.records else None


def _named_run(record: EventLogRecord) -> UUID | None:
    materialization = record.asset_materialization
    value = materialization.metadata.get("run_id") if materialization is not None else None
    try:
        return UUID(str(value.value)) if value is not None else None
    except ValueError:
        return None


def _named_runs(conn: Connection, records: list[tuple[UUID, EventLogRecord]]) -> dict[UUID, datetime]:
    """run_id -> generated_at of the runs these materialisations (each with its partition's tenant) name, when
    they are runs of that tenant: one query, by (tenant_id, run_id)."""
    named = sorted({(tenant, run_id) for tenant, record in records if (run_id := _named_run(record)) is not None})
    if not named:
        return {}
    keys = tuple_(report_run.c.tenant_id, report_run.c.run_id)
    rows = conn.execute(select(report_run.c.run_id, report_run.c.generated_at).where(keys.in_(named)))
    return {row.run_id: row.generated_at for row in rows}


def _superseded(run: Row, record: EventLogRecord | None, generated: dict[UUID, datetime]) -> bool:
    """Whether the partition's latest materialisation is this run's, or newer than it."""
    if record is None:
        return False
    named = _named_run(record)
    if named == run.run_id:
        return True
    if named in generated and (generated[named], named) > (run.generated_at, run.run_id):
        return True
    materialization = record.asset_materialization
    source = materialization.metadata.get("source") if materialization is not None else None
    from_cli = source is not None and source.value == SOURCE
    return not from_cli and record.timestamp > run.generated_at.timestamp()


def _cursor_after(cursor: str | None) -> tuple[datetime, UUID] | None:
    if not cursor:
        return None
    last = json.loads(cursor)
    return datetime.fromisoformat(last["generated_at"]), UUID(last["run_id"])


def _summary(read: int, events: list, skipped: Counter) -> str:
    reasons = ", ".join(f"{skipped[k]} {text}" for k, text in SKIPPED.items() if skipped[k])
    return f"{read} CLI run(s) read: {len(events)} reported as materialisations, {sum(skipped.values())} skipped" + (
        f" ({reasons})" if reasons else ""
    )


def cli_runs_sensor(start: str, settle: timedelta = SETTLE, batch: int = BATCH_RUNS) -> SensorDefinition:
    """The sensor for assets whose periods begin at `start` (the definitions' own start)."""

    @sensor(
        name=SENSOR_NAME,
        minimum_interval_seconds=60,
        default_status=DefaultSensorStatus.RUNNING,
        description="Reports SUCCEEDED report runs made outside Dagster (the CLI) as materialisations.",
    )
    def report_runs_from_cli_sensor(context: SensorEvaluationContext, dyno_db: ReportDatabase):
        engine = dyno_db.engine()
        with engine.connect() as conn:
            runs = new_cli_runs(conn, _cursor_after(context.cursor), settle, batch)
        if not runs:
            return SkipReason("no new report run made outside Dagster")
        events, skipped = reported_events(engine, context.instance, runs, start, datetime.now(UTC))
        summary = _summary(len(runs), events, skipped)
        context.log.info(summary)
        last = runs[-1]
        cursor = json.dumps({"generated_at": last.generated_at.isoformat(), "run_id": str(last.run_id)})
        return SensorResult(asset_events=events, cursor=cursor, skip_reason=summary)

    return report_runs_from_cli_sensor
