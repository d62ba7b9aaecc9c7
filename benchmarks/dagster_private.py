"""What two private Dagster instance calls save over their public forms (dagster_defs/dagster_private.py).

`python -m benchmarks.dagster_private [RUNS]`: a temporary SQLite Dagster instance
holding RUNS (500) ended runs, each with a report-sized run config, then the
median of 20 calls of

- the sweep's listing: `get_run_ids` (private) against `get_run_records` (public) of the same filter;
- a run's family: `get_run_group` (private) against `get_run_record_by_id` + `get_run_records` by the
  root tag (public), for a run with two re-executions.
"""

import statistics
import sys
import time
import uuid
from collections.abc import Callable
from typing import Any

from dagster import DagsterInstance, DagsterRun, DagsterRunStatus, RunsFilter

ROOT_TAG, PARENT_TAG = "dagster/root_run_id", "dagster/parent_run_id"
CONFIG = {"ops": {f"report_{i}": {"config": {"options": {"stage": f"s{i}", "limit": i}}} for i in range(4)}}


def add_runs(instance: DagsterInstance, count: int) -> str:
    """`count` SUCCESS runs; the last three are a root and two re-executions of it. Returns the last one's id."""
    root = ""
    for i in range(count):
        run_id = str(uuid.uuid4())
        tags = {"dagster/partition": f"2025-06-02|tenant-{i}"}
        if i >= count - 2:
            tags |= {ROOT_TAG: root, PARENT_TAG: root}
        elif i == count - 3:
            root = run_id
        run = DagsterRun(job_name="weekly_reports", run_id=run_id, run_config=CONFIG, tags=tags)
        instance.add_run(run.with_status(DagsterRunStatus.SUCCESS))
    return run_id


def median_ms(call: Callable[[], Any], repeat: int = 20) -> float:
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        call()
        times.append((time.perf_counter() - started) * 1000)
    return statistics.median(times)


def public_family(instance: DagsterInstance, run_id: str) -> set[str]:
    record = instance.get_run_record_by_id(run_id)
    root = (record.dagster_run.root_run_id if record else None) or run_id
    return {root, *(r.dagster_run.run_id for r in instance.get_run_records(RunsFilter(tags={ROOT_TAG: root})))}


def main(count: int) -> None:
    with DagsterInstance.local_temp() as instance:
        last = add_runs(instance, count)
        ended = RunsFilter(statuses=[DagsterRunStatus.SUCCESS])
        ids = median_ms(lambda: instance.get_run_ids(ended))
        records = median_ms(lambda: [r.dagster_run.run_id for r in instance.get_run_records(ended)])
        group = median_ms(lambda: instance.get_run_group(last))
        public = median_ms(lambda: public_family(instance, last))
    print(f"{count} ended runs (SQLite): get_run_ids {ids:.1f} ms, get_run_records {records:.1f} ms")
    print(f"family of 3: get_run_group {group:.2f} ms, public record + records by root tag {public:.2f} ms")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 500)
