"""The weighted_pipeline report, one folder: its definition and SQL (weighted_pipeline_executor.py) and its SQL
snapshot (weighted_pipeline.sql, `make sql-snapshots`)."""
