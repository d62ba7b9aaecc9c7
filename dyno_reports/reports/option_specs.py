"""Options as a report declares them (no pydantic): their specs, the one every report has, the canonical
spelling of an id, and the options of a run that gives none (every default)."""

import re
from dataclasses import dataclass
from typing import Any, Protocol
from uuid import UUID

# The one accepted spelling of an id: 8-4-4-4-12 ASCII hex digits, either case, nothing around it
# (uuid.UUID alone also takes braces, `urn:uuid:`, no hyphens, and non-ASCII digits such as Arabic-Indic ones).
CANONICAL_UUID = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")
# How many validation problems an InputError names before "and N more".
SHOWN_ERRORS = 3


def canonical_uuid(raw: str) -> UUID | None:
    """`raw` as a UUID when it is spelled canonically (see CANONICAL_UUID), else None."""
    return UUID(raw) if CANONICAL_UUID.fullmatch(raw) else None


@dataclass(frozen=True)
class OptionSpec:
    """One option of a report: its name, type (strict: a bool option takes only true or false), default
    (JSON: it is recorded as given) and description (`dyno-reports list`, the Dagster Launchpad)."""

    name: str
    type: Any
    default: Any
    description: str


# The option every report has; its validation lives in options.ReportOptions.
PIPELINE_IDS = OptionSpec(
    "pipeline_ids", tuple[UUID, ...] | None, None, "list of the tenant's pipeline UUIDs; absent = every pipeline"
)


class Options(Protocol):
    """Parsed options as a run uses them: options.ReportOptions (validated) or DefaultOptions (none given)."""

    @property
    def pipeline_ids(self) -> tuple[UUID, ...] | None: ...

    def canonical(self) -> dict[str, Any]: ...

    def sql_params(self) -> dict[str, Any]: ...


@dataclass(frozen=True)
class DefaultOptions:
    """Every option at its default: what the report's options model gives for `{}`, without pydantic."""

    defaults: tuple[tuple[str, Any], ...]

    @property
    def pipeline_ids(self) -> None:
        return None

    def canonical(self) -> dict[str, Any]:
        return dict(self.defaults)

    def sql_params(self) -> dict[str, Any]:
        return dict(self.defaults)
