"""The pipeline_overview report, one folder: its definition and SQL (pipeline_overview_executor.py), its own fact
checks (checks.py) and its SQL snapshot (pipeline_overview.sql, `make sql-snapshots`)."""
