"""Dagster pieces the asset tests share: the report resources on a test database, an instance with tenants (no DB)."""

from collections.abc import Iterator
from contextlib import contextmanager

from dagster import DagsterInstance, instance_for_test

from dyno_reports.dagster_defs.io_manager import ReportRunIOManager
from dyno_reports.dagster_defs.resources import ReportDatabase


def report_resources(url: str) -> dict:
    """The resources the report assets need, on the database at `url`."""
    return {"dyno_db": ReportDatabase(database_url=url), "report_io_manager": ReportRunIOManager(database_url=url)}


@contextmanager
def instance_with_tenants(*tenants: str) -> Iterator[DagsterInstance]:
    """A throwaway Dagster instance whose `tenant` dynamic partitions are `tenants`."""
    with instance_for_test() as instance:
        instance.add_dynamic_partitions("tenant", list(tenants))
        yield instance
