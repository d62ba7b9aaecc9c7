"""`dyno-reports runs list`: report runs newest first (generated_at desc, run_id), filtered, in one statement.

The runs are picked, ordered and cut in `reporting.report_run` alone (a top-N sort: no index is ordered by
generated_at); only those kept are joined to `crm.tenant` for their names. A `--tenant` filter reads only
that tenant's runs, through an index led by tenant_id (`uq_report_run_tenant_id_run_id`, or
`ix_report_run_tenant_id_report_type_period_end`, whose report_type and generated_at also serve `--report`
and `--since`), never every tenant's.
"""

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

from sqlalchemy import Connection, Row, Select, exists, or_, select

from dyno_reports.core.errors import InputError, UnknownTenant, shown
from dyno_reports.core.tenant_calendar import TenantCalendar
from dyno_reports.engine.run_request import parse_tenant_id
from dyno_reports.read import names, text_table
from dyno_reports.reports import get_report
from dyno_reports.storage.tables import RUN_STATUSES, report_run, tenant

# --since reads a date or a timestamp without offset in UTC, as the `generated (UTC)` column shows runs.
UTC_CALENDAR = TenantCalendar()
DEFAULT_LIMIT = 20
MAX_LIMIT = 10_000
ERROR_SHOWN = 60  # characters of a FAILED run's error in the text table
HEADERS = ["run_id", "generated (UTC)", "report", "tenant", "period", "grain", "status", "source", "error"]
NO_RUNS = "no report runs yet: `dyno-reports run` or `dyno-reports demo` makes some"
NO_MATCH = "no report runs match these filters"
# the report_run columns a listed run carries (and from input_params: `options`, and `so_far` for a so-far run)
LISTED_COLUMNS = (
    "run_id",
    "generated_at",
    "report_type",
    "tenant_id",
    "period_start",
    "period_end",
    "period_grain",
    "status",
    "error_message",
    "dagster_run_id",
    "input_fingerprint",
)
SHOW_HINT = "`dyno-reports show RUN_ID` prints one run with its facts"


@dataclass(frozen=True)
class RunFilters:
    tenant_id: UUID | None = None
    report_type: str | None = None
    status: str | None = None
    since: datetime | None = None
    limit: int = DEFAULT_LIMIT

    @property
    def narrowed(self) -> bool:
        """Whether any filter was given (the limit aside)."""
        return any(v is not None for v in (self.tenant_id, self.report_type, self.status, self.since))


@dataclass(frozen=True)
class RunListing:
    rows: list[Row[Any]]
    more: bool  # the limit cut the list
    filtered: bool


def parse_filters(
    tenant_id: str | None, report_type: str | None, status: str | None, since: str | None, limit: int
) -> RunFilters:
    """The filters as given on the command line; InputError for a malformed tenant, an unknown report,
    a status that is none of RUN_STATUSES (any case) or a since that is not an ISO date or timestamp."""
    if status is not None and not (status.isascii() and status.upper() in RUN_STATUSES):
        raise InputError(f"--status {shown(status)} is not one of {', '.join(RUN_STATUSES)} (any case)")
    if not 1 <= limit <= MAX_LIMIT:
        raise InputError(f"--limit {limit} is not in 1..{MAX_LIMIT}")
    return RunFilters(
        tenant_id=parse_tenant_id(tenant_id) if tenant_id is not None else None,
        report_type=get_report(report_type).report_type if report_type is not None else None,
        status=status.upper() if status is not None else None,
        since=UTC_CALENDAR.parse_bound(since, "--since") if since is not None else None,
        limit=limit,
    )


def runs_query(filters: RunFilters) -> Select:
    """The newest `limit + 1` runs matching the filters (one more than shown tells that more exist),
    each with its tenant's name (NULL when the tenant is gone from crm.tenant)."""
    run = report_run.c
    conditions = []
    if filters.tenant_id is not None:
        conditions.append(run.tenant_id == filters.tenant_id)
    if filters.report_type is not None:
        conditions.append(run.report_type == filters.report_type)
    if filters.status is not None:
        conditions.append(run.status == filters.status)
    if filters.since is not None:
        conditions.append(run.generated_at >= filters.since)
    picked = (
        select(
            *(run[name] for name in LISTED_COLUMNS),
            run.input_params["options"].label("options"),
            run.input_params["so_far"].astext.is_not_distinct_from("true").label("so_far"),
        )
        .where(*conditions)
        .order_by(run.generated_at.desc(), run.run_id)
        .limit(filters.limit + 1)
        .subquery("picked")
    )
    return (
        select(picked, tenant.c.name.label("tenant_name"))
        .select_from(picked.outerjoin(tenant, tenant.c.tenant_id == picked.c.tenant_id))
        .order_by(picked.c.generated_at.desc(), picked.c.run_id)
    )


def list_runs(conn: Connection, filters: RunFilters) -> RunListing:
    """The runs to show; InputError when the tenant filter names a tenant that is neither in crm.tenant nor
    in any run (a tenant gone from crm.tenant still lists its runs)."""
    rows = list(conn.execute(runs_query(filters)))
    if not rows and filters.tenant_id is not None and not _tenant_known(conn, filters.tenant_id):
        raise UnknownTenant(filters.tenant_id)
    return RunListing(rows[: filters.limit], more=len(rows) > filters.limit, filtered=filters.narrowed)


def _tenant_known(conn: Connection, tenant_id: UUID) -> bool:
    in_crm = exists().where(tenant.c.tenant_id == tenant_id)
    in_runs = exists().where(report_run.c.tenant_id == tenant_id)
    return bool(conn.execute(select(or_(in_crm, in_runs))).scalar())


def run_json(row: Row[Any]) -> dict[str, Any]:
    """One run as `runs list --json` prints it: every id in full, instants ISO in UTC, the whole error."""
    return {
        "run_id": str(row.run_id),
        "generated_at": _iso(row.generated_at),
        "report_type": row.report_type,
        "tenant_id": str(row.tenant_id),
        "tenant_name": row.tenant_name,
        "period_start": _iso(row.period_start),
        "period_end": _iso(row.period_end),
        "period_grain": row.period_grain,
        "status": row.status,
        "error_message": row.error_message,
        "dagster_run_id": row.dagster_run_id,
        "input_fingerprint": row.input_fingerprint,
        "options": row.options,
        "so_far": row.so_far,
    }


def listing_text(listing: RunListing) -> list[str]:
    """The aligned table, then how many runs are shown (and whether more exist), then how to show one."""
    if not listing.rows:
        return [NO_MATCH if listing.filtered else NO_RUNS]
    cells = [_text_cells(row) for row in listing.rows]
    lines = text_table.aligned(HEADERS, cells, [False] * len(HEADERS))
    shown_line = f"{len(listing.rows)} run(s) shown, newest first"
    if listing.more:
        shown_line += "; more exist (`--limit` to see more)"
    return [*lines, "", shown_line, SHOW_HINT]


def _text_cells(row: Row[Any]) -> list[str]:
    short_tenant = names.short_id(row.tenant_id)
    tenant_label = (
        f"{row.tenant_name} ({short_tenant})" if row.tenant_name is not None else f"{short_tenant} (not in crm.tenant)"
    )
    source = f"dagster {row.dagster_run_id[: names.SHORT_ID_LENGTH]}" if row.dagster_run_id else "cli"
    error = text_table.cell(row.error_message) if row.status == "FAILED" else ""
    return [
        str(row.run_id),
        row.generated_at.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S"),
        row.report_type,
        text_table.cell(tenant_label),
        f"[{_compact(row.period_start) if row.period_start else '-inf'}, {_compact(row.period_end)})",
        row.period_grain,
        f"{row.status} (so far)" if row.so_far else row.status,
        source,
        error if len(error) <= ERROR_SHOWN else error[: ERROR_SHOWN - 3] + "...",
    ]


def _compact(instant: datetime) -> str:
    """A bound as a date when it is midnight UTC (most are), else ISO to the second with Z."""
    utc = instant.astimezone(UTC)
    if utc.hour == utc.minute == utc.second == utc.microsecond == 0:
        return utc.date().isoformat()
    return utc.isoformat().replace("+00:00", "Z")


def _iso(instant: datetime | None) -> str | None:
    return None if instant is None else instant.astimezone(UTC).isoformat()
