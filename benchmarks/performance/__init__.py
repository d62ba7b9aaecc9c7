"""Issue 10's benchmarks: reports against the scan floor, the CLI's fixed cost, the per-run overhead of a fleet.

    python -m benchmarks.performance [--quick]        # all three, in that order
    python -m benchmarks.performance.scan_floor      # each one alone, with its own options (--help)
    python -m benchmarks.performance.cli_cost
    python -m benchmarks.performance.fleet
    python -m benchmarks.performance.known_at_cost   # issue 23: what `recorded_at <= K` costs each report

They print Markdown tables (figures next to their goals) for `docs/performance.md`.
They call only the package's public entry points (`executor`, `db`, `seed`,
`reports.registry()`, the `dyno-reports` command), so they measure whatever code is checked out.
"""
