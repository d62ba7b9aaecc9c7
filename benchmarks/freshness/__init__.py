"""Benchmarks of issue 23 (as known at): the stale check's cost."""
