"""Alembic migrations (real PostgreSQL): up from empty, down and up again, and agreement with tables.py."""

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import create_engine, select

from dyno_reports.reports import REGISTRY
from dyno_reports.storage import migrate, tables


def test_upgrade_from_empty_downgrade_and_upgrade_again(database_factory):
    engine = create_engine(database_factory("migrations"))
    try:
        assert migrate.current_revision(engine) is None
        assert migrate.upgrade(engine) == migrate.head_revision()
        assert migrate.upgrade(engine) == migrate.head_revision()  # idempotent
        assert migrate.downgrade(engine, "base") is None
        with engine.connect() as conn:
            schemas = set(conn.exec_driver_sql("SELECT nspname FROM pg_namespace").scalars())
        assert "crm" not in schemas
        assert migrate.upgrade(engine) == migrate.head_revision()
    finally:
        engine.dispose()


def schema_diff(conn, metadata, schema: str) -> list:
    """What autogenerate would change in `schema` to match `metadata` (Alembic's table excluded)."""
    context = MigrationContext.configure(
        conn,
        opts={
            "include_schemas": True,
            "include_name": lambda name, type_, parent: type_ != "schema" or name == schema,
            "include_object": lambda obj, name, type_, reflected, compare_to: name != "alembic_version",
        },
    )
    return compare_metadata(context, metadata)


def test_migrated_schema_matches_the_metadata_module(engine):
    with engine.connect() as conn:
        assert schema_diff(conn, tables.crm_metadata, "crm") == []
        assert schema_diff(conn, tables.metadata, "reporting") == []


def test_every_registered_report_is_a_known_report_type_with_its_fact_table(engine):
    with engine.connect() as conn:
        known = dict(conn.execute(select(tables.report_type.c.report_type, tables.report_type.c.fact_table)).all())
    assert known == {name: report.fact_table.name for name, report in REGISTRY.items()}


def test_upgrade_keeps_a_crm_schema_the_crm_already_owns(database_factory):
    """In production the CRM's tables exist first: upgrade adopts them, downgrade leaves them."""
    engine = create_engine(database_factory("crm_owned"))
    try:
        with engine.begin() as conn:
            conn.exec_driver_sql("CREATE SCHEMA crm")
            conn.exec_driver_sql(
                "CREATE TABLE crm.tenant (tenant_id uuid PRIMARY KEY, name text NOT NULL,"
                " created_at timestamptz NOT NULL DEFAULT now())"
            )
            conn.exec_driver_sql("INSERT INTO crm.tenant (tenant_id, name) VALUES (gen_random_uuid(), 'existing')")
        assert migrate.upgrade(engine) == migrate.head_revision()
        migrate.downgrade(engine, "base")
        with engine.connect() as conn:
            assert conn.exec_driver_sql("SELECT name FROM crm.tenant").scalars().all() == ["existing"]
    finally:
        engine.dispose()
