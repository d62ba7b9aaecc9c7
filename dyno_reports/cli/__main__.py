"""`python -m dyno_reports.cli.main`: the `dyno-reports` command."""

from dyno_reports.cli.main import main

main()
