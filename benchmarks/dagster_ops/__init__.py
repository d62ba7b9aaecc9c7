"""Dagster in operation: a backfill, schedule ticks and a killed run, against a real daemon and webserver.

    python -m benchmarks.dagster_ops [--quick] [--no-kill]

Sets up a throwaway world on one PostgreSQL server (the server of
DYNO_DATABASE_URL, else postgres@127.0.0.1:5432): a reporting database
`dyno_bench_<hex>` (migrated, seeded) and a Dagster storage database
`dagster_bench_<hex>`, a temporary DAGSTER_HOME holding the project's
dagster.yaml, the tenants registered as partitions, then `dagster dev -w
workspace.yaml` (webserver, daemon, code servers) as a subprocess with
DYNO_DAGSTER_START_DATE=2024-07-01. The scenarios, in the order they run:

- tick: a weekly tick for 200 small tenants end to end. The code server
  evaluates `weekly_reports_schedule` for Monday 2025-06-30 00:00 UTC, when
  their weeks close (the seeded tenants are set to the default calendar, UTC,
  as the SQL baseline reads UTC weeks) (GraphQL
  `scheduleDryRun`, the UI's "Evaluate tick"), and its run requests are launched
  with `launchMultipleRuns` (the UI's "Launch all runs") carrying the tags the
  scheduler daemon adds (`dagster/schedule_name`, `dagster/run_key`); the run
  queue daemon then dequeues and launches them as it would a real tick's runs.
- backfill: one large tenant, 26 weeks of pipeline_overview, launched over
  GraphQL as the UI does (`launchPartitionBackfill`), through the backfill daemon.
- kill (unless --no-kill): another 26-week backfill of that tenant; its run
  worker is SIGKILLed mid-way (its pid comes from the run's "Started process for
  run" engine event; the worker is a multiprocessing child of the code server,
  with no run id on its command line). Reported: surviving processes, seconds
  until the run is failed and until Dagster and report_run agree again (the
  report_run_reconciliation_sweep sensor's work; report_run_failure_reaper's
  before issue 21).
- 2,000 tenants: fake tenants are added up to 2,000, in crm.tenant (30 zones,
  Sunday and Monday week starts, three fiscal years) and as partitions, in the
  order `sync_tenants` registers them (last, as they would swell the other
  scenarios); every hourly tick of the weekly schedule from Saturday 2025-06-28
  06:00 to Monday 16:00 UTC (every tenant's week of 2025-06-23 closes in that
  span) is evaluated in-process (`build_schedule_context` on the bench
  instance), and the busiest one through the code server (GraphQL
  `scheduleDryRun`, the daemon's path: gRPC to the code server).

"SQL seconds" are measured by running the very same report requests directly
through the shared executor (`build_request` + `execute`, what the asset body
and the IO manager do per partition), one after the other in this process, right
after Dagster's runs. Both databases are dropped and every process started here
is ended, in a finally. Numbers are wall-clock on a shared machine: noisy.
"""
