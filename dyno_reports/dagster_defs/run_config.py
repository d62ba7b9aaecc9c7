"""Each report's options model as its Dagster run config: typed fields the Launchpad validates and completes.

`ops: {pipeline_overview: {config: {include_closed: true}}}` is the natural YAML;
the report's pydantic options model stays the one authority on what is valid
(`run_request.build_request` parses the config's values with it), so the run
config only carries the Launchpad-friendly shape of each option. Beside the options,
`as_known_at` (not an option: K is not part of the question) reads the CRM as known
at K, as `run --as-known-at` does.
"""

import types
import typing
from functools import cache
from typing import Any, Union
from uuid import UUID

from dagster import Config
from pydantic import Field, create_model

from dyno_reports.reports.base import ReportDefinition

# Dagster config knows scalars, lists and Optional; a UUID is entered as its text.
_SCALARS: dict[Any, Any] = {bool: bool, int: int, float: float, str: str, UUID: str}
# The run config's field for K, beside the report's options.
AS_KNOWN_AT = "as_known_at"
AS_KNOWN_AT_FIELD = (
    str | None,
    Field(
        default=None,
        description="Read the CRM as known at K (history rows recorded at or before K): an ISO timestamp, "
        "local to the tenant without an offset; default: the run's start minus the CRM's longest write. "
        "Given a run's recorded known_at, a run repeats its answer exactly.",
    ),
)


def _config_type(annotation: Any) -> Any:
    origin = typing.get_origin(annotation)
    args = [a for a in typing.get_args(annotation) if a is not Ellipsis]
    if origin in (Union, types.UnionType):
        inner = [a for a in args if a is not type(None)]
        if len(inner) == 1:
            return _config_type(inner[0]) | None
    if origin in (tuple, list) and len(args) == 1:
        return types.GenericAlias(list, (_config_type(args[0]),))
    if annotation in _SCALARS:
        return _SCALARS[annotation]
    raise TypeError(f"option type {annotation!r} has no Dagster config equivalent: add it to run_config._SCALARS")


@cache
def report_config_class(report: ReportDefinition) -> type[Config]:
    """A `Config` subclass with one field per option, same defaults and descriptions, and `as_known_at`."""
    fields: dict[str, Any] = {AS_KNOWN_AT: AS_KNOWN_AT_FIELD}
    if AS_KNOWN_AT in report.options_model.model_fields:
        raise TypeError(f"{report.report_type}: an option may not be named {AS_KNOWN_AT}")
    for name, field in report.options_model.model_fields.items():
        fields[name] = (_config_type(field.annotation), Field(default=field.default, description=field.description))
    class_name = "".join(part.title() for part in report.report_type.split("_")) + "Config"
    return create_model(class_name, __base__=Config, __doc__=f"Options of {report.report_type}.", **fields)


def options_of(config: Config | dict[str, Any] | None) -> dict[str, Any]:
    """The options a run config names, None values (= the default) left out, for the options model to parse."""
    values = config.model_dump() if isinstance(config, Config) else dict(config or {})
    return {name: value for name, value in values.items() if value is not None and name != AS_KNOWN_AT}


def known_at_of(config: Config | dict[str, Any] | None) -> str | None:
    """The run config's `as_known_at` (None: the default K)."""
    values = config.model_dump() if isinstance(config, Config) else dict(config or {})
    return values.get(AS_KNOWN_AT)
