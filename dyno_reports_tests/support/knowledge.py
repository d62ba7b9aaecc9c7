"""What a SUCCEEDED header must say it knew (migration 0011), for tests that write headers themselves (no I/O)."""

from datetime import datetime

# Any digest of 64 lowercase hex digits passes the header's check; the executor computes the real one.
A_SCOPE_DIGEST = "0" * 64


def knowledge(known_at: datetime, report_version: int = 1) -> dict:
    """known_at, report_version and scope_digest of a SUCCEEDED header written by hand."""
    return {"known_at": known_at, "report_version": report_version, "scope_digest": A_SCOPE_DIGEST}
