"""The freshness benchmarks: `python -m benchmarks.freshness [--rows N ...]` (the stale check)."""

from benchmarks.freshness.stale_check import main

if __name__ == "__main__":
    main()
