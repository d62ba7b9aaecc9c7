"""The one run executor every caller uses (CLI, Dagster, tests, benchmarks).

A run is one transaction: compute the facts in PostgreSQL with one INSERT ... SELECT
and, in the same statement once they are in, insert the `report_run` header as
SUCCEEDED; commit. Any error rolls all of it back; the run is then recorded as FAILED
with its error message and no facts, in a second short transaction (`run_records`).
Inputs are validated before, by `run_request.build_request`. Four round trips:
BEGIN; the transaction-local settings; facts, headline sums and header in one
statement; COMMIT. A caller running many reports passes its open `connection` (one
pool checkout, no pre-ping per run). The facts statement also checks that the tenant is
still in crm.tenant, on the snapshot the facts are computed from: a tenant deleted after
its request was validated fails the run (`TenantGone`), rather than leaving it SUCCEEDED
with no facts. A caller may pass `reuse` (`reuse.py`): the run then waits for a run of
the same question, and returns a committed run that answers it instead of computing
(one round trip more).

A dead client stops its run: the run's transaction sets `client_connection_check_interval`, so the
server notices within a second that the client's socket closed (a killed process) and cancels the
query. A caller that wants to stop a run (the CLI on SIGINT/SIGTERM) raises `RunCancelled` from a
signal handler: psycopg cancels the running statement on the server, the transaction rolls back, and
the run is recorded FAILED with the reason in a new transaction before `RunCancelled` propagates.
"""

import contextlib
import functools
import logging
import uuid
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any
from uuid import UUID

from sqlalchemy import BigInteger, Connection, Engine, Select, Text, bindparam, cast, column, func, insert, select, text
from sqlalchemy.dialects.postgresql import UUID as PG_UUID

from dyno_reports.core import config
from dyno_reports.core.errors import RunCancelled, TenantGone
from dyno_reports.engine.multi_period import Computed, ComputedFacts, PassFailed, given_rows_sql
from dyno_reports.engine.reuse import REUSABLE_RUN, Reuse, question_lock_values
from dyno_reports.engine.run_records import (
    describe_error,
    header_values,
    record_failure,
    run_settings,
    setting_values,
)
from dyno_reports.engine.run_request import RunRequest, iso
from dyno_reports.reports.base import ReportDefinition
from dyno_reports.reports.scope_digest import SCOPE_DIGEST
from dyno_reports.storage import db
from dyno_reports.storage.tables import report_run, tenant

log = logging.getLogger(__name__)


@dataclass
class RunResult:
    run_id: UUID
    status: str
    request: RunRequest
    fact_rows: int = 0
    error_message: str | None = None
    headline: dict[str, Decimal | int] = field(default_factory=dict)
    # An earlier committed run that answered the request (`reuse`): `run_id` is that run's, nothing was written.
    reused: bool = False
    # FAILED because the connection was refused, dropped or cut (`db.is_lost_connection`): worth running again.
    connection_lost: bool = False
    # The digest of the pipelines and stages the run read (report_run.scope_digest); None unless it computed.
    scope_digest: str | None = None

    @property
    def succeeded(self) -> bool:
        return self.status == "SUCCEEDED"

    def summary(self) -> dict[str, Any]:
        """The JSON object `dyno-reports run --json` prints."""
        window = self.request.window
        return {
            "run_id": str(self.run_id),
            "status": self.status,
            "report_type": self.request.report.report_type,
            "tenant_id": str(self.request.tenant_id),
            "period_start": iso(window.start),
            "period_end": iso(window.end),
            "period_grain": self.request.period_grain,
            "so_far": self.request.so_far,
            "known_at": iso(self.request.known_at),
            "report_version": self.request.report.report_version,
            "scope_digest": self.scope_digest,
            "options": self.request.options.canonical(),
            "input_fingerprint": self.request.fingerprint(),
            "fact_rows": self.fact_rows,
            "headline": {k: _jsonable(v) for k, v in self.headline.items()},
            "error_message": self.error_message,
        }


def execute(
    engine: Engine,
    request: RunRequest,
    *,
    run_id: UUID | None = None,
    connection: Connection | None = None,
    reuse: Reuse | None = None,
    computed: Computed | None = None,
) -> RunResult:
    """Run the report: SUCCEEDED with its facts, or FAILED with its error and no facts.

    `connection`, when given (no transaction open on it), carries the run's transaction and stays open for
    the caller's next run (a batch of partitions); else a connection of `engine` is used and returned.
    `reuse`: a committed run it allows (see reuse.py) is returned, `reused`, instead of a new one.
    `computed`: this window's facts as a multi-period pass computed them (multi_period.py), written instead of
    running the report's statement (same header, same transaction); a `PassFailed` fails the run with its error."""
    run_id = run_id or uuid.uuid4()
    config.executor_role()  # a malformed DYNO_EXECUTOR_ROLE is refused before anything is written
    # a new connection: transient connection failures retried, before anything is written
    conn = connection if connection is not None else db.connect(engine)
    try:
        with contextlib.nullcontext() if connection is not None else conn:  # closes only its own connection
            if isinstance(computed, PassFailed):
                raise computed.error
            result = _run_in_transaction(conn, request, run_id, reuse, computed)
    except RunCancelled as exc:  # rolled back (psycopg cancelled the statement); recorded in a new transaction
        log.warning("report run %s (%s) %s", run_id, request.report.report_type, exc.reason)
        record_failure(engine, request, run_id, exc.reason)
        raise
    except Exception as exc:  # every failure must leave a FAILED header, whatever raised
        message = describe_error(exc)
        log.warning("report run %s (%s) failed: %s", run_id, request.report.report_type, message)
        record_failure(engine, request, run_id, message)
        return RunResult(run_id, "FAILED", request, error_message=message, connection_lost=db.is_lost_connection(exc))
    return result


def _run_in_transaction(
    conn: Connection, request: RunRequest, run_id: UUID, reuse: Reuse | None, computed: ComputedFacts | None
) -> RunResult:
    """The run's transaction, in two statements between BEGIN and COMMIT: the settings; the facts, their
    headline sums and the SUCCEEDED header in one statement (data-modifying CTEs). With `reuse`, the
    settings statement also takes the question lock and one lookup follows it."""
    report, role = request.report, config.executor_role()
    header = {f"header_{name}": value for name, value in header_values(request, run_id, "SUCCEEDED").items()}
    with conn.begin() as transaction:
        settings = report.transaction_settings()
        values = setting_values(request.tenant_id, role, settings)
        conn.execute(
            run_settings(role, check_interval=True, report_settings=settings, lock_question=reuse is not None),
            values if reuse is None else values | question_lock_values(request),
        )
        earlier = _reusable_run(conn, request, reuse) if reuse is not None else None
        if earlier is not None:
            transaction.rollback()  # nothing was written; the question lock is released
            return earlier
        if computed is None:
            sums = conn.execute(_facts_sums_and_header(report, False), request.sql_params() | header).one()
        else:
            given = {"computed_rows": computed.rows_json(), "computed_scope_digest": computed.scope_digest}
            sums = conn.execute(_facts_sums_and_header(report, True), given | header).one()
        if not sums.tenant_present:  # deleted since the request was validated: roll back, record FAILED
            raise TenantGone(request.tenant_id)
        headline = headline_of(conn, report, request.tenant_id, run_id, sums)
    return RunResult(
        run_id, "SUCCEEDED", request, fact_rows=sums.fact_rows, headline=headline, scope_digest=sums.scope_digest
    )


@functools.cache
def _facts_sums_and_header(report: ReportDefinition, given: bool) -> Select:
    """WITH facts AS (INSERT INTO <fact table> SELECT :run_id, :tenant_id, q.* FROM (<report sql>) q
    RETURNING ...), sums AS (SELECT count(*) AS fact_rows, <headline sums>, EXISTS (<the tenant in
    crm.tenant>) AS tenant_present, (<SCOPE_DIGEST>) AS scope_digest FROM facts), header AS (INSERT
    report_run ... SUCCEEDED, sums.scope_digest, clock_timestamp() FROM sums) SELECT * FROM sums.

    The header reads `sums`, so it is written once every fact is in: the run is SUCCEEDED from its first
    visible moment, `generated_at` is when it completed, and no UPDATE follows (an IN_PROGRESS header is
    never visible outside its transaction). The facts' foreign key and `facts_need_succeeded_run` are
    checked at the end of the statement, when both are inserted. Built once per report (every value is a
    bound parameter: `header_<column>` and the report's own). `given`: the facts are `:computed_rows` (a JSON
    array of objects, `ComputedFacts.rows_json()`) and the scope digest `:computed_scope_digest`, both from a
    multi-period pass, instead of the report's statement and SCOPE_DIGEST."""
    table = report.fact_table
    fact_columns = [table.c[name] for name in report.fact_columns]
    source = given_rows_sql(report) if given else report.sql
    computed = text(source).columns(*fact_columns).subquery("computed")
    rows = select(
        bindparam("header_run_id", type_=PG_UUID(as_uuid=True)),
        bindparam("header_tenant_id", type_=PG_UUID(as_uuid=True)),
        *(computed.c[name] for name in report.fact_columns),
    )
    facts = (
        insert(table)
        .from_select(["run_id", "tenant_id", *report.fact_columns], rows)
        .returning(*(table.c[name] for name in report.headline_metrics))
        .cte("facts")
    )
    # One snapshot for the facts and this check: a tenant deleted with its data is seen gone, never half.
    present = select(tenant.c.tenant_id).where(tenant.c.tenant_id == bindparam("header_tenant_id")).exists()
    # The stages and pipelines in the run's scope, read on that snapshot too (reports/scope_digest.py).
    scope = (
        bindparam("computed_scope_digest", type_=Text)
        if given
        else text(SCOPE_DIGEST).columns(column("scope_digest", Text)).scalar_subquery()
    )
    sums = select(
        func.count().label("fact_rows"),
        *_headline_sums(report, facts.c),
        present.label("tenant_present"),
        scope.label("scope_digest"),
    ).cte("sums")
    computed_columns = ("generated_at", "error_message", "scope_digest")
    header_columns = [c.name for c in report_run.columns if c.name not in computed_columns]
    completed = select(
        *(bindparam(f"header_{name}", type_=report_run.c[name].type) for name in header_columns),
        sums.c.scope_digest,
        func.clock_timestamp(),
    ).select_from(sums)
    header = (
        insert(report_run)
        .from_select([*header_columns, "scope_digest", "generated_at"], completed)
        .returning(report_run.c.run_id)
    )
    return select(sums).add_cte(header.cte("header"))


def _reusable_run(conn: Connection, request: RunRequest, reuse: Reuse) -> RunResult | None:
    """The committed run `reuse` allows for `request` (with its fact count and headline sums), if any."""
    run_id = conn.execute(REUSABLE_RUN, reuse.lookup_params(request)).scalar_one_or_none()
    if run_id is None:
        return None
    report = request.report
    stored = conn.execute(_stored_sums(report), {"tenant_id": request.tenant_id, "run_id": run_id}).one()
    headline = headline_of(conn, report, request.tenant_id, run_id, stored)
    return RunResult(run_id, "SUCCEEDED", request, fact_rows=stored.fact_rows, headline=headline, reused=True)


@functools.cache
def _stored_sums(report: ReportDefinition) -> Select:
    """A committed run's fact count and headline sums (`:tenant_id`, `:run_id`), read back."""
    table = report.fact_table
    return select(func.count().label("fact_rows"), *_headline_sums(report, table.c)).where(
        table.c.tenant_id == bindparam("tenant_id"), table.c.run_id == bindparam("run_id")
    )


def _headline_sums(report: ReportDefinition, columns: Any) -> list:
    """sum(bigint) is numeric in PostgreSQL: sums of count columns are cast back to bigint."""
    sums = []
    for name in report.headline_metrics:
        total = func.coalesce(func.sum(columns[name]), 0)
        is_count = isinstance(report.fact_table.c[name].type, BigInteger)
        sums.append((cast(total, BigInteger) if is_count else total).label(name))
    return sums


def headline_of(
    conn: Connection, report: ReportDefinition, tenant_id: UUID, run_id: UUID, sums: Any = None
) -> dict[str, Decimal | int]:
    """Sums of the report's additive metrics over a run's facts (the numbers Dagster plots): read back from
    the fact table, or taken from `sums`, the row the run's own statement returned them in."""
    if sums is None:
        table = report.fact_table
        sums = conn.execute(
            select(*_headline_sums(report, table.c)).where(table.c.tenant_id == tenant_id, table.c.run_id == run_id)
        ).one()
    return {name: sums._mapping[name] for name in report.headline_metrics}


def headline_text(headline: dict[str, Decimal | int]) -> str:
    """The headline sums as `deal_count=12, total_amount=3400.00`: how the CLI and the demo print them."""
    return ", ".join(f"{name}={value}" for name, value in headline.items())


def _jsonable(value: Any) -> Any:
    return str(value) if isinstance(value, Decimal) else value
