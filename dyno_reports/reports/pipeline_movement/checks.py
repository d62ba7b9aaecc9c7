"""pipeline_movement's own fact check: every row balances, start + added - taken = end."""

from sqlalchemy import and_, func, or_, select
from sqlalchemy.sql import ColumnElement, Select

from dyno_reports.reports.fact_checks import FactCheck, runs_of
from dyno_reports.storage.tables import pipeline_movement_fact

# The balance every row keeps (docs/definitions.md): start + ADDED - TAKEN = end, for amounts; for counts the
# same without increased and decreased (a deal whose amount changed is neither added nor taken).
ADDED = ("created", "reopened", "moved_in", "increased")
TAKEN = ("decreased", "moved_out", "won", "lost", "deleted")
AMOUNT_ONLY = ("increased", "decreased")


def unbalanced_movement_facts(dagster_run_id: str) -> Select:
    """pipeline_movement fact rows of this Dagster run where start + added - taken != end (amounts or counts)."""
    fact = pipeline_movement_fact
    runs = runs_of(dagster_run_id, "pipeline_movement").subquery()

    def balance(measure: str, movements: tuple[str, ...]) -> ColumnElement:
        total: ColumnElement = fact.c[f"start_{measure}"]
        for movement in movements:
            column = fact.c[f"{movement}_{measure}"]
            total = total + column if movement in ADDED else total - column
        return total

    amounts_off = balance("amount", ADDED + TAKEN) != fact.c.end_amount
    counts = tuple(m for m in ADDED + TAKEN if m not in AMOUNT_ONLY)
    counts_off = balance("count", counts) != fact.c.end_count
    return (
        select(func.count())
        .select_from(fact.join(runs, and_(runs.c.run_id == fact.c.run_id, runs.c.tenant_id == fact.c.tenant_id)))
        .where(or_(amounts_off, counts_off))
    )


MOVEMENT_ROWS_BALANCE = FactCheck(
    "movement_rows_balance",
    "every fact row this Dagster run wrote balances: start + created + reopened + "
    "moved_in + increased - decreased - moved_out - won - lost - deleted = end, for amounts, "
    "and without increased/decreased for counts",
    "fact rows that do not balance",
    unbalanced_movement_facts,
)
