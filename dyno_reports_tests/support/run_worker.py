"""A Dagster run worker as a separate process, for the kill tests: one batch run of a report, in-process.

    python -m dyno_reports_tests.support.run_worker REPORT RANGE_START RANGE_END [--die-after-commits]

Uses the instance of DAGSTER_HOME and DYNO_DATABASE_URL and executes the job of
the report's cadence with the executor the definitions give it, as the run worker
that `dagster dev` launches does. `--die-after-commits` SIGKILLs the process right after
the IO manager committed every partition, before Dagster records any
materialisation: the one kill point a test cannot reach by timing.
"""

import os
import signal
import sys

from dagster import AssetKey, DagsterInstance, JobDefinition, build_reconstructable_job, execute_job

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
    with DagsterInstance.get() as instance:
        execute_job(
            job,
            instance,
            tags={RANGE_START_TAG: start, RANGE_END_TAG: end},
            asset_selection=[AssetKey(report)],
            raise_on_error=False,
        )


if __name__ == "__main__":
    main()
