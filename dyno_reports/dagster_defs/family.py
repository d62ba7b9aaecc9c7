"""A Dagster run's family and the report runs it committed: what a re-execution or a retry does not redo.

Re-executions ("re-execute from failure" in the UI, and run retries of a crashed worker) carry the tags
`dagster/parent_run_id` and `dagster/root_run_id`. The family of a run is the run, its root and every run with
that root (`dagster_private.run_group_ids`): its parent and earlier attempts too. A partition whose question (tenant,
report, input fingerprint) a SUCCEEDED `report_run` of the family answers is skipped, and its
materialisation names that run. Overlapping requests outside the family are the executor's (`reuse.py`):
`family_reuse` also gives it `since`, when this Dagster run was created.
"""

from typing import Any
from uuid import UUID

from dagster import DagsterRunNotFoundError
from sqlalchemy import Connection, Text, any_, bindparam, select
from sqlalchemy.dialects.postgresql import ARRAY

from dyno_reports.dagster_defs.dagster_private import run_group_ids
from dyno_reports.engine.reuse import Reuse
from dyno_reports.storage.tables import report_run

# SUCCEEDED report runs of a set of Dagster runs (every tenant of a batch: by dagster_run_id, indexed).
COMMITTED_BY = select(report_run.c.tenant_id, report_run.c.input_fingerprint, report_run.c.run_id).where(
    report_run.c.dagster_run_id == any_(bindparam("family", type_=ARRAY(Text))),
    report_run.c.report_type == bindparam("report_type"),
    report_run.c.status == "SUCCEEDED",
)


def family_reuse(instance: Any, run_id: str) -> Reuse:
    """The family of Dagster run `run_id` and its creation time; only the run itself without an instance."""
    if instance is None:
        return Reuse(frozenset({run_id}))
    record = instance.get_run_record_by_id(run_id)
    try:
        group = run_group_ids(instance, run_id)
    except DagsterRunNotFoundError:  # its root was deleted: the run and its own tags still name the family
        group = []
    family = {run_id, *group}
    if record is not None:
        family |= {record.dagster_run.parent_run_id, record.dagster_run.root_run_id} - {None}
    return Reuse(frozenset(family), record.create_timestamp if record is not None else None)


def committed_by_family(conn: Connection, report_type: str, reuse: Reuse) -> dict[tuple[UUID, str], UUID]:
    """(tenant_id, input fingerprint) -> run_id of a SUCCEEDED run of `report_type` the family committed.

    Nothing to read for a run without relatives: its step runs once (no step retries), so it has committed
    nothing before its partitions run."""
    if len(reuse.family) < 2:
        return {}
    rows = conn.execute(COMMITTED_BY, {"family": sorted(reuse.family), "report_type": report_type})
    committed = {(row.tenant_id, row.input_fingerprint): row.run_id for row in rows}
    if conn.in_transaction():
        conn.rollback()  # read only: leave the connection ready for the runs' own transactions
    return committed
