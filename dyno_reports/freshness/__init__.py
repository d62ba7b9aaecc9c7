"""Freshness: the stale check (runs whose answer could now differ, found in O(new rows)) and their refresh."""
