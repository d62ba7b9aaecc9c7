"""The reporting database as a Dagster resource: `DYNO_DATABASE_URL`, else the embedded default."""

from dagster import ConfigurableResource
from pydantic import Field
from sqlalchemy import Engine

from dyno_reports.storage import db


def engine_for(database_url: str | None) -> Engine:
    """The pooled engine of `database_url`, or of the configured database (resolved lazily)."""
    return db.engine_for(database_url) if database_url else db.get_engine()


class ReportDatabase(ConfigurableResource):
    """Connection to the reporting PostgreSQL (the CRM source and the report tables)."""

    database_url: str | None = Field(
        default=None, description="SQLAlchemy URL; empty = DYNO_DATABASE_URL, else the embedded PostgreSQL"
    )

    def engine(self) -> Engine:
        return engine_for(self.database_url)
