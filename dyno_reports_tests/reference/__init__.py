"""The registry of references: for every report_type, its plain-Python reference and what its property tests draw.

`test_report_registry` compares each registered report's SQL with the entry here
on generated histories, windows, pipeline selections and option values. A
registered report without an entry fails there (it cannot skip the property
test), and so does an entry that does not draw every option of its report.
"""

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

from hypothesis import strategies as st

from dyno_reports_tests.reference import (
    deal_velocity,
    pipeline_movement,
    pipeline_overview,
    stage_conversion,
    weighted_pipeline,
    win_loss,
)
from dyno_reports_tests.support import report_histories
from dyno_reports_tests.support.history import TenantData, busy_histories, tenant_histories, windows


@dataclass(frozen=True)
class Reference:
    """A report as docs/definitions.md defines it, and the inputs its property tests draw."""

    expected: Callable[..., dict[tuple, dict]]
    """expected(data, start, end, pipeline_ids, **options) -> fact rows keyed by their dimension values."""
    cadences: tuple[Literal["week", "month", "quarter"], ...]
    """The report's cadences in docs/definitions.md, the main one first."""
    options: Mapping[str, st.SearchStrategy[Any]] = field(default_factory=dict)
    """A strategy for every option of the report but pipeline_ids (drawn for every report)."""
    histories: st.SearchStrategy[TenantData] = field(default_factory=tenant_histories)
    busy_histories: st.SearchStrategy[TenantData] = field(default_factory=busy_histories)
    windows: Callable[[TenantData], st.SearchStrategy[tuple[datetime | None, datetime]]] = windows
    """The window (start or None, end) for a drawn history."""


REFERENCES: dict[str, Reference] = {
    "pipeline_overview": Reference(
        pipeline_overview.expected, cadences=("week",), options={"include_closed": st.booleans()}
    ),
    "stage_conversion": Reference(stage_conversion.expected, cadences=("week",)),
    "weighted_pipeline": Reference(
        weighted_pipeline.expected,
        cadences=("month", "quarter"),
        histories=report_histories.weighted_histories(),
        busy_histories=report_histories.busy_weighted_histories(),
    ),
    "win_loss": Reference(
        win_loss.expected,
        cadences=("month", "quarter"),
        histories=report_histories.win_loss_histories(),
        windows=report_histories.windows_from_closings,
    ),
    "deal_velocity": Reference(deal_velocity.expected, cadences=("month", "quarter")),
    "pipeline_movement": Reference(
        pipeline_movement.expected,
        cadences=("month", "quarter"),
        histories=report_histories.movement_histories(),
        windows=report_histories.windows_with_start,
    ),
}
