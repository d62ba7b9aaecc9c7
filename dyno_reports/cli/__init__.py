"""The `dyno-reports` command: one module per command group; rendering in the read side and here."""
