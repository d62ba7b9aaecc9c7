"""The stage_conversion report, one folder: its definition and SQL (stage_conversion_executor.py) and its SQL
snapshot (stage_conversion.sql, `make sql-snapshots`)."""
