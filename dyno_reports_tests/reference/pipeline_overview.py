"""pipeline_overview as docs/definitions.md defines it, in plain Python."""

from datetime import datetime
from decimal import Decimal
from uuid import UUID

from dyno_reports_tests.reference.common import (
    as_known_at,
    days_between,
    in_window,
    mean,
    population,
    ratio,
    round_half_away,
    selected_stages,
    stints,
)
from dyno_reports_tests.support.history import TenantData


def expected(
    data: TenantData,
    start: datetime | None,
    end: datetime,
    pipeline_ids: list[UUID] | None = None,
    include_closed: bool = False,
    *,
    known_at: datetime | None = None,
) -> dict[tuple, dict]:
    """(pipeline_id, stage_id) -> the fact row's columns."""
    data = as_known_at(data, known_at)
    live = population(data, end)
    facts = {}
    for stage in selected_stages(data, pipeline_ids, None if include_closed else {"open"}):
        here = [d for d, row in live.items() if row.stage_id == stage.stage_id]
        total = sum((live[d].amount for d in here), Decimal("0.00"))
        current_stint_days = [days_between(stints(data, d, end)[-1].entered_at, end) for d in here]
        entered = {
            d
            for d in live
            for s in stints(data, d, end)
            if s.stage_id == stage.stage_id and in_window(s.entered_at, start, end)
        }
        facts[(stage.pipeline_id, stage.stage_id)] = {
            "pipeline_id": stage.pipeline_id,
            "stage_id": stage.stage_id,
            "deal_count": len(here),
            "total_amount": total,
            "avg_amount": round_half_away(ratio(total, len(here)), 2),
            "avg_days_in_stage": round_half_away(mean(current_stint_days), 2),
            "entered_count": len(entered),
        }
    return facts
