"""stage_conversion as docs/definitions.md defines it, in plain Python."""

from datetime import datetime
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
from dyno_reports_tests.support.history import Stage, TenantData


def advances_from(target: Stage, stage: Stage) -> bool:
    """A stage of the same pipeline that is won, or open with a greater position than `stage`."""
    if target.pipeline_id != stage.pipeline_id:
        return False
    return target.kind == "won" or (target.kind == "open" and target.position > stage.position)


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
        entered = advanced = lost = 0
        days_to_advance = []
        for deal_id, state in live.items():
            deal_entries = entries(data, deal_id, end)
            t0 = next(
                (
                    e.valid_from
                    for e in deal_entries
                    if e.stage_id == stage.stage_id and in_window(e.valid_from, start, end)
                ),
                None,
            )
            if t0 is None:
                continue  # not in the cohort
            entered += 1
            later = [
                e.valid_from
                for e in deal_entries
                if t0 < e.valid_from < end and advances_from(data.stages[e.stage_id], stage)
            ]
            if later:
                advanced += 1
                days_to_advance.append(days_between(t0, later[0]))
            if data.stages[state.stage_id].kind == "lost":
                lost += 1
        facts[(stage.pipeline_id, stage.stage_id)] = {
            "pipeline_id": stage.pipeline_id,
            "stage_id": stage.stage_id,
            "entered_count": entered,
            "advanced_count": advanced,
            "lost_count": lost,
            "conversion_rate": round_half_away(ratio(advanced, entered), 4),
            "avg_days_to_advance": round_half_away(mean(days_to_advance), 2),
        }
    return facts
