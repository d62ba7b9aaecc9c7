"""The win_loss report, one folder: its definition and SQL (win_loss_executor.py) and its SQL
snapshot (win_loss.sql, `make sql-snapshots`)."""
