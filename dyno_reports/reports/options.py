"""The pydantic options models: validation of options that were given, built from each report's declared specs.

Imported only when options need validating (non-empty options, `dyno-reports list`, Dagster's run config):
a run without options takes `ReportDefinition.options_from`'s defaults and never loads pydantic.
"""

from typing import TYPE_CHECKING, Any
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field, ValidationError, create_model, field_validator
from pydantic_core import ErrorDetails

from dyno_reports.core.errors import InputError, listed, shown
from dyno_reports.reports.option_specs import PIPELINE_IDS, SHOWN_ERRORS, canonical_uuid

if TYPE_CHECKING:
    from dyno_reports.reports.base import ReportDefinition


class ReportOptions(BaseModel):
    """Options every report accepts; a report's model subclasses it with its own (`model_for`).

    Unknown keys and wrong types are refused (`extra="forbid"`, strict fields).
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    pipeline_ids: tuple[UUID, ...] | None = Field(default=PIPELINE_IDS.default, description=PIPELINE_IDS.description)

    @field_validator("pipeline_ids", mode="before")
    @classmethod
    def _pipeline_ids_are_a_list(cls, value: Any) -> Any:
        if value is not None and not isinstance(value, (list, tuple)):
            raise ValueError("must be a list of pipeline UUIDs")
        if value is not None and len(value) == 0:
            raise ValueError("must name at least one pipeline (leave it out for every pipeline)")
        if value is not None:
            for item in value:
                if not isinstance(item, UUID) and not (isinstance(item, str) and canonical_uuid(item)):
                    raise ValueError(f"{shown(item)} is not a UUID like 123e4567-e89b-12d3-a456-426614174000")
        return value

    @field_validator("pipeline_ids")
    @classmethod
    def _sorted_unique(cls, value: tuple[UUID, ...] | None) -> tuple[UUID, ...] | None:
        return None if value is None else tuple(sorted(set(value)))

    def canonical(self) -> dict[str, Any]:
        """Every option with its default filled in, as JSON: what the run records and fingerprints."""
        return self.model_dump(mode="json")

    def sql_params(self) -> dict[str, Any]:
        """Bound parameters for the report's SQL (`pipeline_ids` NULL = every pipeline)."""
        params = self.model_dump()
        params["pipeline_ids"] = None if self.pipeline_ids is None else list(self.pipeline_ids)
        return params


def model_for(report: "ReportDefinition") -> type[ReportOptions]:
    """`report`'s options model: ReportOptions plus one strict field per option the report declares (use
    `report.options_model`, which keeps it)."""
    if not report.options:
        return ReportOptions
    fields: dict[str, Any] = {
        spec.name: (spec.type, Field(default=spec.default, description=spec.description, strict=True))
        for spec in report.options
    }
    class_name = "".join(part.title() for part in report.report_type.split("_")) + "Options"
    return create_model(class_name, __base__=ReportOptions, __module__=__name__, **fields)


def parse_options(model: type[ReportOptions], raw: dict[str, Any] | None) -> ReportOptions:
    """Validate raw options into `model`; any problem becomes one readable InputError."""
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise InputError(f"options must be a JSON object, got {type(raw).__name__}")
    try:
        return model.model_validate(raw)
    except ValidationError as exc:
        problems = [_describe(err) for err in exc.errors()]
        raise InputError("invalid options: " + listed(problems, SHOWN_ERRORS, "; ")) from None


def _describe(error: ErrorDetails) -> str:
    field = ".".join(str(part) for part in error["loc"]) or "options"
    if error["type"] == "extra_forbidden":
        return f"unknown option {shown(field)}"
    message = error["msg"].removeprefix("Value error, ")
    return f"option {shown(field)}: {message} (got {shown(error.get('input'))})"
