"""The run engine: a run's inputs (request, window, K), the executor (one transaction a run), its
records, reuse, retention, and the stale check and refresh."""
