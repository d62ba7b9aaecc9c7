"""In-memory CRM histories for tests: build them, generate them (hypothesis), load them (real PostgreSQL).

A `TenantData` is the whole CRM content of one tenant. Ids come from small fixed
pools on purpose: different tenants in one database share deal, stage and
pipeline UUIDs, so a query that forgets the tenant predicate mixes them up and
the comparison with the reference fails.
"""

import uuid
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

from hypothesis import strategies as st
from sqlalchemy import Engine, insert

from dyno_reports.storage import tables

T0 = datetime(2025, 6, 2, tzinfo=UTC)  # a Monday
PIPELINE_IDS = [uuid.UUID(int=0xA000 + i) for i in range(3)]
STAGE_IDS = [uuid.UUID(int=0xB000 + i) for i in range(24)]
PRINCIPAL_IDS = [uuid.UUID(int=0xC000 + i) for i in range(4)]
DEAL_IDS = [uuid.UUID(int=0xD000 + i) for i in range(64)]
# A tenant's calendar as crm.tenant holds it: (time_zone, week_start, fiscal_year_start_month, fiscal_year_named_by).
UTC_CALENDAR = ("UTC", 1, 1, "end")


@dataclass(frozen=True)
class Stage:
    stage_id: uuid.UUID
    pipeline_id: uuid.UUID
    position: int
    kind: str
    probability: Decimal


@dataclass(frozen=True)
class Row:
    """A history row; `recorded_at` (when the CRM wrote it) defaults to its valid_from, as external loaders
    write history; a late row (an import, a correction) is recorded after it."""

    deal_id: uuid.UUID
    valid_from: datetime
    stage_id: uuid.UUID
    owner_id: uuid.UUID
    amount: Decimal
    close_date: date | None = None
    is_deleted: bool = False
    recorded_at: datetime = None  # type: ignore[assignment]  # None: valid_from (set below)

    def __post_init__(self) -> None:
        if self.recorded_at is None:
            object.__setattr__(self, "recorded_at", self.valid_from)


@dataclass
class TenantData:
    tenant_id: uuid.UUID = field(default_factory=uuid.uuid4)
    stages: dict[uuid.UUID, Stage] = field(default_factory=dict)
    principals: list[uuid.UUID] = field(default_factory=lambda: list(PRINCIPAL_IDS[:2]))
    created_at: dict[uuid.UUID, datetime] = field(default_factory=dict)
    rows: list[Row] = field(default_factory=list)
    calendar: tuple[str, int, int, str] = UTC_CALENDAR

    @property
    def pipelines(self) -> list[uuid.UUID]:
        return sorted({s.pipeline_id for s in self.stages.values()})

    def rows_of(self, deal_id: uuid.UUID) -> list[Row]:
        return sorted((r for r in self.rows if r.deal_id == deal_id), key=lambda r: r.valid_from)

    def add_pipeline(self, pipeline_id: uuid.UUID, kinds: list[str]) -> list[Stage]:
        """Stages in position order (1, 2, ...), with probabilities rising along the open ones."""
        added = []
        for position, kind in enumerate(kinds, start=1):
            stage_id = STAGE_IDS[len(self.stages)]
            probability = {"won": Decimal(1), "lost": Decimal(0)}.get(kind, Decimal(position) / Decimal(10))
            stage = Stage(stage_id, pipeline_id, position, kind, probability)
            self.stages[stage_id] = stage
            added.append(stage)
        return added

    def add_deal(self, deal_id: uuid.UUID, rows: list[tuple]) -> None:
        """rows: (valid_from, stage, amount[, owner, close_date, is_deleted]); the first dates the deal."""
        for i, (valid_from, stage, amount, *rest) in enumerate(rows):
            owner = rest[0] if len(rest) > 0 and rest[0] is not None else self.principals[0]
            close_date = rest[1] if len(rest) > 1 else None
            deleted = rest[2] if len(rest) > 2 else False
            if i == 0:
                self.created_at[deal_id] = valid_from
            self.rows.append(Row(deal_id, valid_from, stage.stage_id, owner, Decimal(amount), close_date, deleted))


def load(engine: Engine, data: TenantData) -> None:
    """Insert the tenant's CRM content with plain inserts, as an external loader would (each row with its
    recorded_at)."""
    t = data.tenant_id
    with engine.begin() as conn:
        zone, week_start, fiscal_start, named_by = data.calendar
        conn.execute(
            insert(tables.tenant).values(
                tenant_id=t,
                name=f"test {t}",
                time_zone=zone,
                week_start=week_start,
                fiscal_year_start_month=fiscal_start,
                fiscal_year_named_by=named_by,
            )
        )
        conn.execute(
            insert(tables.principal),
            [{"tenant_id": t, "principal_id": p, "display_name": f"owner {i}"} for i, p in enumerate(data.principals)],
        )
        if data.pipelines:
            conn.execute(
                insert(tables.pipeline),
                [{"tenant_id": t, "pipeline_id": p, "name": f"pipeline {i}"} for i, p in enumerate(data.pipelines)],
            )
            conn.execute(
                insert(tables.stage),
                [
                    {
                        "tenant_id": t,
                        "stage_id": s.stage_id,
                        "pipeline_id": s.pipeline_id,
                        "name": f"{s.kind} {s.position}",
                        "position": s.position,
                        "probability": s.probability,
                        "kind": s.kind,
                    }
                    for s in data.stages.values()
                ],
            )
        if data.created_at:
            conn.execute(
                insert(tables.deal),
                [
                    {"tenant_id": t, "deal_id": d, "name": f"deal {d.int:x}", "created_at": c}
                    for d, c in data.created_at.items()
                ],
            )
        if data.rows:
            conn.execute(insert(tables.deal_history), history_values(t, data.rows))


def load_rows(engine: Engine, data: TenantData, rows: list[Row]) -> None:
    """Insert more history rows of the tenant `load` loaded (rows that land later: imports, corrections)."""
    if rows:
        with engine.begin() as conn:
            conn.execute(insert(tables.deal_history), history_values(data.tenant_id, rows))


def history_values(tenant_id: uuid.UUID, rows: list[Row]) -> list[dict]:
    """The crm.deal_history rows of `rows`, recorded_at included."""
    return [
        {
            "tenant_id": tenant_id,
            "deal_id": r.deal_id,
            "valid_from": r.valid_from,
            "stage_id": r.stage_id,
            "owner_principal_id": r.owner_id,
            "amount": r.amount,
            "expected_close_date": r.close_date,
            "is_deleted": r.is_deleted,
            "recorded_at": r.recorded_at,
        }
        for r in rows
    ]


def two_pipelines(open_stages_in_first: int = 2) -> tuple[TenantData, list[Stage], list[Stage]]:
    """A tenant with pipeline A (`open_stages_in_first` open stages, won, lost) and B (open, won, lost)."""
    data = TenantData()
    first = data.add_pipeline(PIPELINE_IDS[0], ["open"] * open_stages_in_first + ["won", "lost"])
    second = data.add_pipeline(PIPELINE_IDS[1], ["open", "won", "lost"])
    return data, first, second


# --- hypothesis strategies ---------------------------------------------------

# Times on a coarse grid (hours over ~7 weeks around T0), so entries, exits and
# window bounds often coincide exactly: the boundary cases are where bugs live.
instants = st.integers(min_value=-21 * 24, max_value=28 * 24).map(lambda h: T0 + timedelta(hours=h))
amounts = st.decimals(min_value=0, max_value=100_000, places=2, allow_nan=False, allow_infinity=False)
close_dates = st.none() | st.dates(min_value=date(2025, 4, 1), max_value=date(2025, 9, 30))


@st.composite
def tenant_histories(draw: st.DrawFn, max_deals: int = 10) -> TenantData:
    """1-2 pipelines of 1-4 open stages plus won and lost (sometimes shuffled), and deals whose
    rows jump between any stages (skips, repeats, reopenings, moves between pipelines),
    change only amount/owner/close date, or get deleted and restored."""
    data = TenantData(principals=draw(st.lists(st.sampled_from(PRINCIPAL_IDS), min_size=1, max_size=3, unique=True)))
    for pipeline_id in PIPELINE_IDS[: draw(st.integers(1, 2))]:
        kinds = ["open"] * draw(st.integers(1, 4)) + ["won", "lost"]
        data.add_pipeline(pipeline_id, draw(st.permutations(kinds)) if draw(st.booleans()) else kinds)
    stages = list(data.stages.values())
    for deal_id in draw(st.lists(st.sampled_from(DEAL_IDS), max_size=max_deals, unique=True)):
        times = sorted(draw(st.lists(instants, min_size=1, max_size=7, unique=True)))
        previous: tuple | None = None
        rows = []
        for when in times:
            if previous is not None and draw(st.integers(0, 3)) == 0:  # same stage, other attributes change
                stage = previous[1]
            else:
                stage = draw(st.sampled_from(stages))
            row = (
                when,
                stage,
                draw(amounts),
                draw(st.sampled_from(data.principals)),
                draw(close_dates),
                draw(st.integers(0, 6)) == 0,
            )
            rows.append(row)
            previous = row
        data.add_deal(deal_id, rows)
    return data


@st.composite
def busy_histories(draw: st.DrawFn) -> TenantData:
    """Stages laid out as tenant_histories lays them, then 8-30 deals of 2-7 rows each (the shared
    strategy mostly draws a few short deals, so few stages see several entries or exits); half the
    time every row moves off the hour grid by under an hour, to the microsecond (rows of a deal
    stay in order: they are whole hours apart)."""
    data = draw(tenant_histories(max_deals=0))  # no deals: only its pipelines and stages
    stages = list(data.stages.values())
    jitter = st.integers(0, 3600 * 10**6 - 1).map(lambda us: timedelta(microseconds=us))
    offsets = jitter if draw(st.booleans()) else st.just(timedelta(0))
    for deal_id in draw(st.lists(st.sampled_from(DEAL_IDS), min_size=8, max_size=30, unique=True)):
        times = sorted(draw(st.lists(instants, min_size=2, max_size=7, unique=True)))
        data.add_deal(
            deal_id,
            [
                (
                    when + draw(offsets),
                    draw(st.sampled_from(stages)),
                    draw(amounts),
                    None,
                    None,
                    draw(st.integers(0, 6)) == 0,
                )
                for when in times
            ],
        )
    return data


def windows(data: TenantData) -> st.SearchStrategy:
    """(start, end) with start None (no lower bound) a quarter of the time. Bounds are often
    exactly the time of a history row, so rows at S (inside) and at E (outside) get tested."""
    row_times = sorted({r.valid_from for r in data.rows})
    bounds = (instants | st.sampled_from(row_times)) if row_times else instants

    @st.composite
    def draw_window(draw: st.DrawFn) -> tuple[datetime | None, datetime]:
        end = draw(bounds)
        if draw(st.integers(0, 3)) == 0:
            return None, end
        before_end = [t for t in row_times if t < end]
        candidates = (instants | st.sampled_from(before_end)) if before_end else instants
        return draw(candidates.filter(lambda s: s < end)), end

    return draw_window()


def pipeline_selections(data: TenantData) -> st.SearchStrategy:
    """None (every pipeline), exactly one pipeline (a strict subset when there are two), or any
    non-empty subset of the tenant's pipelines."""
    if not data.pipelines:
        return st.none()
    one = st.sampled_from(data.pipelines).map(lambda p: [p])
    return st.none() | one | st.lists(st.sampled_from(data.pipelines), min_size=1, unique=True)


def load_small_tenant(engine: Engine, amount: int, tenant_id: uuid.UUID | None = None) -> str:
    """A tenant with one open deal of `amount` in a four-stage pipeline, loaded; returns its id."""
    data = TenantData(tenant_id=tenant_id or uuid.uuid4())
    lead, _proposal, _won, _lost = data.add_pipeline(PIPELINE_IDS[0], ["open", "open", "won", "lost"])
    data.add_deal(DEAL_IDS[0], [(T0 - timedelta(days=3), lead, amount)])
    load(engine, data)
    return str(data.tenant_id)
