"""GraphQL, as the UI sends it: backfills, tick evaluation, launching runs."""

import time
from datetime import datetime
from typing import Any

from benchmarks.dagster_ops.world import World

LOCATION = {"repositoryLocationName": "dyno_reports", "repositoryName": "__repository__"}

LAUNCH_BACKFILL = """
mutation LaunchPartitionBackfill($backfillParams: LaunchBackfillParams!) {
  launchPartitionBackfill(backfillParams: $backfillParams) {
    __typename
    ... on LaunchBackfillSuccess { backfillId }
    ... on Error { message }
  }
}"""

SCHEDULE_DRY_RUN = """
mutation ScheduleDryRunMutation($selectorData: ScheduleSelector!, $timestamp: Float) {
  scheduleDryRun(selectorData: $selectorData, timestamp: $timestamp) {
    __typename
    ... on DryRunInstigationTick {
      evaluationResult {
        skipReason
        error { message }
        runRequests { runKey jobName runConfigYaml tags { key value } assetSelection { path } }
      }
    }
    ... on Error { message }
  }
}"""

LAUNCH_MULTIPLE_RUNS = """
mutation LaunchMultipleRuns($executionParamsList: [ExecutionParams!]!) {
  launchMultipleRuns(executionParamsList: $executionParamsList) {
    __typename
    ... on LaunchMultipleRunsResult {
      launchMultipleRunsResult { __typename ... on LaunchRunSuccess { run { runId } } ... on Error { message } }
    }
    ... on Error { message }
  }
}"""


def launch_backfill(world: World, report_type: str, partition_keys: list[str]) -> str:
    params = {
        "assetSelection": [{"path": [report_type]}],
        "partitionNames": partition_keys,
        "fromFailure": False,
        "tags": [],
    }
    result = world.graphql(LAUNCH_BACKFILL, {"backfillParams": params})["launchPartitionBackfill"]
    if result["__typename"] != "LaunchBackfillSuccess":
        raise RuntimeError(f"launchPartitionBackfill: {result}")
    return result["backfillId"]


def evaluate_tick(world: World, schedule: str, tick: datetime) -> tuple[list[dict], float]:
    """The code server evaluates the tick (what the scheduler daemon asks it); returns run requests, seconds."""
    started = time.perf_counter()
    result = world.graphql(
        SCHEDULE_DRY_RUN, {"selectorData": {**LOCATION, "scheduleName": schedule}, "timestamp": tick.timestamp()}
    )["scheduleDryRun"]
    seconds = time.perf_counter() - started
    evaluation = result.get("evaluationResult") or {}
    if result["__typename"] != "DryRunInstigationTick" or evaluation.get("error"):
        raise RuntimeError(f"scheduleDryRun: {result}")
    return evaluation["runRequests"] or [], seconds


def execution_params(request: dict, schedule: str, job_name: str) -> dict[str, Any]:
    """The UI's "Launch all runs" params, plus the tags the scheduler daemon adds to a tick's runs.

    `assetCheckSelection` is left out (the UI sends `[]`): with no asset selection
    either, the whole job runs, checks included, as for the daemon's own runs.
    """
    tags = [{"key": t["key"], "value": t["value"]} for t in request["tags"]]
    tags += [
        {"key": "dagster/schedule_name", "value": schedule},
        {"key": "dagster/run_key", "value": request["runKey"]},
    ]
    selector = {
        **LOCATION,
        "jobName": request["jobName"] or job_name,
        "assetSelection": [{"path": key["path"]} for key in request["assetSelection"] or []],
    }
    return {
        "runConfigData": request["runConfigYaml"],
        "selector": selector,
        "mode": "default",
        "executionMetadata": {"tags": tags},
    }


def launch_runs(world: World, params: list[dict[str, Any]]) -> list[str]:
    result = world.graphql(LAUNCH_MULTIPLE_RUNS, {"executionParamsList": params})["launchMultipleRuns"]
    launched = result.get("launchMultipleRunsResult") or []
    if result["__typename"] != "LaunchMultipleRunsResult" or any(
        r["__typename"] != "LaunchRunSuccess" for r in launched
    ):
        raise RuntimeError(f"launchMultipleRuns: {result}")
    return [r["run"]["runId"] for r in launched]
