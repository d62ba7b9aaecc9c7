"""The synthetic CRM world behind `dyno-reports seed`: tenants (with their calendars), catalog and deal
histories, no I/O.

Deals advance (sometimes skipping a stage), fall back, are won or lost, reopened
and closed again (sometimes the other way), change amount, owner or close date,
are deleted and sometimes restored, and move between pipelines. Rows lie in
`[start, end)`, in whole seconds. Each tenant and each deal has its own
`random.Random` derived from (seed, tenant, deal), so a deal can be generated
again, identically, without keeping it: `seed.py` streams deals and then their
history in two passes.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal
from itertools import accumulate
from uuid import UUID

from dyno_reports.core.tenant_calendar import TenantCalendar

HistoryRow = tuple[UUID, UUID, datetime, UUID, UUID, Decimal, date | None, bool]

COMPANIES = ("Acme", "Globex", "Initech", "Umbrella", "Hooli", "Stark", "Wayne", "Tyrell")
FIRST_NAMES = ("Ada", "Ben", "Chloe", "Dev", "Elena", "Farid", "Grace", "Hiro", "Ines", "Jonas")
LAST_NAMES = ("Meyer", "Okafor", "Novak", "Silva", "Tanaka", "Dubois", "Larsen", "Kowalski")
PRODUCTS = ("Platform", "Analytics", "Support plan", "Seats", "Integration", "Training", "Upgrade")
# Per pipeline: (name, probability, kind) at positions 1, 2, ...: open stages, then won, then lost.
PIPELINES: tuple[tuple[str, tuple[tuple[str, str, str], ...]], ...] = (
    (
        "New business",
        (
            ("Lead", "0.1000", "open"),
            ("Qualified", "0.2500", "open"),
            ("Proposal", "0.5000", "open"),
            ("Negotiation", "0.7500", "open"),
            ("Won", "1.0000", "won"),
            ("Lost", "0.0000", "lost"),
        ),
    ),
    (
        "Renewals",
        (
            ("Upcoming", "0.4000", "open"),
            ("In discussion", "0.6000", "open"),
            ("Contract sent", "0.8500", "open"),
            ("Renewed", "1.0000", "won"),
            ("Churned", "0.0000", "lost"),
        ),
    ),
)
OPEN_EVENTS = ("advance", "back", "win", "lose", "amount", "owner", "close_date", "delete", "move", "rest")
OPEN_WEIGHTS = tuple(accumulate((40, 8, 10, 10, 10, 6, 8, 3, 3, 2)))  # cumulative
CLOSED_EVENTS = ("reopen", "flip", "amount", "owner", "delete", "rest")
CLOSED_WEIGHTS = tuple(accumulate((30, 6, 6, 3, 4, 25)))
# Seconds between two changes of a deal: minutes, hours, days or weeks.
GAPS = ((300, 3_600), (3_600, 86_400), (86_400, 7 * 86_400), (7 * 86_400, 40 * 86_400))
GAP_WEIGHTS = tuple(accumulate((10, 15, 40, 35)))
# Tenants' calendars (time_zone, week_start, fiscal_year_start_month, fiscal_year_named_by): the first three
# tenants get these, so the first one keeps the default calendar (UTC periods), and further tenants cycle through
# MORE_CALENDARS. Chosen by index, never drawn: the ids and histories stay those of before calendars existed.
FIRST_CALENDARS = (
    TenantCalendar(),
    TenantCalendar("Australia/Sydney", 1, 7, "end"),  # an Australian July-June year
    TenantCalendar("America/Los_Angeles", 7, 2, "end"),  # Sunday weeks, a February-January year
)
MORE_CALENDARS = (
    TenantCalendar("Asia/Kolkata", 1, 4, "end"),  # +05:30, an April-March year
    TenantCalendar("Europe/Berlin", 1, 1, "end"),
    TenantCalendar("America/New_York", 7, 10, "end"),
    TenantCalendar("Asia/Kathmandu", 7, 7, "start"),  # +05:45, a year named by its start
    TenantCalendar("America/Sao_Paulo", 1, 1, "end"),
    TenantCalendar("Asia/Tokyo", 1, 4, "end"),
    TenantCalendar("Pacific/Auckland", 1, 4, "end"),
    TenantCalendar("America/St_Johns", 7, 11, "start"),  # -03:30
)


@dataclass(frozen=True)
class TenantPlan:
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
    calendar: TenantCalendar


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


def plan_tenant(random_seed: int, index: int, start: datetime, end: datetime) -> TenantPlan:
    """Tenant `index` of `random_seed`: its ids and names depend on nothing else."""
    rng = random.Random(f"dyno-seed:{random_seed}:tenant:{index}")
    tenant_id = _uuid(rng)
    people = rng.sample([f"{f} {last}" for f in FIRST_NAMES for last in LAST_NAMES], rng.randint(4, 8))
    return TenantPlan(
        seed=random_seed,
        index=index,
        start=start,
        end=end,
        tenant_id=tenant_id,
        name=f"{COMPANIES[index % len(COMPANIES)]} {index + 1} (seed {random_seed})",
        principals=tuple(_uuid(rng) for _ in people),
        principal_names=tuple(people),
        pipelines=tuple(_uuid(rng) for _ in PIPELINES),
        stages=tuple(tuple(_uuid(rng) for _ in stages) for _, stages in PIPELINES),
        open_counts=tuple(sum(kind == "open" for _, _, kind in stages) for _, stages in PIPELINES),
        calendar=calendar_of(index),
    )


def calendar_of(index: int) -> TenantCalendar:
    """Tenant `index`'s calendar: FIRST_CALENDARS, then MORE_CALENDARS in turn."""
    if index < len(FIRST_CALENDARS):
        return FIRST_CALENDARS[index]
    return MORE_CALENDARS[(index - len(FIRST_CALENDARS)) % len(MORE_CALENDARS)]


def deal_header(t: TenantPlan, index: int) -> tuple[random.Random, UUID, str, datetime]:
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


def history_rows(t: TenantPlan, index: int) -> Iterator[HistoryRow]:
    """Deal `index`'s rows, first at its created_at, then one per change until it rests or reaches `end`."""
    rng, deal_id, _, created = deal_header(t, index)
    pipeline = 0 if rng.random() < 0.75 else 1
    cents = rng.randint(1_000_00, 20_000_00) * rng.choice((1, 1, 2, 3, 5, 10))
    close = None if rng.random() < 0.2 else created.date() + timedelta(days=rng.randint(14, 180))
    state = _State(pipeline, rng.choice((0, 0, 0, 1)), rng.choice(t.principals), cents, close)
    at = created
    for _ in range(rng.randint(4, 16)):
        yield (
            t.tenant_id,
            deal_id,
            at,
            t.stages[state.pipeline][state.position],
            state.owner,
            Decimal(state.cents).scaleb(-2),
            state.close,
            state.deleted,
        )
        at += _gap(rng)
        if at >= t.end or not _change(rng, t, state, at):
            return


def _change(rng: random.Random, t: TenantPlan, s: _State, at: datetime) -> bool:
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
