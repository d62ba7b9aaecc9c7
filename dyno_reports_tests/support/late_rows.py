"""Histories with late rows, and the K a run is asked at (hypothesis strategies, no I/O).

A late row is recorded after its valid_from (an import, a correction): by an hour up to 40 days, on the hour
grid of `history.instants` or off it. K is drawn around the rows: on the grid, exactly a row's recorded_at (a row
recorded at K is known at K) or valid_from, or None (the default: the run's start minus the CRM's longest write,
long after every drawn row).
"""

from dataclasses import replace
from datetime import datetime, timedelta

from hypothesis import strategies as st

from dyno_reports_tests.support.history import TenantData, instants

H = timedelta(hours=1)
delays = st.integers(1, 40 * 24).map(lambda hours: hours * H) | st.integers(1, 40 * 86400 * 10**6).map(
    lambda us: timedelta(microseconds=us)
)


@st.composite
def with_late_rows(draw: st.DrawFn, data: TenantData) -> TenantData:
    """`data` with about a third of its rows recorded late (the rest at their valid_from)."""
    rows = [
        replace(row, recorded_at=row.valid_from + draw(delays)) if draw(st.integers(0, 2)) == 0 else row
        for row in data.rows
    ]
    return replace(data, rows=rows)


def known_ats(data: TenantData) -> st.SearchStrategy[datetime | None]:
    """K for a run over `data`: None (the default K) or an instant near its rows, often exactly one of theirs."""
    moments = sorted({r.recorded_at for r in data.rows} | {r.valid_from for r in data.rows})
    given = (instants | st.sampled_from(moments)) if moments else instants
    return st.none() | given | given
