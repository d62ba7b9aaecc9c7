"""The deal_velocity report, one folder: its definition and SQL (deal_velocity_executor.py) and its SQL
snapshot (deal_velocity.sql, `make sql-snapshots`)."""
