"""All three performance benchmarks in one go: `python -m benchmarks.performance [--quick]`."""

import argparse
from datetime import UTC, datetime

from benchmarks.performance import cli_cost, fleet, scan_floor


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="small sizes: a look in a minute or two, not figures")
    args = parser.parse_args()
    print(f"## Performance benchmarks, {datetime.now(UTC):%Y-%m-%d %H:%M} UTC\n")
    if args.quick:
        scan_floor.run([1000], repeats=1)
        cli_cost.run(3, "pipeline_overview")
        fleet.run(20, 100)
    else:
        scan_floor.run([100_000, 1_000_000], repeats=3)
        cli_cost.run(11, "pipeline_overview")
        fleet.run(1000, 100)


if __name__ == "__main__":
    main()
