"""What a report declares: identity, fact table, dimensions, metrics, options, cadences and SQL.

No pydantic here: a run without options takes every default (`ReportDefinition.options_from`), and the
pydantic model that validates given options is built on first use (reports/options.py).
"""

import json
from dataclasses import dataclass
from functools import cached_property
from typing import TYPE_CHECKING, Any, Literal

from sqlalchemy import Table

from dyno_reports.reports.fact_checks import FactCheck
from dyno_reports.reports.option_specs import PIPELINE_IDS, DefaultOptions, Options, OptionSpec

if TYPE_CHECKING:
    from dyno_reports.reports.options import ReportOptions

Cadence = Literal["week", "month", "quarter"]
# The periods a report runs for, in its tenant's calendar: weeks, calendar months, fiscal quarters.
CADENCES: tuple[Cadence, ...] = ("week", "month", "quarter")


@dataclass(frozen=True)
class ReportDefinition:
    """A registered report. `sql` is one SELECT returning `dimensions + metrics`, in that order.

    Bound parameters available to `sql`: `tenant_id`, `period_start` (NULL = no
    lower bound), `period_end`, `fiscal_year_start_month` (the tenant's calendar, 1..12),
    `pipeline_ids` and every option of `options` by name.
    `cadences`: the periods the report runs for (week, month, quarter: the tenant's weeks, months,
    fiscal quarters), its main one first (`cadence`).
    `attributes`: fact columns that follow from the dimensions (one value per row's dimension values):
    not part of the row's key, listed between the dimensions and the metrics, `trend --by` groups by them.
    `options`: the report's own options, besides `pipeline_ids` which every report has.
    `requires_start`: the report refuses a window without a start (a snapshot at S).
    `jit`: whether PostgreSQL's JIT may compile this report's statement; the executor
    turns it off for the run's transaction when False (the measured reason is in the
    report's design details).
    `planner_settings`: (name, value) pairs the executor sets for the run's transaction only
    (`set_config(..., true)`), e.g. to keep the one ordered pass over the primary key where the
    planner would otherwise sort; each one's measured reason is in the report's design details.
    `report_version`: the version of the report's definition (1, 2, ...), recorded in every run's header
    (`report_run.report_version`); bumped whenever a change can change its results, so a run made with an
    older version can be told from the current answer. test_report_versions holds a digest of each
    report's statement beside its version: a change to the SQL fails there until it is decided.
    `fact_checks`: the report's own checks on the facts a Dagster run wrote (reports/fact_checks.py), besides
    the generic ones every report gets; each becomes an asset check of the report's assets.
    `multi_period_sql`: the same facts for several disjoint windows of one tenant, options and K from one pass
    over the history (reports/multi_period.py): `window_index` then `fact_columns`; None: each window is run
    alone. It runs under `multi_period_transaction_settings()`: the report's own settings and
    `multi_period_settings` (each one's measured reason in the report's design details).
    """

    report_type: str
    title: str
    description: str
    fact_table: Table
    dimensions: tuple[str, ...]
    metrics: tuple[str, ...]
    headline_metrics: tuple[str, ...]
    cadences: tuple[Cadence, ...]
    sql: str
    report_version: int
    options: tuple[OptionSpec, ...] = ()
    attributes: tuple[str, ...] = ()
    requires_start: bool = False
    jit: bool = True
    planner_settings: tuple[tuple[str, str], ...] = ()
    fact_checks: tuple[FactCheck, ...] = ()
    multi_period_sql: str | None = None
    multi_period_settings: tuple[tuple[str, str], ...] = ()

    def __post_init__(self) -> None:
        expected = {"run_id", "tenant_id", *self.dimensions, *self.attributes, *self.metrics}
        actual = set(self.fact_table.c.keys())
        if expected != actual:
            raise ValueError(f"{self.report_type}: fact table columns {sorted(actual)} != declared {sorted(expected)}")
        if not set(self.headline_metrics) <= set(self.metrics):
            raise ValueError(f"{self.report_type}: headline metrics must be metrics")
        names = [spec.name for spec in self.all_options]
        if len(set(names)) != len(names):
            raise ValueError(f"{self.report_type}: option names {names} repeat one")
        if not self.cadences or len(set(self.cadences)) != len(self.cadences) or not set(self.cadences) <= {*CADENCES}:
            raise ValueError(f"{self.report_type}: cadences {self.cadences} must be distinct, of {CADENCES}")
        if type(self.report_version) is not int or self.report_version < 1:
            raise ValueError(f"{self.report_type}: report_version must be a whole number from 1")

    @property
    def cadence(self) -> Cadence:
        """The main cadence (the first): the Dagster assets' and `trend`'s default."""
        return self.cadences[0]

    def transaction_settings(self) -> dict[str, str]:
        """The settings this report's run sets for its transaction beyond the executor's own."""
        return ({} if self.jit else {"jit": "off"}) | dict(self.planner_settings)

    def multi_period_transaction_settings(self) -> dict[str, str]:
        """The settings of a multi-period pass's transaction: the report's own, then its pass's own."""
        return self.transaction_settings() | dict(self.multi_period_settings)

    @property
    def fact_columns(self) -> tuple[str, ...]:
        """The columns the report's SQL returns, in this order."""
        return self.dimensions + self.attributes + self.metrics

    @property
    def group_columns(self) -> tuple[str, ...]:
        """What `trend --by` may group by: the dimensions and the attributes."""
        return self.dimensions + self.attributes

    @property
    def all_options(self) -> tuple[OptionSpec, ...]:
        return (PIPELINE_IDS, *self.options)

    @cached_property
    def options_model(self) -> "type[ReportOptions]":
        """The pydantic model that validates this report's options (built on first use)."""
        from dyno_reports.reports.options import model_for  # pydantic, loaded when options are first validated

        return model_for(self)

    def options_from(self, raw: dict[str, Any] | None) -> "Options":
        """`raw` options parsed: none (None or `{}`) is every default without pydantic, else `parse_options`."""
        if raw is None or (isinstance(raw, dict) and not raw):
            return DefaultOptions(tuple((spec.name, spec.default) for spec in self.all_options))
        from dyno_reports.reports.options import parse_options

        return parse_options(self.options_model, raw)

    def option_fields(self) -> dict[str, str]:
        """Option name -> its description and default, for `dyno-reports list`."""
        return {spec.name: f"{spec.description} (default: {json.dumps(spec.default)})" for spec in self.all_options}
