"""win_loss as docs/definitions.md defines it, in plain Python."""

from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from uuid import UUID

from dyno_reports_tests.reference.common import (
    as_known_at,
    days_between,
    entries,
    in_window,
    mean,
    population,
    ratio,
    round_half_away,
    selected_stages,
)
from dyno_reports_tests.support.history import Row, TenantData


@dataclass(frozen=True)
class Counted:
    """A counted deal: its last closing event in W and that event's kind."""

    deal_id: UUID
    closing_row: Row
    pipeline_id: UUID
    kind: str


def counted_deals(
    data: TenantData, start: datetime | None, end: datetime, pipeline_ids: list[UUID] | None = None
) -> list[Counted]:
    """Population deals whose last closing event in W (into a stage of a selected pipeline)
    is of the same kind as the stage of their state at E (whatever that stage's pipeline)."""
    closing_stages = {s.stage_id: s for s in selected_stages(data, pipeline_ids, {"won", "lost"})}
    counted = []
    for deal_id, state in population(data, end).items():
        closings = [
            r
            for r in entries(data, deal_id, end)
            if r.stage_id in closing_stages and in_window(r.valid_from, start, end)
        ]
        if not closings:
            continue
        last = closings[-1]
        stage = closing_stages[last.stage_id]
        if data.stages[state.stage_id].kind == stage.kind:
            counted.append(Counted(deal_id, last, stage.pipeline_id, stage.kind))
    return counted


def expected(
    data: TenantData,
    start: datetime | None,
    end: datetime,
    pipeline_ids: list[UUID] | None = None,
    *,
    known_at: datetime | None = None,
) -> dict[tuple, dict]:
    """(pipeline_id, principal_id) -> the fact row's columns."""
    data = as_known_at(data, known_at)
    groups: dict[tuple, list[Counted]] = defaultdict(list)
    for deal in counted_deals(data, start, end, pipeline_ids):
        groups[(deal.pipeline_id, deal.closing_row.owner_id)].append(deal)
    return {key: _row(data, key, deals) for key, deals in groups.items()}


def _row(data: TenantData, key: tuple, deals: list[Counted]) -> dict:
    won = [d for d in deals if d.kind == "won"]
    lost = [d for d in deals if d.kind == "lost"]
    won_amount = sum((d.closing_row.amount for d in won), Decimal("0.00"))
    lost_amount = sum((d.closing_row.amount for d in lost), Decimal("0.00"))
    cycle_days = [days_between(data.created_at[d.deal_id], d.closing_row.valid_from) for d in won]
    return {
        "pipeline_id": key[0],
        "principal_id": key[1],
        "won_count": len(won),
        "lost_count": len(lost),
        "won_amount": won_amount,
        "lost_amount": lost_amount,
        "win_rate": round_half_away(ratio(len(won), len(won) + len(lost)), 4),
        "win_rate_by_value": round_half_away(ratio(won_amount, won_amount + lost_amount), 4),
        "avg_cycle_days": round_half_away(mean(cycle_days), 2),
    }
