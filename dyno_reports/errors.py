"""Errors that carry a message meant for the person who gave the input."""


class DynoError(Exception):
    """Base class of every error this package raises on purpose."""


class InputError(DynoError):
    """Bad input (tenant, report, period, options): refused before anything is written."""


class ConfigError(DynoError):
    """The environment or the database is not set up as needed."""
