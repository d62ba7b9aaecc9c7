"""The read side: results and the latest runs, trends, listings, run diffs, names beside ids, text tables."""
