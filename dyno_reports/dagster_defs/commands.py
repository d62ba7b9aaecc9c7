"""`dyno-reports sync-tenants`: the Dagster instance's tenant partitions, loaded by the CLI only when named."""

import click


@click.command(
    "sync-tenants",
    help="Make the `tenant` partitions of the Dagster instance of DAGSTER_HOME crm.tenant's: register every "
    "tenant, remove the partitions of tenants gone from it (their runs and history stay).",
)
def sync_tenants_command() -> None:
    from dyno_reports.dagster_defs.tenants import sync_tenants_from_environment

    click.echo(sync_tenants_from_environment().describe())
