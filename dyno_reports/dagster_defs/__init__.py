"""Dagster layer of Dyno Reports: every registered report as a tenant x period partitioned asset.

Thin on purpose: these modules only translate Dagster partitions, run config and
run state into calls of the shared executor (`dyno_reports.engine.executor`), which
owns validation, transactions and the `report_run` bookkeeping.
`dyno_reports.definitions` assembles them into one `Definitions`.
"""
