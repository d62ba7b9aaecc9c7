"""What a report declares: identity, fact table, dimensions, metrics, options, cadence and SQL."""

import json
import re
from dataclasses import dataclass
from typing import Any, Literal
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator
from pydantic_core import ErrorDetails
from sqlalchemy import Table

from dyno_reports.errors import InputError, listed, shown

Cadence = Literal["week", "month"]

# The one accepted spelling of an id: 8-4-4-4-12 ASCII hex digits, either case, nothing around it
# (uuid.UUID alone also takes braces, `urn:uuid:`, no hyphens, and non-ASCII digits such as Arabic-Indic ones).
CANONICAL_UUID = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")
# How many validation problems an InputError names before "and N more".
SHOWN_ERRORS = 3


def canonical_uuid(raw: str) -> UUID | None:
    """`raw` as a UUID when it is spelled canonically (see CANONICAL_UUID), else None."""
    return UUID(raw) if CANONICAL_UUID.fullmatch(raw) else None


class ReportOptions(BaseModel):
    """Options every report accepts; a report subclasses it to add its own.

    Unknown keys and wrong types are refused (`extra="forbid"`, strict fields).
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    pipeline_ids: tuple[UUID, ...] | None = Field(
        default=None, description="list of the tenant's pipeline UUIDs; absent = every pipeline"
    )

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


@dataclass(frozen=True)
class ReportDefinition:
    """A registered report. `sql` is one SELECT returning `dimensions + metrics`, in that order.

    Bound parameters available to `sql`: `tenant_id`, `period_start` (NULL = no
    lower bound), `period_end`, and every option of `options_model` by name.
    `requires_start`: the report refuses a window without a start (a snapshot at S).
    `jit`: whether PostgreSQL's JIT may compile this report's statement; the executor
    turns it off for the run's transaction when False (the measured reason is in the
    report's design details).
    `planner_settings`: (name, value) pairs the executor sets for the run's transaction only
    (`set_config(..., true)`), e.g. to keep the one ordered pass over the primary key where the
    planner would otherwise sort; each one's measured reason is in the report's design details.
    """

    report_type: str
    title: str
    description: str
    fact_table: Table
    dimensions: tuple[str, ...]
    metrics: tuple[str, ...]
    headline_metrics: tuple[str, ...]
    options_model: type[ReportOptions]
    cadence: Cadence
    sql: str
    requires_start: bool = False
    jit: bool = True
    planner_settings: tuple[tuple[str, str], ...] = ()

    def __post_init__(self) -> None:
        expected = {"run_id", "tenant_id", *self.dimensions, *self.metrics}
        actual = set(self.fact_table.c.keys())
        if expected != actual:
            raise ValueError(f"{self.report_type}: fact table columns {sorted(actual)} != declared {sorted(expected)}")
        if not set(self.headline_metrics) <= set(self.metrics):
            raise ValueError(f"{self.report_type}: headline metrics must be metrics")

    def transaction_settings(self) -> dict[str, str]:
        """The settings this report's run sets for its transaction beyond the executor's own."""
        return ({} if self.jit else {"jit": "off"}) | dict(self.planner_settings)

    @property
    def fact_columns(self) -> tuple[str, ...]:
        return self.dimensions + self.metrics

    def option_fields(self) -> dict[str, str]:
        """Option name -> its description and default, for `dyno-reports list`."""
        return {
            name: f"{field.description} (default: {json.dumps(field.default)})"
            for name, field in self.options_model.model_fields.items()
        }
