"""Dyno Reports: tenant-scoped Deal & Pipeline reports computed in PostgreSQL."""

__version__ = "0.1.0"
