"""What a downstream asset gets from a report asset: the facts of its upstream partition(s) as a pandas DataFrame.

Which run a partition stands for: the run named (`run_id`) in the partition's
latest materialisation metadata, when it is still a SUCCEEDED run of that tenant
and report; else the latest SUCCEEDED run of that tenant, report and period with
the report's default options (`results.latest_runs`). A partition with neither
fails the step with one `Failure` naming it.

Shape: one row per fact, columns = the report's fact columns (dimensions, then
metrics), rows sorted by dimensions. Ids are `str`, counts `int64`, money and the
other numeric metrics Python `Decimal` (exact, object dtype), dates `datetime.date`.
When the input spans several partitions (a partition mapping onto a range of
periods, or several tenants) the frame starts with `tenant_id`, `period_start`
and `period_end` (UTC timestamps) and is sorted by them, then by dimensions; one
partition gives the fact columns alone. A key's period is its tenant's
(`slots.targets_of`: the slot read in the tenant's calendar, the calendars of
the input's tenants in one query).
"""

from collections import defaultdict
from typing import Any
from uuid import UUID

import pandas as pd
from dagster import AssetKey, AssetRecordsFilter, DagsterInstance, Failure, InputContext, MetadataValue
from sqlalchemy import Engine, Integer, Uuid

from dyno_reports.core.errors import listed
from dyno_reports.dagster_defs.cadences import asset_named
from dyno_reports.dagster_defs.slots import PartitionTarget, targets_of
from dyno_reports.read import results
from dyno_reports.reports.base import ReportDefinition
from dyno_reports.reports.options import parse_options

PARTITION_COLUMNS = ("tenant_id", "period_start", "period_end")


def load_facts(engine: Engine, context: InputContext) -> pd.DataFrame:
    """The DataFrame of the upstream partition(s) of `context` (see the module docstring)."""
    asset = asset_named(context.asset_key.path[-1])
    if asset is None:
        raise Failure(description=f"{context.asset_key.to_user_string()} is not a report asset")
    report = asset.report
    if not context.has_asset_partitions:
        raise Failure(description=f"{report.report_type} is partitioned: read it from a partitioned asset")
    with engine.connect() as conn:
        found = targets_of(conn, asset.cadence, context.asset_partition_keys)
        targets = sorted(found.values(), key=lambda t: (t.tenant_id, t.period_start))
        named = runs_named_in_metadata(context.instance, context.asset_key, [t.partition_key for t in targets])
        run_of = _runs_of_partitions(conn, report, targets, named)
        missing = [t.partition_key for t in targets if t.partition_key not in run_of]
        if missing:
            raise Failure(
                description=f"{report.report_type}: no SUCCEEDED run for partition(s) {listed(missing)}: "
                "materialise them (or run `dyno-reports run` with the default options) first",
                allow_retries=False,
            )
        rows_by_run = _facts_by_run(conn, report, targets, run_of)
    runs = {key: str(run_id) for key, run_id in sorted(run_of.items())}
    if len(targets) == 1:  # Dagster records input metadata for one partition only
        context.add_input_metadata({"report_runs": MetadataValue.json(runs)})
    frame = facts_frame(report, [rows_by_run[run_of[t.partition_key]] for t in targets])
    if len(targets) > 1:
        frame = _with_partition_columns(frame, targets, [len(rows_by_run[run_of[t.partition_key]]) for t in targets])
    context.log.info(f"{report.report_type}: {len(frame)} fact row(s) from report run(s) {runs}")
    return frame


def runs_named_in_metadata(instance: DagsterInstance, asset_key: AssetKey, partition_keys: list[str]) -> dict:
    """Partition key -> the run_id in its latest materialisation's metadata, for those that have one."""
    named = {}
    for key in partition_keys:  # one storage query per partition: the latest record of each
        records = instance.fetch_materializations(
            AssetRecordsFilter(asset_key=asset_key, asset_partitions=[key]), limit=1
        ).records
        materialization = records[0].asset_materialization if records else None
        value = materialization.metadata.get("run_id") if materialization is not None else None
        if value is not None:
            named[key] = UUID(str(value.value))
    return named


def _runs_of_partitions(
    conn: Any, report: ReportDefinition, targets: list[PartitionTarget], named: dict[str, UUID]
) -> dict[str, UUID]:
    """Partition key -> the run it stands for: the named run when still SUCCEEDED, else the latest default one."""
    run_of: dict[str, UUID] = {}
    for tenant, tenant_targets in _by_tenant(targets).items():
        kept = results.succeeded_runs(
            conn, report, tenant, [named[t.partition_key] for t in tenant_targets if t.partition_key in named]
        )
        for target in tenant_targets:
            if named.get(target.partition_key) in kept:
                run_of[target.partition_key] = named[target.partition_key]
        fallback = {
            results.fingerprint_of(report, tenant, t.window, _defaults(report)): t
            for t in tenant_targets
            if t.partition_key not in run_of
        }
        for fingerprint, run_id in results.latest_runs(conn, report, tenant, list(fallback)).items():
            run_of[fallback[fingerprint].partition_key] = run_id
    return run_of


def _facts_by_run(
    conn: Any, report: ReportDefinition, targets: list[PartitionTarget], run_of: dict[str, UUID]
) -> dict[UUID, list]:
    """run_id -> its fact rows (fact columns only), ordered by dimensions: one query per tenant."""
    rows_by_run: dict[UUID, list] = defaultdict(list)
    for tenant, tenant_targets in _by_tenant(targets).items():
        run_ids = sorted({run_of[t.partition_key] for t in tenant_targets})
        for row in conn.execute(results.facts_query(report, tenant, run_ids)):
            rows_by_run[row[0]].append(tuple(row[1:]))
    return rows_by_run


def facts_frame(report: ReportDefinition, runs_rows: list[list[tuple]]) -> pd.DataFrame:
    """One DataFrame of these runs' fact rows, in the order given, with the column types of the module docstring."""
    rows = [row for run_rows in runs_rows for row in run_rows]
    columns = {}
    for index, name in enumerate(report.fact_columns):
        values = [row[index] for row in rows]
        columns[name] = _typed(report.fact_table.c[name].type, values)
    return pd.DataFrame(columns, columns=list(report.fact_columns))


def _typed(sql_type: Any, values: list) -> pd.Series:
    if isinstance(sql_type, Uuid):
        return pd.Series([None if v is None else str(v) for v in values], dtype=object)
    if isinstance(sql_type, Integer):
        return pd.Series(values, dtype="Int64" if None in values else "int64")
    return pd.Series(values, dtype=object)  # Decimal stays exact (no float conversion), dates stay dates


def _with_partition_columns(frame: pd.DataFrame, targets: list[PartitionTarget], counts: list[int]) -> pd.DataFrame:
    repeated = [t for t, count in zip(targets, counts, strict=True) for _ in range(count)]
    partition = pd.DataFrame(
        {
            "tenant_id": pd.Series([t.tenant_id for t in repeated], dtype=object),
            "period_start": pd.to_datetime([t.period_start for t in repeated], utc=True),
            "period_end": pd.to_datetime([t.period_end for t in repeated], utc=True),
        },
        columns=list(PARTITION_COLUMNS),
    )
    return pd.concat([partition, frame], axis=1)


def _by_tenant(targets: list[PartitionTarget]) -> dict[UUID, list[PartitionTarget]]:
    grouped: dict[UUID, list[PartitionTarget]] = defaultdict(list)
    for target in targets:
        grouped[UUID(target.tenant_id)].append(target)
    return grouped


def _defaults(report: ReportDefinition) -> Any:
    return parse_options(report.options_model, None)
