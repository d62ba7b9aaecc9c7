"""The pipeline_movement report, one folder: its definition and SQL (pipeline_movement_executor.py), its own fact
checks (checks.py) and its SQL snapshot (pipeline_movement.sql, `make sql-snapshots`)."""
