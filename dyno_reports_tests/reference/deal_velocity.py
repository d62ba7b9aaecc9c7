"""deal_velocity as docs/definitions.md defines it, in plain Python (percentiles exact, with Fraction)."""

from datetime import datetime
from fractions import Fraction
from math import ceil, floor
from uuid import UUID

from dyno_reports_tests.reference.common import (
    as_known_at,
    days_between,
    in_window,
    mean,
    population,
    round_half_away,
    selected_stages,
    stints,
)
from dyno_reports_tests.support.history import TenantData


def percentile_cont(values: list[Fraction], fraction: Fraction) -> Fraction | None:
    """PostgreSQL's percentile_cont, exactly: linear interpolation between the sorted values
    at positions floor and ceil of fraction * (n - 1) (0-based). None over no values."""
    if not values:
        return None
    ordered = sorted(values)
    position = fraction * (len(ordered) - 1)
    below, above = ordered[floor(position)], ordered[ceil(position)]
    return below + (position - floor(position)) * (above - below)


def expected(
    data: TenantData,
    start: datetime | None,
    end: datetime,
    pipeline_ids: list[UUID] | None = None,
    *,
    known_at: datetime | None = None,
) -> dict[tuple, dict]:
    """(pipeline_id, stage_id) -> the fact row's columns."""
    data = as_known_at(data, known_at)
    live = population(data, end)
    facts = {}
    for stage in selected_stages(data, pipeline_ids, {"open"}):
        lengths = [
            days_between(s.entered_at, s.exited_at)
            for deal_id in live
            for s in stints(data, deal_id, end)
            if s.stage_id == stage.stage_id and s.exited_at is not None and in_window(s.exited_at, start, end)
        ]
        facts[(stage.pipeline_id, stage.stage_id)] = {
            "pipeline_id": stage.pipeline_id,
            "stage_id": stage.stage_id,
            "exited_count": len(lengths),
            "avg_days": round_half_away(mean(lengths), 2),
            "p50_days": round_half_away(percentile_cont(lengths, Fraction(1, 2)), 2),
            "p90_days": round_half_away(percentile_cont(lengths, Fraction(9, 10)), 2),
        }
    return facts
