"""weighted_pipeline as docs/definitions.md defines it, in plain Python."""

from collections import defaultdict
from datetime import date, datetime
from decimal import Decimal
from uuid import UUID

from dyno_reports_tests.reference.calendar import RefCalendar, add_months, fiscal_year_start
from dyno_reports_tests.reference.common import as_known_at, population, round_half_away, selected_stages
from dyno_reports_tests.support.history import TenantData


def close_month(close_date: date | None) -> date | None:
    """First day of the month of the expected close date; None when there is none."""
    return None if close_date is None else close_date.replace(day=1)


def close_quarter(close_date: date | None, calendar: RefCalendar) -> date | None:
    """First day of the tenant's fiscal quarter containing the expected close date (the fiscal year's
    first, second, third or fourth block of three months); None when there is none."""
    if close_date is None:
        return None
    year_start = fiscal_year_start(calendar, close_date)
    return max(first for first in (add_months(year_start, 3 * n) for n in range(4)) if first <= close_date)


def expected(
    data: TenantData,
    start: datetime | None,
    end: datetime,
    pipeline_ids: list[UUID] | None = None,
    *,
    known_at: datetime | None = None,
) -> dict[tuple, dict]:
    """(pipeline_id, principal_id, close_month) -> the fact row's columns; close_quarter in the tenant's
    calendar (`data.calendar`).

    A snapshot at E: `start` is accepted for symmetry with the other reports and ignored.
    """
    data = as_known_at(data, known_at)
    calendar = RefCalendar(*data.calendar)
    open_stages = {s.stage_id: s for s in selected_stages(data, pipeline_ids, {"open"})}
    groups: dict[tuple, list[tuple[Decimal, Decimal]]] = defaultdict(list)
    quarters: dict[tuple, date | None] = {}
    for row in population(data, end).values():
        stage = open_stages.get(row.stage_id)
        if stage is not None:
            key = (stage.pipeline_id, row.owner_id, close_month(row.close_date))
            groups[key].append((row.amount, stage.probability))
            quarters[key] = close_quarter(row.close_date, calendar)
    return {
        key: {
            "pipeline_id": key[0],
            "principal_id": key[1],
            "close_month": key[2],
            "close_quarter": quarters[key],
            "deal_count": len(deals),
            "total_amount": sum((amount for amount, _ in deals), Decimal("0.00")),
            "weighted_amount": round_half_away(sum(amount * p for amount, p in deals), 2),
        }
        for key, deals in groups.items()
    }
