"""The tests every registered report gets, parametrised over the registry (real PostgreSQL; no DB for the
definition and option-model checks).

A report gets these tests by being registered: its SQL equals its plain-Python
reference (`reference.REFERENCES`) on generated histories, tenants' calendars,
windows (instants, or asked in the tenant's local time and resolved by the
reference calendar), pipeline selections and option values; options it does not have are refused; its options
have one canonical form that runs again to the same facts; its definition is
consistent. A registered report without a reference fails here. The report's own
hand-made edge cases stay in `test_<report>.py`.
"""

import json
from dataclasses import replace
from datetime import timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import BigInteger, Numeric, UniqueConstraint, func, select, text

from dyno_reports.core.errors import InputError
from dyno_reports.reports import registry
from dyno_reports.reports.options import ReportOptions, parse_options
from dyno_reports.reports.sql_common import DEAL_ROW_COLUMNS, DEAL_ROWS_SOURCE, SCOPE_STAGES
from dyno_reports.storage.tables import MONEY, report_run
from dyno_reports_tests.reference import REFERENCES, Reference
from dyno_reports_tests.support.facts import assert_matches_reference, facts_by_key, run, run_and_read
from dyno_reports_tests.support.history import (
    DEAL_IDS,
    PIPELINE_IDS,
    PRINCIPAL_IDS,
    T0,
    TenantData,
    load,
    pipeline_selections,
    two_pipelines,
)
from dyno_reports_tests.support.late_rows import known_ats, with_late_rows
from dyno_reports_tests.support.local_windows import calendars, local_windows

REPORTS = sorted(registry())
D = timedelta(days=1)
WINDOW = (T0, T0 + 30 * D)
MADE_UP_OPTION = "colour"
OWN_HISTORY_PASS = """
    FROM crm.deal_history h
    WHERE h.tenant_id = :tenant_id
      AND h.valid_from < CAST(:period_end AS timestamptz)
      AND h.recorded_at <= CAST(:known_at AS timestamptz)
"""


def reference_of(report_type: str) -> Reference:
    assert report_type in REFERENCES, (
        f"report {report_type!r} is registered but has no reference: write dyno_reports_tests/reference/"
        f"{report_type}.py from docs/definitions.md and add it to REFERENCES in "
        "dyno_reports_tests/reference/__init__.py"
    )
    return REFERENCES[report_type]


def own_options(report_type: str) -> set[str]:
    """The report's options besides pipeline_ids (which every report has)."""
    return set(registry()[report_type].options_model.model_fields) - {"pipeline_ids"}


def defaults(report_type: str) -> dict:
    return {name: field.default for name, field in registry()[report_type].options_model.model_fields.items()}


def header(engine, run_id):
    with engine.connect() as conn:
        return conn.execute(select(report_run).where(report_run.c.run_id == run_id)).mappings().one()


@pytest.fixture(scope="module")
def tenant(engine) -> TenantData:
    """Two pipelines and deals that give every report fact rows in WINDOW."""
    data, (lead, proposal, won, lost), (renewal, *_) = two_pipelines()
    p0, p1 = PRINCIPAL_IDS[:2]
    data.add_deal(DEAL_IDS[0], [(T0 - 2 * D, lead, 100, p0), (T0 + D, proposal, 120, p0), (T0 + 3 * D, won, 120, p0)])
    data.add_deal(DEAL_IDS[1], [(T0 + D, lead, 50, p1, T0.date()), (T0 + 5 * D, lost, 50, p1)])
    data.add_deal(DEAL_IDS[2], [(T0 - D, renewal, 30, p0, (T0 + 40 * D).date())])
    data.add_deal(DEAL_IDS[3], [(T0 + 2 * D, lead, 70, p1), (T0 + 4 * D, proposal, 75, p1, (T0 + 20 * D).date())])
    load(engine, data)
    return data


@pytest.fixture(scope="module")
def idle_tenant(engine) -> TenantData:
    """A tenant that no test runs a report for successfully."""
    data, _, _ = two_pipelines()
    load(engine, data)
    return data


# --- the registry of references -------------------------------------------------


@pytest.mark.parametrize("report_type", REPORTS)
def test_the_report_has_a_reference_that_draws_every_option_it_has(report_type):
    assert set(reference_of(report_type).options) == own_options(report_type)


def test_every_reference_is_of_a_registered_report():
    assert set(REFERENCES) <= set(registry())


# --- SQL against the reference on generated inputs (real PostgreSQL) -----------


@pytest.mark.parametrize("report_type", REPORTS)
@given(choices=st.data())
def test_matches_reference_on_generated_histories(engine, report_type, choices):
    reference = reference_of(report_type)
    check_against_reference(engine, report_type, reference, choices.draw(reference.histories), choices)


@pytest.mark.parametrize("report_type", REPORTS)
@given(choices=st.data())
def test_matches_reference_on_busy_histories(engine, report_type, choices):
    reference = reference_of(report_type)
    check_against_reference(engine, report_type, reference, choices.draw(reference.busy_histories), choices)


def check_against_reference(engine, report_type: str, reference: Reference, data: TenantData, choices) -> None:
    """A calendar for the tenant, late rows (recorded after their valid_from) and the K the run is asked at, a
    window (the report's instants, or a whole local period or local bounds), a pipeline selection and the
    report's own options, each given or left to its default."""
    data = choices.draw(with_late_rows(replace(data, calendar=choices.draw(calendars()))))
    known_at = choices.draw(known_ats(data))
    local = choices.draw(st.booleans())
    window = choices.draw(local_windows(data.calendar) if local else reference.windows(data))
    pipeline_ids = choices.draw(pipeline_selections(data))
    options = choices.draw(st.fixed_dictionaries({}, optional=dict(reference.options)))
    assert_matches_reference(engine, report_type, reference.expected, data, window, pipeline_ids, known_at, **options)


@pytest.mark.parametrize("report_type", REPORTS)
def test_a_tenant_without_pipelines_gets_no_rows(engine, report_type):
    data = TenantData()
    load(engine, data)

    assert run_and_read(engine, report_type, data.tenant_id, *WINDOW) == {}
    assert reference_of(report_type).expected(data, *WINDOW) == {}


# --- options -------------------------------------------------------------------


def options_it_does_not_have(report_type: str) -> list[str]:
    """Every other report's options this one lacks, and one no report has."""
    every = {name for report in registry().values() for name in report.options_model.model_fields}
    return [*sorted(every - set(registry()[report_type].options_model.model_fields)), MADE_UP_OPTION]


@pytest.mark.parametrize(
    ("report_type", "option"), [(r, option) for r in REPORTS for option in options_it_does_not_have(r)]
)
def test_refuses_an_option_it_does_not_have_and_writes_nothing(engine, idle_tenant, report_type, option):
    with pytest.raises(InputError, match=f"unknown option '{option}'"):
        run(engine, report_type, idle_tenant.tenant_id, *WINDOW, {option: True})

    with engine.connect() as conn:
        headers = select(func.count()).select_from(report_run).where(report_run.c.tenant_id == idle_tenant.tenant_id)
        assert conn.execute(headers).scalar_one() == 0


@pytest.mark.parametrize("report_type", REPORTS)
@given(choices=st.data())
def test_options_round_trip_through_their_canonical_form(report_type, choices):
    """Any spelling of valid options has one canonical form (every option, defaults filled in, pipeline
    ids sorted and deduplicated, JSON), which parses back to the same options. No DB."""
    model = registry()[report_type].options_model
    given_options = choices.draw(st.fixed_dictionaries({}, optional=dict(reference_of(report_type).options)))
    raw = dict(given_options)
    pipeline_ids = choices.draw(st.none() | st.lists(st.sampled_from(PIPELINE_IDS), min_size=1, max_size=6))
    if pipeline_ids is not None:
        spellings = st.sampled_from([str, lambda p: str(p).upper(), lambda p: p])
        raw["pipeline_ids"] = [choices.draw(spellings)(p) for p in pipeline_ids]

    options = parse_options(model, raw)
    canonical = options.canonical()

    ids = None if pipeline_ids is None else [str(p) for p in sorted(set(pipeline_ids))]
    assert canonical == defaults(report_type) | given_options | {"pipeline_ids": ids}
    assert json.loads(json.dumps(canonical)) == canonical
    again = parse_options(model, json.loads(json.dumps(canonical)))
    assert again == options and again.canonical() == canonical
    params = options.sql_params()
    assert set(params) == set(model.model_fields)
    assert params["pipeline_ids"] == (None if pipeline_ids is None else sorted(set(pipeline_ids)))


@pytest.mark.parametrize("report_type", REPORTS)
def test_a_run_records_its_options_canonically_and_they_run_again_to_the_same_facts(engine, tenant, report_type):
    a, b = tenant.pipelines
    first = run(engine, report_type, tenant.tenant_id, *WINDOW, {"pipeline_ids": [str(b), str(a).upper(), str(b)]})
    assert first.succeeded, first.error_message
    recorded = header(engine, first.run_id)

    assert recorded["input_params"]["options"] == defaults(report_type) | {"pipeline_ids": [str(a), str(b)]}
    assert recorded["input_fingerprint"] == first.request.fingerprint()

    again = run(engine, report_type, tenant.tenant_id, *WINDOW, json.dumps(recorded["input_params"]["options"]))

    assert again.succeeded, again.error_message
    assert header(engine, again.run_id)["input_fingerprint"] == recorded["input_fingerprint"]
    facts = facts_by_key(engine, report_type, first.run_id)
    assert facts and facts == facts_by_key(engine, report_type, again.run_id)


# --- the definition (no DB) ----------------------------------------------------


@pytest.mark.parametrize("report_type", REPORTS)
def test_definition_is_consistent(report_type):
    report = registry()[report_type]
    table = report.fact_table
    assert report.cadences == reference_of(report_type).cadences
    assert report.title and report.description
    assert (table.schema, table.name) == ("reporting", f"report_{report_type}_fact")
    # every report is scoped by pipeline_ids, and its fact rows name their pipeline first
    assert report.dimensions[0] == "pipeline_id"
    # within a run, the dimension values identify a fact row (the tests read facts keyed by them)
    (unique,) = [c for c in table.constraints if isinstance(c, UniqueConstraint)]
    keys = set(unique.columns.keys())
    assert "run_id" in keys and keys <= {"run_id", *report.dimensions}
    # the headline sums metrics over the facts: counts and amounts, never rates or days
    for name in report.headline_metrics:
        column_type = table.c[name].type
        assert isinstance(column_type, BigInteger) or (
            isinstance(column_type, Numeric) and (column_type.precision, column_type.scale) == (MONEY.precision, 2)
        ), name


@pytest.mark.parametrize("report_type", REPORTS)
def test_sql_is_built_on_the_shared_ctes_and_binds_every_option(report_type):
    report = registry()[report_type]
    # the shared CTEs carry the tenant predicate and ignore every row dated at or after E or recorded after K;
    # a report that makes its own pass over history (pipeline_movement) carries them there (test_isolation
    # checks the plans)
    assert OWN_HISTORY_PASS in report.sql
    if DEAL_ROWS_SOURCE in report.sql:
        select_list, rest = report.sql.split(DEAL_ROWS_SOURCE, 1)
        head, columns = select_list.split("SELECT ", 1)
        assert head == "WITH\ndeal_rows AS (\n    "
        for column in columns.split(",\n           "):
            name = column.rsplit(" AS ", 1)[1]
            assert column == f"{DEAL_ROW_COLUMNS[name]} AS {name}"
        assert rest.startswith("," + SCOPE_STAGES)
    bound = set(text(report.sql).compile().params)
    needed = {"tenant_id", "period_end", "known_at", *report.options_model.model_fields}
    assert needed <= bound <= needed | {"period_start", "fiscal_year_start_month"}


@pytest.mark.parametrize("report_type", REPORTS)
def test_options_model_refuses_unknown_keys_and_needs_no_option(report_type):
    model = registry()[report_type].options_model
    assert issubclass(model, ReportOptions) and model.model_config.get("extra") == "forbid"
    assert all(field.description for field in model.model_fields.values())  # `dyno-reports list` shows them
    assert model().canonical() == defaults(report_type)  # a run without options takes every default
