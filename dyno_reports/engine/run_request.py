"""Run requests: every input of a report run, validated against the database before anything is written.

The validated inputs are the run's identity: their canonical JSON (options with
defaults, pipeline ids sorted) is recorded in `report_run.input_params` and its
sha256 in `report_run.input_fingerprint`. The window is resolved in the tenant's
calendar (run_window.py), read with the tenant; `input_params` also records that
calendar, which the fingerprint leaves out: the resolved instants name the question.
Neither is K, what the run knows of the CRM (known_at.py): the header records it.
"""

import hashlib
import json
import math
import re
import sys
from dataclasses import dataclass, field
from datetime import UTC, datetime
from itertools import accumulate
from typing import Any
from uuid import UUID

from sqlalchemy import Connection, select

from dyno_reports.core import periods
from dyno_reports.core.errors import InputError, UnknownTenant, listed, shown
from dyno_reports.core.tenant_calendar import TenantCalendar
from dyno_reports.engine import known_at as knowledge
from dyno_reports.engine import run_window
from dyno_reports.reports import get_report
from dyno_reports.reports.base import ReportDefinition
from dyno_reports.reports.option_specs import Options, canonical_uuid
from dyno_reports.storage.tables import pipeline

# Bounds of an options JSON text, checked before and while it is parsed: its size in UTF-8, how deep
# arrays and objects nest, and how many digits one number may have (Python's int() refuses
# 4,300 digits and json recurses once per level, so neither is left to them).
OPTIONS_MAX_BYTES = 1024 * 1024
OPTIONS_MAX_DEPTH = 32
NUMBER_MAX_DIGITS = 30
# A string (to its end, if unterminated: every quote starts a match, so one linear scan) or a bracket.
_JSON_TOKEN = re.compile(r'"(?:[^"\\]|\\[\s\S])*+(?:"|\\?\Z)|([\[\]{}])')
_NESTING = {"": 0, "[": 1, "{": 1, "]": -1, "}": -1}


@dataclass(frozen=True)
class RunRequest:
    """Everything a run depends on, validated: the run's identity is these inputs.

    `so_far` is not part of that identity: a so-far run and a final run of one window answer the same
    question (one fingerprint), the final one once the period has ended. Neither is `calendar`, the
    tenant's calendar the window was resolved in: the window's instants already say which period it is,
    nor `known_at` (K: the run reads the history rows recorded at or before it), the state of knowledge
    the question is answered in; None only in requests that are never run (a FAILED header's)."""

    report: ReportDefinition
    tenant_id: UUID
    window: periods.Window
    options: Options
    dagster_run_id: str | None = None
    # A so-far run: its window had not ended when it was requested, so its numbers can still change.
    so_far: bool = False
    calendar: TenantCalendar = field(default_factory=TenantCalendar)
    known_at: datetime | None = None

    @property
    def period_grain(self) -> str:
        """The window's grain read in the tenant's calendar (recorded as `report_run.period_grain`)."""
        return self.calendar.grain_of(self.window.start, self.window.end)

    def input_params(self) -> dict[str, Any]:
        """Recorded in `report_run.input_params`: the options, the grain and the calendar; `so_far` only for a
        so-far run (a final run's have no such key)."""
        params: dict[str, Any] = {
            "options": self.options.canonical(),
            "period_grain": self.period_grain,
            "calendar": self.calendar.as_json(),
        }
        return (params | {"so_far": True}) if self.so_far else params

    def fingerprint(self) -> str:
        """sha256 of the canonical inputs (tenant, report_type, window, options with defaults)."""
        canonical = {
            "tenant_id": str(self.tenant_id),
            "report_type": self.report.report_type,
            "period_start": iso(self.window.start),
            "period_end": iso(self.window.end),
            "options": self.options.canonical(),
        }
        return fingerprint(canonical)

    def sql_params(self) -> dict[str, Any]:
        if self.known_at is None:
            raise ValueError("a run needs its known_at (K): build it with build_request")
        return {
            "tenant_id": self.tenant_id,
            "known_at": self.known_at,
            "period_start": self.window.start,
            "period_end": self.window.end,
            "fiscal_year_start_month": self.calendar.fiscal_year_start_month,
            **self.options.sql_params(),
        }


def build_request(
    conn: Connection,
    report_type: str,
    tenant_id: str | UUID,
    *,
    period_start: str | datetime | None = None,
    period_end: str | datetime | None = None,
    options: str | dict[str, Any] | None = None,
    dagster_run_id: str | None = None,
    so_far: bool = False,
    now: datetime | None = None,
    grain: str | None = None,
    period: str | None = None,
    as_known_at: str | datetime | None = None,
) -> RunRequest:
    """Validate every input against the database; raise InputError before anything is written.

    The window is resolved in the tenant's calendar, read in the statement that checks the tenant exists
    (run_window.resolve_window): text bounds are read in local time, datetimes are instants, `grain` and
    `period` (a label: 2025-06-02, 2025-06, FY2026-Q1) name a whole week, month or fiscal quarter.
    K, what the run knows of the CRM, is `as_known_at` (read as a bound is; after `now` refused), else `now`
    (default: the current time) minus the CRM's longest write transaction (known_at.py). A window that ends
    after K is not final: rows dated before its end may still be written, so its numbers can still change;
    it is refused unless `so_far` asks for it, and the run is then a so-far run. `so_far` on a window that
    ends at or before K makes an ordinary, final run."""
    report = get_report(report_type)
    tenant_uuid = parse_tenant_id(tenant_id)
    current = (now or datetime.now(UTC)).astimezone(UTC)
    calendar = run_window.read_calendar(conn, tenant_uuid)
    if calendar is None:
        raise UnknownTenant(tenant_uuid)
    window = run_window.resolve_window(calendar, period_start, period_end, grain=grain, period=period, now=current)
    known_at = knowledge.resolve_known_at(calendar, as_known_at, current)
    if window.end > known_at and not so_far:
        raise InputError(knowledge.not_final(window.end, known_at, current, given=as_known_at is not None))
    if report.requires_start and window.start is None:
        raise InputError(
            f"report {report_type} needs a window with a start (--period-start): "
            "it compares the pipeline at the start of the window with the pipeline at its end"
        )
    parsed_options = report.options_from(options_dict(options))
    _check_pipelines(conn, tenant_uuid, parsed_options.pipeline_ids)
    so_far_run = window.end > known_at
    return RunRequest(report, tenant_uuid, window, parsed_options, dagster_run_id, so_far_run, calendar, known_at)


def fingerprint(canonical: dict[str, Any]) -> str:
    """sha256 of canonical JSON (sorted keys, no spaces)."""
    encoded = json.dumps(canonical, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(encoded.encode()).hexdigest()


def parse_uuid(raw: str | UUID, what: str) -> UUID:
    """A UUID, or its canonical spelling (8-4-4-4-12 ASCII hex digits, nothing around them); else an
    InputError naming `what` the value was meant to be."""
    if isinstance(raw, UUID):
        return raw
    parsed = canonical_uuid(raw) if isinstance(raw, str) else None
    if parsed is None:
        raise InputError(f"{what} {shown(raw)} is not a UUID like 123e4567-e89b-12d3-a456-426614174000")
    return parsed


def parse_tenant_id(raw: str | UUID) -> UUID:
    return parse_uuid(raw, "tenant")


def _check_pipelines(conn: Connection, tenant_id: UUID, pipeline_ids: tuple[UUID, ...] | None) -> None:
    if not pipeline_ids:
        return
    owned = set(
        conn.execute(
            select(pipeline.c.pipeline_id).where(
                pipeline.c.tenant_id == tenant_id, pipeline.c.pipeline_id.in_(pipeline_ids)
            )
        ).scalars()
    )
    missing = [str(p) for p in pipeline_ids if p not in owned]
    if missing:
        raise InputError(f"pipeline(s) {listed(missing)} do not belong to tenant {tenant_id}")


def read_options_text(given: str) -> str:
    """The options JSON text of `--options`: `given` itself, or read from stdin (`-`, `@-`) or a file (`@FILE`),
    at most OPTIONS_MAX_BYTES (one more byte is read to tell that it is too large). Neither form is JSON."""
    if given not in ("-", "@-") and not given.startswith("@"):
        return given
    limit = OPTIONS_MAX_BYTES
    source = "stdin" if given in ("-", "@-") else f"file {shown(given[1:])}"
    try:
        if given in ("-", "@-"):
            data = sys.stdin.buffer.read(limit + 1)
        else:
            with open(given[1:], "rb") as file:
                data = file.read(limit + 1)
        if len(data) > limit:
            raise InputError(f"options from {source} are larger than {limit // 1024} KiB")
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise InputError(f"options from {source} are not UTF-8 (byte {exc.start})") from None
    except (OSError, ValueError) as exc:  # missing, unreadable, a folder; a NUL in the name
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        raise InputError(f"cannot read the options from {source}: {reason}") from None


def options_dict(options: str | dict[str, Any] | None) -> dict[str, Any] | None:
    """Options as given: None (no options: every default), a dict, or a JSON text (`parse_options_json`)."""
    if options is None or isinstance(options, dict):
        return options
    parsed = parse_options_json(options)
    if not isinstance(parsed, dict):  # `null` included: no options is `{}` (or no --options at all)
        raise InputError(f"options must be a JSON object ({{}} for every default), got {_json_type(parsed)}")
    return parsed


def parse_options_json(text: str) -> Any:
    """Strict JSON: at most OPTIONS_MAX_BYTES, nesting at most OPTIONS_MAX_DEPTH, numbers of at most
    NUMBER_MAX_DIGITS digits and finite, no NaN or Infinity, no key twice in one object.

    Whatever the text holds is returned (`null` too); `options_dict` then requires an object.
    """
    if len(text) > OPTIONS_MAX_BYTES or len(text.encode("utf-8", "surrogatepass")) > OPTIONS_MAX_BYTES:
        raise InputError(f"options are larger than {OPTIONS_MAX_BYTES // 1024} KiB")
    # json.loads recurses once per level (RecursionError at about 1,000): count them first, outside strings.
    if max(accumulate(map(_NESTING.__getitem__, _JSON_TOKEN.findall(text))), default=0) > OPTIONS_MAX_DEPTH:
        raise InputError(f"options nest deeper than {OPTIONS_MAX_DEPTH} levels of arrays and objects")
    try:
        return json.loads(
            text,
            object_pairs_hook=_object_without_repeats,
            parse_int=_bounded_int,
            parse_float=_bounded_float,
            parse_constant=_no_constant,
        )
    except json.JSONDecodeError as exc:
        raise InputError(f"options are not valid JSON: {exc.msg} (at character {exc.pos})") from None


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, list):
        return "an array"
    return "a string" if isinstance(value, str) else "a number"


def _object_without_repeats(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    obj: dict[str, Any] = {}
    for key, value in pairs:
        if key in obj:
            raise InputError(f"options name the key {shown(key)} more than once in one object")
        obj[key] = value
    return obj


def _check_digits(number: str) -> None:
    digits = sum(c.isdigit() for c in number)
    if digits > NUMBER_MAX_DIGITS:
        raise InputError(f"options hold a number of {digits} digits (at most {NUMBER_MAX_DIGITS})")


def _bounded_int(number: str) -> int:
    _check_digits(number)
    return int(number)


def _bounded_float(number: str) -> float:
    _check_digits(number)
    value = float(number)
    if not math.isfinite(value):
        raise InputError(f"options hold a number too large for a float: {shown(number)}")
    return value


def _no_constant(name: str) -> Any:
    raise InputError(f"options hold {name}, which is not JSON")


def iso(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat()
