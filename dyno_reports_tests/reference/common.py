"""The shared terms of docs/definitions.md, in plain Python, written from that page (not from our SQL).

Every function takes the tenant's `TenantData` and a window (S or None, E); a reference first reads the tenant
as known at K (`as_known_at`).
"""

import hashlib
from dataclasses import dataclass, replace
from datetime import datetime
from decimal import Decimal
from fractions import Fraction
from uuid import UUID

from dyno_reports_tests.support.history import Row, TenantData


@dataclass(frozen=True)
class Stint:
    deal_id: UUID
    stage_id: UUID
    entered_at: datetime
    exited_at: datetime | None
    entry_row: Row


def as_known_at(data: TenantData, known_at: datetime | None) -> TenantData:
    """The tenant as a run known at K reads it: history rows recorded after K are invisible (transaction
    time); its stages, pipelines and deals as they are. None: every row (the default K of a test run comes
    long after every row it draws)."""
    if known_at is None:
        return data
    return replace(data, rows=[r for r in data.rows if r.recorded_at <= known_at])


def rows_before(data: TenantData, deal_id: UUID, end: datetime) -> list[Row]:
    """The deal's rows dated before E, oldest first: rows dated >= E never influence a run."""
    return [r for r in data.rows_of(deal_id) if r.valid_from < end]


def state_at(data: TenantData, deal_id: UUID, t: datetime) -> Row | None:
    """The row with the greatest valid_from < t; None when the deal does not exist at t."""
    rows = rows_before(data, deal_id, t)
    return rows[-1] if rows else None


def population(data: TenantData, end: datetime) -> dict[UUID, Row]:
    """Deals live at E, mapped to their state at E."""
    states = {d: state_at(data, d, end) for d in data.created_at}
    return {d: row for d, row in states.items() if row is not None and not row.is_deleted}


def entries(data: TenantData, deal_id: UUID, end: datetime) -> list[Row]:
    """Rows (before E) whose stage differs from the previous row's, or that are the deal's first."""
    rows = rows_before(data, deal_id, end)
    return [r for i, r in enumerate(rows) if i == 0 or rows[i - 1].stage_id != r.stage_id]


def stints(data: TenantData, deal_id: UUID, end: datetime) -> list[Stint]:
    entry_rows = entries(data, deal_id, end)
    return [
        Stint(deal_id, r.stage_id, r.valid_from, entry_rows[i + 1].valid_from if i + 1 < len(entry_rows) else None, r)
        for i, r in enumerate(entry_rows)
    ]


def in_window(t: datetime, start: datetime | None, end: datetime) -> bool:
    return (start is None or t >= start) and t < end


def days_between(a: datetime, b: datetime) -> Fraction:
    """Exact elapsed seconds / 86,400."""
    delta = b - a
    micros = (delta.days * 86400 + delta.seconds) * 1_000_000 + delta.microseconds
    return Fraction(micros, 86400 * 1_000_000)


def round_half_away(value: Fraction | Decimal | None, places: int) -> Decimal | None:
    """PostgreSQL's round(numeric, n): half away from zero, decided exactly (values here are >= 0)."""
    if value is None:
        return None
    scaled = Fraction(value) * 10**places
    whole = scaled.numerator // scaled.denominator
    if scaled - whole >= Fraction(1, 2):
        whole += 1
    return Decimal(whole).scaleb(-places)


def mean(values: list) -> Fraction | None:
    """Exact mean; None over an empty set (NULL in docs/definitions.md)."""
    if not values:
        return None
    return sum((Fraction(v) for v in values), Fraction(0)) / len(values)


def ratio(numerator, denominator) -> Fraction | None:
    return None if not denominator else Fraction(numerator) / Fraction(denominator)


def selected_stages(data: TenantData, pipeline_ids: list[UUID] | None, kinds: set[str] | None = None):
    """Stages of the selected pipelines (None = every pipeline), optionally of some kinds."""
    return [
        s
        for s in data.stages.values()
        if (pipeline_ids is None or s.pipeline_id in pipeline_ids) and (kinds is None or s.kind in kinds)
    ]


def scope_digest(data: TenantData, pipeline_ids: list[UUID] | None = None) -> str:
    """The scope digest of docs/definitions.md ("The scope digest"): a line per pipeline in scope and per stage
    of those pipelines (names left out), sorted, sha256 in hex."""
    pipelines = [p for p in data.pipelines if pipeline_ids is None or p in pipeline_ids]
    lines = [f"pipeline,{p}\n" for p in pipelines] + [
        f"stage,{s.stage_id},{s.pipeline_id},{s.position},{s.probability:.4f},{s.kind}\n"
        for s in selected_stages(data, pipeline_ids)
    ]
    return hashlib.sha256("".join(sorted(lines)).encode()).hexdigest()
