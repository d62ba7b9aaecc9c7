"""Generated inputs shaped for one report (hypothesis strategies, no I/O).

The shared strategies of `history.py` rarely reach some reports' hard cases;
these reshape them: 4-decimal probabilities and crowded groups for
weighted_pipeline, histories crowded with closings and windows starting at one
for win_loss. `reference.REFERENCES` says which report draws which.
"""

from dataclasses import replace
from datetime import datetime, timedelta
from decimal import Decimal

from hypothesis import strategies as st

from dyno_reports_tests.support.history import TenantData, busy_histories, tenant_histories, windows

H = timedelta(hours=1)


def _any_probabilities(draw: st.DrawFn, data: TenantData) -> TenantData:
    """Open-stage probabilities of 4 decimals (the shared generators give tenths)."""
    for stage in list(data.stages.values()):
        if stage.kind == "open":
            probability = draw(st.decimals(min_value=0, max_value=1, places=4))
            data.stages[stage.stage_id] = replace(stage, probability=probability)
    return data


@st.composite
def weighted_histories(draw: st.DrawFn) -> TenantData:
    """tenant_histories (half the time with at least 3 deals) with 4-decimal probabilities, and
    about half the deals crowded: one owner and every close date moved into July (same day), so
    that groups hold several deals and rounding once differs from rounding each deal."""
    data = draw(tenant_histories() | tenant_histories(max_deals=16).filter(lambda d: len(d.created_at) >= 3))
    _any_probabilities(draw, data)
    crowd = {deal_id for deal_id in sorted(data.created_at) if draw(st.booleans())}
    july = {r.close_date: r.close_date.replace(month=7) for r in data.rows if r.close_date is not None}
    data.rows = [
        replace(r, owner_id=data.principals[0], close_date=july.get(r.close_date)) if r.deal_id in crowd else r
        for r in data.rows
    ]
    return data


@st.composite
def busy_weighted_histories(draw: st.DrawFn) -> TenantData:
    """busy_histories (many deals, one owner, no close dates: big groups) with 4-decimal probabilities."""
    return _any_probabilities(draw, draw(busy_histories()))


@st.composite
def win_loss_histories(draw: st.DrawFn) -> TenantData:
    """tenant_histories, or half the time two pipelines reshaped towards closings: a third of the
    rows moved into a won or lost stage of any pipeline (repeated closes, flips), a closed row
    often followed by a move to the other pipeline's stage of the same kind, some deals with zero
    amounts throughout and some deals all of one owner (groups of several deals)."""
    if not draw(st.booleans()):
        return draw(tenant_histories(max_deals=16))
    data = draw(tenant_histories(max_deals=16).filter(lambda d: len(d.pipelines) == 2 and len(d.created_at) >= 3))
    closing = [s for s in data.stages.values() if s.kind != "open"]
    deals = st.lists(st.sampled_from(sorted(data.created_at)), unique=True)
    zero, crowd = set(draw(deals)), set(draw(deals))
    rows: list = []
    for row in data.rows:  # a deal's rows are consecutive and in time order
        before = rows[-1] if rows and rows[-1].deal_id == row.deal_id else None
        kind = None if before is None else data.stages[before.stage_id].kind
        stage_id = row.stage_id
        if kind in ("won", "lost") and draw(st.booleans()):  # to the other pipeline's stage of that kind
            stage_id = next(s.stage_id for s in closing if s.kind == kind and s.stage_id != before.stage_id)
        elif draw(st.integers(0, 2)) == 0:
            stage_id = draw(st.sampled_from(closing)).stage_id
        rows.append(
            replace(
                row,
                owner_id=data.principals[0] if row.deal_id in crowd else row.owner_id,
                stage_id=stage_id,
                amount=Decimal(0) if row.deal_id in zero else row.amount,
            )
        )
    data.rows = rows
    return data


def windows_from_closings(data: TenantData) -> st.SearchStrategy:
    """windows(data), or half the time a window starting exactly at a row in a won/lost stage,
    so that closing events at S (inside W) are common."""
    closing_times = sorted({r.valid_from for r in data.rows if data.stages[r.stage_id].kind != "open"})
    if not closing_times:
        return windows(data)
    row_times = sorted({r.valid_from for r in data.rows})

    @st.composite
    def draw_window(draw: st.DrawFn) -> tuple[datetime | None, datetime]:
        start = draw(st.sampled_from(closing_times))
        later = [t for t in row_times if t > start]
        hours = st.integers(1, 30 * 24).map(lambda h: start + h * H)
        return start, draw((st.sampled_from(later) | hours) if later else hours)

    return windows(data) | draw_window()


@st.composite
def movement_histories(draw: st.DrawFn) -> TenantData:
    """tenant_histories, or half the time two pipelines (moves between them) and up to 16 deals, some
    keeping their first amount throughout (open in one pipeline at S and at E with no change: counted
    in start and end only) and some with every row in an open stage (more deals open at both ends)."""
    if not draw(st.booleans()):
        return draw(tenant_histories())
    data = draw(tenant_histories(max_deals=16).filter(lambda d: len(d.pipelines) == 2 and len(d.created_at) >= 3))
    open_stages = [s.stage_id for s in data.stages.values() if s.kind == "open"]
    deals = st.lists(st.sampled_from(sorted(data.created_at)), unique=True)
    steady, always_open = set(draw(deals)), set(draw(deals))
    first_amount = {}
    rows: list = []
    for row in data.rows:  # a deal's rows are consecutive and in time order
        first_amount.setdefault(row.deal_id, row.amount)
        rows.append(
            replace(
                row,
                amount=first_amount[row.deal_id] if row.deal_id in steady else row.amount,
                stage_id=draw(st.sampled_from(open_stages)) if row.deal_id in always_open else row.stage_id,
            )
        )
    data.rows = rows
    return data


def windows_with_start(data: TenantData) -> st.SearchStrategy:
    """windows(data) that have a start (pipeline_movement refuses a window without one)."""
    return windows(data).filter(lambda window: window[0] is not None)
