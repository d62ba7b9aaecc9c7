"""Errors that carry a message meant for the person who gave the input, and how input is quoted in them."""

import re

# How much of a value an error message quotes, and how long the one `error:` line of the CLI may be:
# a 100 KB tenant id must not become a 100 KB error line.
SHOWN_LIMIT = 100
ERROR_LINE_LIMIT = 500


class DynoError(Exception):
    """Base class of every error this package raises on purpose."""


class InputError(DynoError):
    """Bad input (tenant, report, period, options): refused before anything is written."""


class UnknownTenant(InputError):
    """A tenant id not in crm.tenant. Its message names no other tenant, since it may be stored (a FAILED header
    of that tenant id); the CLI adds the tenants it knows when it prints the error (`tenant_listing`)."""

    def __init__(self, tenant_id: object) -> None:
        super().__init__(f"unknown tenant {tenant_id} (not in crm.tenant)")
        self.tenant_id = tenant_id


class TenantGone(DynoError):
    """A tenant deleted from crm.tenant after its run was validated: the run's own transaction found it gone
    (and rolled back), so the run is FAILED rather than SUCCEEDED with no facts."""

    def __init__(self, tenant_id: object) -> None:
        super().__init__(f"tenant {tenant_id} is no longer in crm.tenant")
        self.tenant_id = tenant_id


class ConfigError(DynoError):
    """The environment or the database is not set up as needed."""


class DatabaseUnavailable(DynoError):
    """The database refused or dropped the connection a run starts with, every attempt (transient:
    restarting, too many connections); nothing was written, so the run may be retried as a whole."""


class Cancelled(DynoError):
    """A command stopped by a signal (SIGINT, SIGTERM); `status` is its exit status (128 + the signal)."""

    def __init__(self, message: str, status: int) -> None:
        super().__init__(message)
        self.status = status


def shown(value: object, limit: int = SHOWN_LIMIT) -> str:
    """`value` quoted for an error message (its repr, so control characters and lone surrogates are
    escaped), cut to about `limit` characters with the full length noted: every message that
    quotes input goes through here."""
    if isinstance(value, str) and len(value) > limit:
        return f"{value[:limit]!r}... ({len(value)} characters)"
    text = repr(value)
    return text if len(text) <= limit else f"{text[:limit]}... ({len(text)} characters)"


def listed(values: list[str], limit: int = 3, separator: str = ", ") -> str:
    """The first `limit` values joined, then how many more there are."""
    head = separator.join(values[:limit])
    return head if len(values) <= limit else f"{head} and {len(values) - limit} more"


def one_line(message: str, limit: int = ERROR_LINE_LIMIT) -> str:
    """`message` as one printable line: any line break or run of whitespace becomes one space, other
    unprintable characters (terminal escapes, lone surrogates) their escape; cut to `limit` characters."""
    flat = re.sub(r"\s+", " ", message).strip()
    flat = "".join(c if c.isprintable() else repr(c)[1:-1] for c in flat[: limit + 1])
    return flat if len(flat) <= limit else flat[: limit - 3] + "..."


class RunCancelled(KeyboardInterrupt):
    """Raised (from a signal handler) to stop a run. A KeyboardInterrupt, so psycopg cancels the statement
    running on the server before it re-raises, and `except Exception` handlers pass it through;
    `execute` records the run FAILED with `reason` ("cancelled (SIGINT)") and raises it on."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason
