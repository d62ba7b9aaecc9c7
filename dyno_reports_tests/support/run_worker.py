"""A Dagster run worker as a separate process, for the kill and stop tests: one batch run of a report, in-process.

    python -m dyno_reports_tests.support.run_worker REPORT RANGE_START RANGE_END [--die-after-commits]
        [--reexecute-from-failure PARENT_RUN_ID]

Uses the instance of DAGSTER_HOME and DYNO_DATABASE_URL and executes the job of
the report's cadence with the executor the definitions give it, as the run worker
that `dagster dev` launches does (SIGINT captured as there: Dagster raises it inside
a step, as its terminate does). `--die-after-commits` SIGKILLs the process right after
the IO manager committed every partition, before Dagster records any
materialisation: the one kill point a test cannot reach by timing.
`--reexecute-from-failure` re-executes that run from failure ("Re-execute from
failure" in the UI; run retries do the same), same range tags. `launch` starts it.
"""

import contextlib
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

from dagster import (
    AssetKey,
    DagsterInstance,
    JobDefinition,
    ReexecutionOptions,
    build_reconstructable_job,
    execute_job,
)
from dagster._utils.interrupts import capture_interrupts

from dyno_reports.dagster_defs.io_manager import ReportRunIOManager
from dyno_reports.dagster_defs.schedules import RANGE_END_TAG, RANGE_START_TAG


def weekly_job() -> JobDefinition:
    from dyno_reports.definitions import defs

    return defs.resolve_job_def("weekly_reports")


def main() -> None:
    report, start, end, *flags = sys.argv[1:]
    if "--die-after-commits" in flags:
        handle_output = ReportRunIOManager.handle_output

        def handle_then_die(self, context, obj):
            handle_output(self, context, obj)
            os.kill(os.getpid(), signal.SIGKILL)

        ReportRunIOManager.handle_output = handle_then_die  # type: ignore[method-assign]
    job = build_reconstructable_job(__name__, "weekly_job")
    tags = {RANGE_START_TAG: start, RANGE_END_TAG: end}
    with capture_interrupts(), DagsterInstance.get() as instance:
        if "--reexecute-from-failure" in flags:
            parent = flags[flags.index("--reexecute-from-failure") + 1]
            options = ReexecutionOptions.from_failure(parent, instance)
            execute_job(job, instance, tags=tags, reexecution_options=options, raise_on_error=False)
        else:
            execute_job(job, instance, tags=tags, asset_selection=[AssetKey(report)], raise_on_error=False)


@contextlib.contextmanager
def launch(
    database_url: str, home: Path, report: str, first_key: str, last_key: str, *flags: str
) -> Iterator[subprocess.Popen]:
    """The worker on the range [first_key, last_key], in a session of its own (stderr piped); a worker still
    running when the block ends (a failed test) is killed with its process group rather than waited for."""
    env = {
        **os.environ,
        "DYNO_DATABASE_URL": database_url,
        "DAGSTER_HOME": str(home),
        "DYNO_DAGSTER_START_DATE": "2025-01-01",
    }
    args = [sys.executable, "-m", __name__, report, first_key, last_key, *flags]
    project = Path(__file__).resolve().parents[2]
    worker = subprocess.Popen(
        args, env=env, cwd=project, start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    try:
        yield worker
    finally:
        if worker.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(worker.pid, signal.SIGKILL)
        worker.wait()
        if worker.stderr is not None:
            worker.stderr.close()


if __name__ == "__main__":
    main()
