"""Settings from environment variables, read when asked for, never at import time."""

import os
import re
from datetime import timedelta
from pathlib import Path

from dyno_reports.core.errors import ConfigError, shown

DEFAULT_WINDOW_DAYS = 90


def database_url() -> str | None:
    """`DYNO_DATABASE_URL` when set; None means: use the embedded PostgreSQL."""
    return os.environ.get("DYNO_DATABASE_URL") or None


def test_database_url() -> str | None:
    """`DYNO_TEST_DATABASE_URL`: the server tests create their throwaway databases on."""
    return os.environ.get("DYNO_TEST_DATABASE_URL") or None


def data_dir() -> Path:
    """Folder for the embedded PostgreSQL: `DYNO_DATA_DIR`, else `.dyno/` of the project.

    The project is the source checkout holding this package when there is one
    (so every command run from anywhere in it shares one server), else the
    current directory.
    """
    configured = os.environ.get("DYNO_DATA_DIR")
    if configured:
        return Path(configured).expanduser().resolve()
    checkout = Path(__file__).resolve().parents[2]
    base = checkout if (checkout / "pyproject.toml").exists() else Path.cwd()
    return base / ".dyno"


def dagster_database() -> str:
    """Database for Dagster's own storage under `make dev`, on the server of the reporting database:
    `DYNO_DAGSTER_DATABASE`, else `dagster`."""
    return os.environ.get("DYNO_DAGSTER_DATABASE") or "dagster"


def default_window() -> timedelta:
    """Length of the window a run gets when no period is given (`DYNO_DEFAULT_WINDOW_DAYS`)."""
    raw = os.environ.get("DYNO_DEFAULT_WINDOW_DAYS", str(DEFAULT_WINDOW_DAYS))
    try:
        days = int(raw)
    except ValueError:
        raise ConfigError(f"DYNO_DEFAULT_WINDOW_DAYS must be a whole number of days, got {raw!r}") from None
    if days <= 0:
        raise ConfigError(f"DYNO_DEFAULT_WINDOW_DAYS must be positive, got {days}")
    return timedelta(days=days)


# The CRM's longest write transaction (docs/definitions.md, "As known at"): a history row recorded more than
# this long ago that is not visible yet never will be, so a run knows the CRM as of its start minus this.
DEFAULT_CRM_MAX_WRITE_SECONDS = 600


def crm_max_write() -> timedelta:
    """The CRM's longest write transaction (`DYNO_CRM_MAX_WRITE_SECONDS`, whole seconds, 0 to a day): a run's
    default K is its start minus this, and a period is final once its end is this far in the past."""
    raw = os.environ.get("DYNO_CRM_MAX_WRITE_SECONDS") or str(DEFAULT_CRM_MAX_WRITE_SECONDS)
    try:
        seconds = int(raw)
    except ValueError:
        raise ConfigError(f"DYNO_CRM_MAX_WRITE_SECONDS must be a whole number of seconds, got {shown(raw)}") from None
    if not 0 <= seconds <= 86_400:
        raise ConfigError(f"DYNO_CRM_MAX_WRITE_SECONDS must be 0 to 86400 (a day), got {shown(raw)}")
    return timedelta(seconds=seconds)


DEFAULT_RECONCILE_LOOKBACK_HOURS = 24


def reconcile_lookback() -> timedelta:
    """How far back the reconciliation sweep looks for ended Dagster runs (`DYNO_RECONCILE_LOOKBACK_HOURS`)."""
    raw = os.environ.get("DYNO_RECONCILE_LOOKBACK_HOURS") or str(DEFAULT_RECONCILE_LOOKBACK_HOURS)
    try:
        hours = float(raw)
    except ValueError:
        raise ConfigError(f"DYNO_RECONCILE_LOOKBACK_HOURS must be a number of hours, got {shown(raw)}") from None
    if not 0 < hours <= 24 * 366:
        raise ConfigError(f"DYNO_RECONCILE_LOOKBACK_HOURS must be more than 0 and at most a year, got {shown(raw)}")
    return timedelta(hours=hours)


# A PostgreSQL role name the executor may SET ROLE to: an unquoted identifier, at most 63 bytes.
_ROLE_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_$]{0,62}")


def executor_role() -> str | None:
    """`DYNO_EXECUTOR_ROLE`: the role a run's transaction switches to (`SET LOCAL ROLE`), e.g.
    `dyno_report_writer`; unset or empty: the connecting user. Must be a plain identifier."""
    raw = os.environ.get("DYNO_EXECUTOR_ROLE", "").strip()
    if not raw:
        return None
    if not _ROLE_NAME.fullmatch(raw):
        raise ConfigError(
            "DYNO_EXECUTOR_ROLE must be a role name (letters, digits, _ or $, not starting with a digit),"
            f" got {shown(raw)}"
        )
    return raw


DEFAULT_REPORT_MAX_RUNTIME_SECONDS = 6 * 3600


def report_max_runtime() -> int:
    """Seconds a Dagster report run may run before run monitoring fails it (`dagster/max_runtime`):
    `DYNO_REPORT_MAX_RUNTIME_SECONDS`, default 6 hours (a 100-partition batch takes minutes)."""
    return _whole_number("DYNO_REPORT_MAX_RUNTIME_SECONDS", DEFAULT_REPORT_MAX_RUNTIME_SECONDS, 60, 7 * 86_400)


DEFAULT_STALE_SENSOR_SECONDS = 300
DEFAULT_STALE_LOOKBACK_DAYS = 90


def stale_sensor_interval() -> int:
    """Seconds between two ticks of the stale sensor (`DYNO_STALE_SENSOR_SECONDS`, default 300; read when the
    Dagster definitions are built)."""
    return _whole_number("DYNO_STALE_SENSOR_SECONDS", DEFAULT_STALE_SENSOR_SECONDS, 30, 86_400)


def stale_lookback() -> timedelta:
    """The stale sensor refreshes partitions whose period ended within this many days
    (`DYNO_STALE_LOOKBACK_DAYS`, default 90); older stale partitions are listed, not run."""
    return timedelta(days=_whole_number("DYNO_STALE_LOOKBACK_DAYS", DEFAULT_STALE_LOOKBACK_DAYS, 1, 36_600))


def stale_refresh_all() -> bool:
    """`DYNO_STALE_REFRESH_ALL=1`: the operator asks the stale sensor to refresh stale partitions older than
    the lookback too."""
    raw = os.environ.get("DYNO_STALE_REFRESH_ALL", "").strip().lower()
    if raw not in ("", "0", "1", "true", "false"):
        raise ConfigError(f"DYNO_STALE_REFRESH_ALL must be 1 or 0 (true or false), got {shown(raw)}")
    return raw in ("1", "true")


def _whole_number(name: str, default: int, low: int, high: int) -> int:
    """A whole number from the environment variable `name` (unset or empty: `default`), `low` to `high`."""
    raw = os.environ.get(name) or str(default)
    try:
        value = int(raw)
    except ValueError:
        raise ConfigError(f"{name} must be a whole number, got {shown(raw)}") from None
    if not low <= value <= high:
        raise ConfigError(f"{name} must be {low} to {high}, got {shown(raw)}")
    return value
