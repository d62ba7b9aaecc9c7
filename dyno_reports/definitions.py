"""The Dagster code location of Dyno Reports (`workspace.yaml`, `dagster ... -m dyno_reports.definitions`).

Everything is built from the report registry(): one asset per report and cadence with its checks
(`win_loss`, monthly, and `win_loss_quarterly`), a job and an hourly schedule per cadence, the tenant
sensor, the reconciliation sweep (report_run against every Dagster run that ended), the sensor that
reports runs made outside Dagster (the CLI) as materialisations, and the stale sensor (refreshes stale
partitions, `freshness.py`). The CRM source tables are external assets upstream of every report.
"""

from dagster import Definitions, in_process_executor

from dyno_reports.dagster_defs.assets import IO_MANAGER_KEY, report_assets
from dyno_reports.dagster_defs.cli_runs import cli_runs_sensor
from dyno_reports.dagster_defs.crm_assets import crm_asset_specs
from dyno_reports.dagster_defs.failures import DB_RESOURCE
from dyno_reports.dagster_defs.freshness import stale_runs_sensor
from dyno_reports.dagster_defs.io_manager import ReportRunIOManager
from dyno_reports.dagster_defs.partitions import start_date
from dyno_reports.dagster_defs.resources import ReportDatabase
from dyno_reports.dagster_defs.schedules import jobs_and_schedules
from dyno_reports.dagster_defs.sweep import report_run_reconciliation_sweep
from dyno_reports.dagster_defs.tenants import tenant_partitions_sensor


def build_definitions() -> Definitions:
    start = start_date()
    jobs, schedules = jobs_and_schedules()
    return Definitions(
        assets=[*crm_asset_specs(), *report_assets(start)],
        jobs=jobs,
        schedules=schedules,
        sensors=[
            tenant_partitions_sensor,
            report_run_reconciliation_sweep,
            cli_runs_sensor(start),
            stale_runs_sensor(start, jobs),
        ],
        resources={DB_RESOURCE: ReportDatabase(), IO_MANAGER_KEY: ReportRunIOManager()},
        # One process per run: the report step and its checks run in the run worker itself (no step
        # subprocesses to start, none left behind when the worker is killed), for jobs and backfills alike.
        executor=in_process_executor,
    )


defs = build_definitions()
