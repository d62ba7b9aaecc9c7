"""Test fixtures on real PostgreSQL: a throwaway, migrated database per test module.

The server is `DYNO_TEST_DATABASE_URL` when set (CI points it at the machine's
PostgreSQL 15), else the embedded PostgreSQL 18 of the project. Nothing is
skipped when the server is missing: the fixtures fail loudly instead.
"""

import os
import uuid
from collections.abc import Callable, Iterator

import pytest
from hypothesis import HealthCheck, Phase, settings
from sqlalchemy import Engine, create_engine, make_url
from sqlalchemy.engine import URL

from dyno_reports.core import config
from dyno_reports.storage import db, migrate
from dyno_reports_tests.support import kinds

# `default` (make test) stops at the first failing example and prints it unshrunk: a property test against the
# database shrank one failure for minutes. `thorough` (make test-thorough) draws more and shrinks fully.
# print_blob: the failure also prints an @reproduce_failure line that replays the exact example.
FAST_PHASES = (Phase.explicit, Phase.reuse, Phase.generate)
settings.register_profile(
    "default",
    deadline=None,
    max_examples=40,
    phases=FAST_PHASES,
    print_blob=True,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.register_profile(
    "thorough",
    deadline=None,
    max_examples=300,
    phases=tuple(Phase),  # every phase: registering "default" above changed the defaults other profiles start from
    print_blob=True,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "default"))


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Marks each test `unit`, `db`, `dagster` or `cli` (support/kinds.py): `pytest -m unit` needs no server."""
    for item in items:
        if not isinstance(item, pytest.Function):
            continue
        fixtures = [defs[-1].func for defs in item._fixtureinfo.name2fixturedefs.values() if defs]
        for kind in kinds.kinds_of([item.function, *fixtures], item.fixturenames, item.path):
            item.add_marker(kind)


@pytest.fixture(scope="session")
def server_url() -> URL:
    """Admin URL of the PostgreSQL server the tests create their databases on."""
    configured = config.test_database_url()
    return db.sqlalchemy_url(configured) if configured else db.embedded_url().set(database="postgres")


@pytest.fixture(scope="session")
def database_factory(server_url: URL) -> Iterator[Callable[[str], URL]]:
    """Creates empty databases named after their purpose; drops them all at the end."""
    admin = create_engine(server_url, isolation_level="AUTOCOMMIT")
    created: list[str] = []

    def create(purpose: str) -> URL:
        name = f"dyno_test_{purpose}_{uuid.uuid4().hex[:8]}"[:63]
        with admin.connect() as conn:
            conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
        created.append(name)
        return server_url.set(database=name)

    yield create
    with admin.connect() as conn:
        for name in created:
            conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    admin.dispose()


@pytest.fixture(scope="module")
def database_url(request: pytest.FixtureRequest, database_factory: Callable[[str], URL]) -> URL:
    """A fresh database for this test module, migrated to head."""
    url = database_factory(request.module.__name__.rsplit(".", 1)[-1].removeprefix("test_"))
    engine = create_engine(url)
    try:
        migrate.upgrade(engine)
    finally:
        engine.dispose()
    return url


@pytest.fixture(scope="module")
def engine(database_url: URL) -> Iterator[Engine]:
    engine = create_engine(database_url)
    yield engine
    engine.dispose()


@pytest.fixture
def cli_env(database_url: URL, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """Environment for running `dyno-reports` against this module's database."""
    url = database_url.render_as_string(hide_password=False)
    monkeypatch.setenv("DYNO_DATABASE_URL", url)
    return {**os.environ, "DYNO_DATABASE_URL": url}


def url_string(url: URL) -> str:
    return make_url(url).render_as_string(hide_password=False)
