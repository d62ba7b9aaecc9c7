"""Deterministic synthetic CRM data for `dyno-reports seed`, the demo, tests and benchmarks.

Fills the `crm` tables of the source contract with tenants, owners, pipelines, stages,
deals and a type-2 history in which deals advance (sometimes skipping a stage), fall
back, are won or lost, reopened and closed again (sometimes the other way), change
amount, owner or close date, are deleted and sometimes restored, and move between
pipelines. Rows lie in `[start, end)`, in whole seconds. The same arguments give
byte-identical rows, UUIDs included: each tenant and each deal has its own
`random.Random` derived from (seed, tenant, deal), so deals and their history are
streamed with COPY in two passes without holding a tenant in memory. A tenant's id
depends on (seed, index) only; tenants that already exist are skipped (idempotent).
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal
from itertools import accumulate
from uuid import UUID

import psycopg
from sqlalchemy import Engine

from dyno_reports.errors import ConfigError, InputError

DEFAULT_START = datetime(2024, 7, 1, tzinfo=timezone.utc)
DEFAULT_END = datetime(2025, 7, 1, tzinfo=timezone.utc)

COMPANIES = ("Acme", "Globex", "Initech", "Umbrella", "Hooli", "Stark", "Wayne", "Tyrell")
FIRST_NAMES = ("Ada", "Ben", "Chloe", "Dev", "Elena", "Farid", "Grace", "Hiro", "Ines", "Jonas")
LAST_NAMES = ("Meyer", "Okafor", "Novak", "Silva", "Tanaka", "Dubois", "Larsen", "Kowalski")
PRODUCTS = ("Platform", "Analytics", "Support plan", "Seats", "Integration", "Training", "Upgrade")
# Per pipeline: (name, probability, kind) at positions 1, 2, ...: open stages, then won, then lost.
PIPELINES: tuple[tuple[str, tuple[tuple[str, str, str], ...]], ...] = (
    ("New business", (
        ("Lead", "0.1000", "open"), ("Qualified", "0.2500", "open"), ("Proposal", "0.5000", "open"),
        ("Negotiation", "0.7500", "open"), ("Won", "1.0000", "won"), ("Lost", "0.0000", "lost"),
    )),
    ("Renewals", (
        ("Upcoming", "0.4000", "open"), ("In discussion", "0.6000", "open"),
        ("Contract sent", "0.8500", "open"), ("Renewed", "1.0000", "won"), ("Churned", "0.0000", "lost"),
    )),
)
OPEN_EVENTS = ("advance", "back", "win", "lose", "amount", "owner", "close_date", "delete", "move", "rest")
OPEN_WEIGHTS = tuple(accumulate((40, 8, 10, 10, 10, 6, 8, 3, 3, 2)))  # cumulative
CLOSED_EVENTS = ("reopen", "flip", "amount", "owner", "delete", "rest")
CLOSED_WEIGHTS = tuple(accumulate((30, 6, 6, 3, 4, 25)))
# Seconds between two changes of a deal: minutes, hours, days or weeks.
GAPS = ((300, 3_600), (3_600, 86_400), (86_400, 7 * 86_400), (7 * 86_400, 40 * 86_400))
GAP_WEIGHTS = tuple(accumulate((10, 15, 40, 35)))
PROGRESS_MIN_DEALS = 10_000
DEAL_COPY = "COPY crm.deal (tenant_id, deal_id, name, created_at) FROM STDIN (FORMAT BINARY)"
DEAL_TYPES = ("uuid", "uuid", "text", "timestamptz")
HISTORY_COPY = ("COPY crm.deal_history (tenant_id, deal_id, valid_from, stage_id, owner_principal_id,"
                " amount, expected_close_date, is_deleted) FROM STDIN (FORMAT BINARY)")
HISTORY_TYPES = ("uuid", "uuid", "timestamptz", "uuid", "uuid", "numeric", "date", "bool")
HistoryRow = tuple[UUID, UUID, datetime, UUID, UUID, Decimal, date | None, bool]


@dataclass(frozen=True)
class SeededTenant:
    """One tenant `seed()` handled; `created` is False when it already existed and was skipped."""

    tenant_id: UUID
    name: str
    deals: int
    history_rows: int
    created: bool


@dataclass(frozen=True)
class _Tenant:
    seed: int
    index: int
    start: datetime
    end: datetime
    tenant_id: UUID
    name: str
    principals: tuple[UUID, ...]
    principal_names: tuple[str, ...]
    pipelines: tuple[UUID, ...]
    stages: tuple[tuple[UUID, ...], ...]  # per pipeline, by position (layout of PIPELINES)
    open_counts: tuple[int, ...]  # n open stages per pipeline: indexes 0..n-1, won n, lost n+1


@dataclass
class _State:
    pipeline: int
    position: int
    owner: UUID
    cents: int
    close: date | None
    deleted: bool = False


def _uuid(rng: random.Random) -> UUID:
    return UUID(int=rng.getrandbits(128), version=4)


def _tenant(random_seed: int, index: int, start: datetime, end: datetime) -> _Tenant:
    """Tenant `index` of `random_seed`: its ids and names depend on nothing else."""
    rng = random.Random(f"dyno-seed:{random_seed}:tenant:{index}")
    tenant_id = _uuid(rng)
    people = rng.sample([f"{f} {last}" for f in FIRST_NAMES for last in LAST_NAMES], rng.randint(4, 8))
    return _Tenant(
        seed=random_seed, index=index, start=start, end=end, tenant_id=tenant_id,
        name=f"{COMPANIES[index % len(COMPANIES)]} {index + 1} (seed {random_seed})",
        principals=tuple(_uuid(rng) for _ in people),
        principal_names=tuple(people),
        pipelines=tuple(_uuid(rng) for _ in PIPELINES),
        stages=tuple(tuple(_uuid(rng) for _ in stages) for _, stages in PIPELINES),
        open_counts=tuple(sum(kind == "open" for _, _, kind in stages) for _, stages in PIPELINES),
    )


def _deal(t: _Tenant, index: int) -> tuple[random.Random, UUID, str, datetime]:
    """Deal `index`'s generator after its first draws: deal_id, name and created_at (both passes make them)."""
    rng = random.Random(f"dyno-seed:{t.seed}:tenant:{t.index}:deal:{index}")
    deal_id = _uuid(rng)
    name = f"{rng.choice(COMPANIES)} {rng.choice(PRODUCTS)} #{index + 1}"
    span = max(int((t.end - t.start).total_seconds()), 1)
    return rng, deal_id, name, t.start + timedelta(seconds=rng.randrange(span))


def _gap(rng: random.Random) -> timedelta:
    """Integer arithmetic only (no libm), so every platform draws the same instants."""
    low, high = rng.choices(GAPS, cum_weights=GAP_WEIGHTS)[0]
    return timedelta(seconds=rng.randint(low, high))


def _history(t: _Tenant, index: int) -> Iterator[HistoryRow]:
    """Deal `index`'s rows, first at its created_at, then one per change until it rests or reaches `end`."""
    rng, deal_id, _, created = _deal(t, index)
    pipeline = 0 if rng.random() < 0.75 else 1
    cents = rng.randint(1_000_00, 20_000_00) * rng.choice((1, 1, 2, 3, 5, 10))
    close = None if rng.random() < 0.2 else created.date() + timedelta(days=rng.randint(14, 180))
    state = _State(pipeline, rng.choice((0, 0, 0, 1)), rng.choice(t.principals), cents, close)
    at = created
    for _ in range(rng.randint(4, 16)):
        yield (t.tenant_id, deal_id, at, t.stages[state.pipeline][state.position], state.owner,
               Decimal(state.cents).scaleb(-2), state.close, state.deleted)
        at += _gap(rng)
        if at >= t.end or not _change(rng, t, state, at):
            return


def _change(rng: random.Random, t: _Tenant, s: _State, at: datetime) -> bool:
    """Apply one random change to `s`; False when the deal rests from now on."""
    if s.deleted:  # sometimes restored, else deleted for good
        if rng.random() >= 0.4:
            return False
        s.deleted = False
        return True
    n_open = t.open_counts[s.pipeline]
    events, weights = (OPEN_EVENTS, OPEN_WEIGHTS) if s.position < n_open else (CLOSED_EVENTS, CLOSED_WEIGHTS)
    event = rng.choices(events, cum_weights=weights)[0]
    if event == "advance" and s.position == n_open - 1:
        event = "win"  # advancing from the last open stage
    if event == "rest":
        return False
    elif event == "advance":
        s.position = min(s.position + (2 if rng.random() < 0.2 else 1), n_open - 1)
    elif event == "back" and s.position > 0:
        s.position -= 1
    elif event in ("back", "amount"):
        s.cents = 0 if rng.random() < 0.02 else max(s.cents, 100_00) * rng.randint(50, 160) // 100
    elif event == "owner":
        s.owner = rng.choice([p for p in t.principals if p != s.owner])
    elif event == "close_date":
        s.close = None if s.close and rng.random() < 0.15 else at.date() + timedelta(days=rng.randint(7, 120))
    elif event == "delete":
        s.deleted = True
    elif event == "move":
        s.pipeline = 1 - s.pipeline
        s.position = rng.randrange(t.open_counts[s.pipeline])
    elif event == "reopen":
        s.position = rng.randrange(n_open)
    elif event == "flip":
        s.position = n_open + (1 if s.position == n_open else 0)
    if event in ("win", "lose"):
        s.position = n_open + (0 if event == "win" else 1)
        s.close = at.date() if rng.random() < 0.7 else s.close
    return True


def _insert_tenant(cur: psycopg.Cursor, t: _Tenant) -> bool:
    """Insert the tenant with its principals, pipelines and stages; False if it already existed."""
    cur.execute(
        "INSERT INTO crm.tenant (tenant_id, name, created_at) VALUES (%s, %s, %s)"
        " ON CONFLICT (tenant_id) DO NOTHING RETURNING tenant_id",
        (t.tenant_id, t.name, t.start),
    )
    if cur.fetchone() is None:
        return False
    cur.executemany("INSERT INTO crm.principal (tenant_id, principal_id, display_name) VALUES (%s, %s, %s)",
                    [(t.tenant_id, pid, name) for pid, name in zip(t.principals, t.principal_names)])
    cur.executemany("INSERT INTO crm.pipeline (tenant_id, pipeline_id, name) VALUES (%s, %s, %s)",
                    [(t.tenant_id, pid, name) for pid, (name, _) in zip(t.pipelines, PIPELINES)])
    cur.executemany(
        "INSERT INTO crm.stage (tenant_id, stage_id, pipeline_id, name, position, probability, kind)"
        " VALUES (%s, %s, %s, %s, %s, %s, %s)",
        [(t.tenant_id, sid, pid, name, pos, Decimal(prob), kind)
         for pid, sids, (_, stages) in zip(t.pipelines, t.stages, PIPELINES)
         for pos, (sid, (name, prob, kind)) in enumerate(zip(sids, stages), start=1)],
    )
    return True


def _existing(cur: psycopg.Cursor, t: _Tenant) -> SeededTenant:
    cur.execute("SELECT (SELECT count(*) FROM crm.deal WHERE tenant_id = %(t)s),"
                " (SELECT count(*) FROM crm.deal_history WHERE tenant_id = %(t)s)", {"t": t.tenant_id})
    deals, rows = cur.fetchone() or (0, 0)
    return SeededTenant(t.tenant_id, t.name, deals, rows, created=False)


def _copy_history(cur: psycopg.Cursor, t: _Tenant, deals: range) -> int:
    """Pass 2 over `deals`: regenerate each deal and COPY its history rows; returns how many."""
    rows = 0
    with cur.copy(HISTORY_COPY) as copy:
        copy.set_types(HISTORY_TYPES)
        for d in deals:
            for row in _history(t, d):
                copy.write_row(row)
                rows += 1
    return rows


def _seed_tenant(conn: psycopg.Connection, t: _Tenant, deals: int, progress: Callable[[str], None]) -> SeededTenant:
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
                copy.write_row((t.tenant_id, *_deal(t, d)[1:]))
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


def seed(engine: Engine, *, tenants: int = 3, deals_per_tenant: int = 300, random_seed: int = 7,
         start: datetime = DEFAULT_START, end: datetime = DEFAULT_END,
         progress: Callable[[str], None] | None = None) -> list[SeededTenant]:
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
        seeded = [_seed_tenant(conn, _tenant(random_seed, i, start, end), deals_per_tenant, report)
                  for i in range(tenants)]
        if any(t.created for t in seeded):
            # Fresh statistics, so the reports' plans see the new volume at once (autovacuum may lag).
            conn.execute("ANALYZE crm.deal, crm.deal_history, crm.stage")
            conn.commit()
        return seeded
    finally:
        raw.close()
