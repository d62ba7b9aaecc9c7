"""Reuse of a committed run: a request whose question another run has just answered is not computed again.

A caller that may repeat or overlap work (the Dagster IO manager) passes `Reuse` to `executor.execute`: the
Dagster run ids of its run family (the run, its parent and root, every run with that root) and `since`, when
the request was issued (the Dagster run's creation). The run's transaction then

1. takes the question's advisory lock in its settings statement (`pg_advisory_xact_lock`, QUESTION_LOCK_CLASS
   and a key of the input fingerprint, held until the transaction ends): two overlapping requests of one
   question run one after the other;
2. looks, in a statement of its own (a new snapshot, taken once the lock is held, so a run that committed
   while it waited is seen), for a SUCCEEDED run of the same tenant and input fingerprint that the family made,
   or that was generated since the request was issued (`REUSABLE_RUN`);
3. found: rolls back and returns that run (`RunResult.reused`); else computes as usual.

One round trip more than a run without reuse (the lookup). A so-far run answers only a so-far request: a final
request needs a final run. The CLI computes afresh: a person who asks again wants the answer of now.
"""

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Boolean, Text, any_, bindparam, or_, select
from sqlalchemy.dialects.postgresql import ARRAY, TIMESTAMP

from dyno_reports.engine.run_request import RunRequest
from dyno_reports.storage.tables import report_run

# The class of the two-int advisory key space that question locks use (the migrations' and the prune
# function's locks use the one-bigint space); the other int is a key of the input fingerprint.
QUESTION_LOCK_CLASS = 727_110_021

# The newest SUCCEEDED run answering the request for `family` or `since` (NULL: the family only).
REUSABLE_RUN = (
    select(report_run.c.run_id)
    .where(
        report_run.c.tenant_id == bindparam("tenant_id"),
        report_run.c.input_fingerprint == bindparam("fingerprint"),
        report_run.c.status == "SUCCEEDED",
        or_(
            report_run.c.dagster_run_id == any_(bindparam("family", type_=ARRAY(Text))),
            report_run.c.generated_at >= bindparam("since", type_=TIMESTAMP(timezone=True)),
        ),
        or_(bindparam("so_far", type_=Boolean), ~report_run.c.input_params.has_key("so_far")),
    )
    .order_by(report_run.c.generated_at.desc(), report_run.c.run_id.desc())
    .limit(1)
)


@dataclass(frozen=True)
class Reuse:
    """Which committed runs may stand for a new one: `family`'s (Dagster run ids), or any generated at or
    after `since` (a timezone-aware instant; None: the family's only)."""

    family: frozenset[str] = frozenset()
    since: datetime | None = None

    def lookup_params(self, request: RunRequest) -> dict[str, Any]:
        """The bound values of REUSABLE_RUN for `request`."""
        return {
            "tenant_id": request.tenant_id,
            "fingerprint": request.fingerprint(),
            "family": sorted(self.family),
            "since": self.since,
            "so_far": request.so_far,
        }


def question_key(fingerprint: str) -> int:
    """A signed 32-bit key of an input fingerprint (sha256, hex): two questions that share one only wait for
    each other, they never stand for each other (the lookup compares whole fingerprints)."""
    return int.from_bytes(bytes.fromhex(fingerprint[:8]), "big", signed=True)


def question_lock_values(request: RunRequest) -> dict[str, int]:
    """The bound values of the settings statement's question lock (`run_settings(..., lock_question=True)`)."""
    return {"question_class": QUESTION_LOCK_CLASS, "question_key": question_key(request.fingerprint())}
