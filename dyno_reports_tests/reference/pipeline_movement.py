"""pipeline_movement as docs/definitions.md defines it, in plain Python."""

from datetime import datetime
from decimal import Decimal
from uuid import UUID

from dyno_reports_tests.reference.common import as_known_at, state_at
from dyno_reports_tests.support.history import Row, TenantData

MOVEMENTS = (
    "start",
    "created",
    "reopened",
    "moved_in",
    "increased",
    "decreased",
    "moved_out",
    "won",
    "lost",
    "deleted",
    "end",
)
# Movements that add to the open pipeline, and those that take from it (the balance of docs/definitions.md).
ADDED = ("created", "reopened", "moved_in", "increased")
TAKEN = ("decreased", "moved_out", "won", "lost", "deleted")


def live_state(data: TenantData, deal_id: UUID, t: datetime) -> Row | None:
    """The state at t when the deal is live at t, else None."""
    row = state_at(data, deal_id, t)
    return row if row is not None and not row.is_deleted else None


def open_pipeline(data: TenantData, row: Row | None) -> UUID | None:
    """The pipeline the deal is open in (None: not live, or won/lost)."""
    if row is None:
        return None
    stage = data.stages[row.stage_id]
    return stage.pipeline_id if stage.kind == "open" else None


def movement_of(data: TenantData, pipeline_id: UUID, at_start: Row | None, at_end: Row | None) -> list[tuple]:
    """The (movement, amount) pairs one deal counts for `pipeline_id`, by the table of docs/definitions.md."""
    start_pipeline, end_pipeline = open_pipeline(data, at_start), open_pipeline(data, at_end)
    found: list[tuple] = []
    if start_pipeline == pipeline_id:
        assert at_start is not None
        found.append(("start", at_start.amount))
        if end_pipeline == pipeline_id:
            assert at_end is not None
            if at_end.amount > at_start.amount:
                found.append(("increased", at_end.amount - at_start.amount))
            elif at_end.amount < at_start.amount:
                found.append(("decreased", at_start.amount - at_end.amount))
        elif end_pipeline is not None:
            found.append(("moved_out", at_start.amount))
        elif at_end is None:
            found.append(("deleted", at_start.amount))
        else:
            found.append((data.stages[at_end.stage_id].kind, at_start.amount))  # won / lost
    if end_pipeline == pipeline_id:
        assert at_end is not None
        found.append(("end", at_end.amount))
        if start_pipeline == pipeline_id:
            pass  # counted above
        elif start_pipeline is not None:
            found.append(("moved_in", at_end.amount))
        elif at_start is None:
            found.append(("created", at_end.amount))
        else:
            found.append(("reopened", at_end.amount))  # won or lost at S
    return found


def expected(
    data: TenantData,
    start: datetime | None,
    end: datetime,
    pipeline_ids: list[UUID] | None = None,
    *,
    known_at: datetime | None = None,
) -> dict[tuple, dict]:
    """(pipeline_id,) -> the fact row's columns, for every selected pipeline (zeros included)."""
    data = as_known_at(data, known_at)
    assert start is not None, "pipeline_movement needs a window with a start"
    selected = [p for p in data.pipelines if pipeline_ids is None or p in pipeline_ids]
    rows = {p: _zero_row(p) for p in selected}
    for deal_id in data.created_at:
        at_start, at_end = live_state(data, deal_id, start), live_state(data, deal_id, end)
        for pipeline_id in selected:
            for movement, amount in movement_of(data, pipeline_id, at_start, at_end):
                rows[pipeline_id][f"{movement}_count"] += 1
                rows[pipeline_id][f"{movement}_amount"] += amount
    return {(p,): row for p, row in rows.items()}


def _zero_row(pipeline_id: UUID) -> dict:
    row: dict = {"pipeline_id": pipeline_id}
    for movement in MOVEMENTS:
        row[f"{movement}_count"] = 0
        row[f"{movement}_amount"] = Decimal("0.00")
    return row


def balances(row: dict) -> bool:
    """start + added - taken = end, for amounts, and for counts without increased/decreased."""
    amount = row["start_amount"] + sum(row[f"{m}_amount"] for m in ADDED) - sum(row[f"{m}_amount"] for m in TAKEN)
    counted = [m for m in ADDED + TAKEN if m not in ("increased", "decreased")]
    count = row["start_count"] + sum(row[f"{m}_count"] * (1 if m in ADDED else -1) for m in counted)
    return amount == row["end_amount"] and count == row["end_count"]
