"""Deterministic synthetic CRM data for `dyno-reports seed`, the demo, tests and benchmarks.

Loads the world of `synthetic.py` into the `crm` tables with binary COPY, one
transaction per tenant: the catalog, then the deals (pass 1), then their history
(pass 2, regenerated deal by deal), so memory stays flat at any size. The same
arguments give byte-identical rows, UUIDs included. A tenant's id depends on
(seed, index) only; tenants that already exist are skipped (idempotent).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from uuid import UUID

import psycopg
from sqlalchemy import Engine

from dyno_reports.core.errors import ConfigError, InputError
from dyno_reports.devtools.synthetic import PIPELINES, TenantPlan, deal_header, history_rows, plan_tenant

DEFAULT_START = datetime(2024, 7, 1, tzinfo=UTC)
DEFAULT_END = datetime(2025, 7, 1, tzinfo=UTC)

PROGRESS_MIN_DEALS = 10_000
DEAL_COPY = "COPY crm.deal (tenant_id, deal_id, name, created_at) FROM STDIN (FORMAT BINARY)"
DEAL_TYPES = ("uuid", "uuid", "text", "timestamptz")
# A seeded history is a load of the past: each row recorded at its valid_from, as an external loader writes
# history (docs/definitions.md, "As known at"), so a run at any K after it sees the rows dated before K.
HISTORY_COPY = (
    "COPY crm.deal_history (tenant_id, deal_id, valid_from, stage_id, owner_principal_id,"
    " amount, expected_close_date, is_deleted, recorded_at) FROM STDIN (FORMAT BINARY)"
)
HISTORY_TYPES = ("uuid", "uuid", "timestamptz", "uuid", "uuid", "numeric", "date", "bool", "timestamptz")


@dataclass(frozen=True)
class SeededTenant:
    """One tenant `seed()` handled; `created` is False when it already existed and was skipped."""

    tenant_id: UUID
    name: str
    deals: int
    history_rows: int
    created: bool


def _insert_tenant(cur: psycopg.Cursor, t: TenantPlan) -> bool:
    """Insert the tenant (with its calendar) and its principals, pipelines and stages; False if it already existed."""
    calendar = t.calendar
    cur.execute(
        "INSERT INTO crm.tenant (tenant_id, name, created_at, time_zone, week_start, fiscal_year_start_month,"
        " fiscal_year_named_by) VALUES (%s, %s, %s, %s, %s, %s, %s)"
        " ON CONFLICT (tenant_id) DO NOTHING RETURNING tenant_id",
        (
            t.tenant_id,
            t.name,
            t.start,
            calendar.time_zone,
            calendar.week_start,
            calendar.fiscal_year_start_month,
            calendar.fiscal_year_named_by,
        ),
    )
    if cur.fetchone() is None:
        return False
    cur.executemany(
        "INSERT INTO crm.principal (tenant_id, principal_id, display_name) VALUES (%s, %s, %s)",
        [(t.tenant_id, pid, name) for pid, name in zip(t.principals, t.principal_names, strict=True)],
    )
    cur.executemany(
        "INSERT INTO crm.pipeline (tenant_id, pipeline_id, name) VALUES (%s, %s, %s)",
        [(t.tenant_id, pid, name) for pid, (name, _) in zip(t.pipelines, PIPELINES, strict=True)],
    )
    cur.executemany(
        "INSERT INTO crm.stage (tenant_id, stage_id, pipeline_id, name, position, probability, kind)"
        " VALUES (%s, %s, %s, %s, %s, %s, %s)",
        [
            (t.tenant_id, sid, pid, name, pos, Decimal(prob), kind)
            for pid, sids, (_, stages) in zip(t.pipelines, t.stages, PIPELINES, strict=True)
            for pos, (sid, (name, prob, kind)) in enumerate(zip(sids, stages, strict=True), start=1)
        ],
    )
    return True


def _existing(cur: psycopg.Cursor, t: TenantPlan) -> SeededTenant:
    cur.execute(
        "SELECT (SELECT count(*) FROM crm.deal WHERE tenant_id = %(t)s),"
        " (SELECT count(*) FROM crm.deal_history WHERE tenant_id = %(t)s)",
        {"t": t.tenant_id},
    )
    deals, rows = cur.fetchone() or (0, 0)
    return SeededTenant(t.tenant_id, t.name, deals, rows, created=False)


def _copy_history(cur: psycopg.Cursor, t: TenantPlan, deals: range) -> int:
    """Pass 2 over `deals`: regenerate each deal and COPY its history rows; returns how many."""
    rows = 0
    with cur.copy(HISTORY_COPY) as copy:
        copy.set_types(HISTORY_TYPES)
        for d in deals:
            for row in history_rows(t, d):
                copy.write_row((*row, row[2]))  # recorded_at = valid_from
                rows += 1
    return rows


def _seed_tenant(conn: psycopg.Connection, t: TenantPlan, deals: int, progress: Callable[[str], None]) -> SeededTenant:
    """Seed one tenant in one transaction: catalog, then deals (pass 1), then history (pass 2).

    Large tenants get their history in ten COPY statements, so the foreign-key checks
    PostgreSQL queues per statement stay bounded, and progress is reported after each.
    """
    with conn.cursor() as cur:
        if not _insert_tenant(cur, t):
            conn.rollback()
            progress(f"{t.name}: exists, skipped")
            return _existing(cur, t)
        with cur.copy(DEAL_COPY) as copy:
            copy.set_types(DEAL_TYPES)
            for d in range(deals):
                copy.write_row((t.tenant_id, *deal_header(t, d)[1:]))
        rows = 0
        chunk = max(deals // 10 if deals >= PROGRESS_MIN_DEALS else deals, 1)
        for low in range(0, deals, chunk):
            high = min(low + chunk, deals)
            rows += _copy_history(cur, t, range(low, high))
            if high < deals:
                progress(f"{t.name}: {high:,}/{deals:,} deals")
    conn.commit()
    progress(f"{t.name}: {deals:,} deals, {rows:,} history rows")
    return SeededTenant(t.tenant_id, t.name, deals, rows, created=True)


def seed(
    engine: Engine,
    *,
    tenants: int = 3,
    deals_per_tenant: int = 300,
    random_seed: int = 7,
    start: datetime = DEFAULT_START,
    end: datetime = DEFAULT_END,
    progress: Callable[[str], None] | None = None,
) -> list[SeededTenant]:
    """Seed `tenants` tenants of `deals_per_tenant` deals each; one committed transaction per tenant."""
    if tenants < 0 or deals_per_tenant < 0:
        raise InputError("the numbers of tenants and deals must not be negative")
    if start.tzinfo is None or end.tzinfo is None or not start < end:
        raise InputError(f"seeding needs timezone-aware start < end, got {start} and {end}")
    report = progress or (lambda _message: None)
    raw = engine.raw_connection()
    try:
        conn = raw.driver_connection
        if not isinstance(conn, psycopg.Connection):
            raise ConfigError("seeding needs a PostgreSQL engine with the psycopg (3) driver")
        # On an error the pool rolls the open transaction back when the connection is returned.
        seeded = [
            _seed_tenant(conn, plan_tenant(random_seed, i, start, end), deals_per_tenant, report)
            for i in range(tenants)
        ]
        if any(t.created for t in seeded):
            # Fresh statistics, so the reports' plans see the new volume at once (autovacuum may lag).
            conn.execute("ANALYZE crm.deal, crm.deal_history, crm.stage")
            conn.commit()
        return seeded
    finally:
        raw.close()
