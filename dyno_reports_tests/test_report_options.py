"""Report options without pydantic: the defaults a run without options takes, and the declared option specs,
agree with the lazily built pydantic models, for every report. No DB."""

import pytest

from dyno_reports.core.errors import InputError
from dyno_reports.reports import registry
from dyno_reports.reports.option_specs import DefaultOptions
from dyno_reports.reports.options import ReportOptions, parse_options

REPORTS = sorted(registry())


@pytest.mark.parametrize("report_type", REPORTS)
@pytest.mark.parametrize("none_given", [None, {}])
def test_no_options_are_the_models_defaults_without_the_model(report_type, none_given):
    report = registry()[report_type]
    defaults = report.options_from(none_given)
    modelled = parse_options(report.options_model, none_given)

    assert isinstance(defaults, DefaultOptions)
    assert defaults.canonical() == modelled.canonical()
    assert list(defaults.canonical()) == list(modelled.canonical())  # same keys, same order
    assert defaults.sql_params() == modelled.sql_params()
    assert defaults.pipeline_ids is modelled.pipeline_ids is None


@pytest.mark.parametrize("report_type", REPORTS)
def test_the_declared_specs_are_the_models_fields(report_type):
    report = registry()[report_type]
    fields = report.options_model.model_fields
    assert [spec.name for spec in report.all_options] == list(fields)
    for spec in report.all_options:
        assert (spec.default, spec.description) == (fields[spec.name].default, fields[spec.name].description)
    assert issubclass(report.options_model, ReportOptions)
    assert report.options_model is report.options_model  # built once


def test_given_options_are_validated_by_the_model():
    report = registry()["pipeline_overview"]
    given = report.options_from({"include_closed": True})
    assert isinstance(given, report.options_model)
    assert given.canonical() == {"pipeline_ids": None, "include_closed": True}
    with pytest.raises(InputError, match=r"^invalid options: option 'include_closed': Input should be a valid boolean"):
        report.options_from({"include_closed": "true"})  # strict: a string is not a bool
    with pytest.raises(InputError, match=r"^options must be a JSON object, got list$"):
        report.options_from([])  # type: ignore[arg-type]
