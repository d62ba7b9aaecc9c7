"""`dyno-reports seed` and `dyno-reports demo`: development tools, loaded by the CLI only when named."""

import click


@click.command("seed", help="Load deterministic synthetic CRM data (tenants, pipelines, deals, history).")
@click.option("--tenants", default=3, show_default=True, type=click.IntRange(1, 1000))
@click.option("--deals", "deals_per_tenant", default=300, show_default=True, type=click.IntRange(0, 10_000_000))
@click.option("--seed", "random_seed", default=7, show_default=True, type=int, help="Random seed.")
def seed_command(tenants: int, deals_per_tenant: int, random_seed: int) -> None:
    from dyno_reports.devtools import seed
    from dyno_reports.storage import db, migrate

    engine = db.get_engine()
    migrate.require_head(engine)
    for seeded in seed.seed(
        engine,
        tenants=tenants,
        deals_per_tenant=deals_per_tenant,
        random_seed=random_seed,
        progress=lambda line: click.echo(line, err=True),
    ):
        state = "created" if seeded.created else "already there"
        click.echo(
            f"{seeded.tenant_id}  {seeded.name}  deals {seeded.deals}  history rows {seeded.history_rows}  ({state})"
        )


@click.command(
    "demo",
    help="Upgrade, seed a few tenants and run every report over each tenant's last 8 weeks or months; "
    "a period that has a SUCCEEDED run already is not run again.",
)
def demo_command() -> None:
    from dyno_reports.devtools import demo

    demo.run_demo(echo=click.echo)
