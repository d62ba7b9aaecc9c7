"""Each report's version against a digest of its statement (no DB): a change to a report's SQL fails here until
someone decides whether its results can change.

The digest is sha256 of the statement the executor sends for a run of the report (`executor._facts_sums_and_header`
compiled for psycopg: the report's SQL inside the facts, headline and header statement), so a change to the shared
blocks (`sql_common.py`), to the report's own SQL or to the statement around it counts.
"""

import hashlib
import re
from dataclasses import replace

import pytest
from sqlalchemy.dialects.postgresql import psycopg

from dyno_reports.engine.executor import _facts_sums_and_header
from dyno_reports.reports import registry

# report_type -> (report_version, sha256 of the statement). Decide, then update:
STATEMENTS = {
    "deal_velocity": (1, "329497ae6018f3ad6897959c363344639aff7bdef3ea18f71a79ba0e8d47e8cd"),
    "pipeline_movement": (1, "5d500249b1864a7b0da3f39bb1bd2bd1d63920967609d91e7686adea80a5886d"),
    "pipeline_overview": (1, "b5f340dc8542c8a580b0f0eca2fda0e8f6acdda5fb2fc6a86f47295e08acfb2c"),
    "stage_conversion": (1, "57c48d25449704145b2e299e5d805e3ce1da291dc5751aea7626232cff8ad9f2"),
    "weighted_pipeline": (1, "9412ca420aff669fdfd87b28a5157ab438afc01772515701c913f0a28cc9eab4"),
    "win_loss": (1, "721e6fd1c86d9aab0bad3e78f182275c7d056d7046f152d83b89c271a12580a6"),
}


def statement_digest(report_type: str) -> str:
    statement = _facts_sums_and_header(registry()[report_type]).compile(dialect=psycopg.dialect())
    return hashlib.sha256(str(statement).encode()).hexdigest()


def test_every_report_has_its_version_and_digest_here():
    assert set(STATEMENTS) == set(registry())


@pytest.mark.parametrize("report_type", sorted(registry()))
def test_the_reports_statement_is_the_one_its_version_was_decided_for(report_type):
    version, digest = STATEMENTS[report_type]
    report = registry()[report_type]
    actual = statement_digest(report_type)
    assert (report.report_version, actual) == (version, digest), (
        f"{report_type}: its statement or its version changed (now version {report.report_version}, statement "
        f"digest {actual}; decided here: version {version}, digest {digest}). Decide: if the change can change "
        f"the report's results (another number, row or rounding for any history), bump report_version in "
        f"dyno_reports/reports/{report_type}/{report_type}_executor.py to {version + 1} and set ({version + 1}, "
        f'"{actual}") here; if it cannot (a comment, a rename, a plan choice), keep the version and set only '
        f"the digest here. Runs record the version: a bump makes every earlier run of the report stale."
    )


def test_a_changed_statement_fails_with_what_to_do(monkeypatch):
    """The check itself: a report whose SQL changed by one character is caught and told what to do."""
    report = registry()["win_loss"]
    monkeypatch.setitem(
        registry(), "win_loss", replace(report, sql=report.sql.replace("ORDER BY pipeline_id", "ORDER BY  pipeline_id"))
    )
    with pytest.raises(
        AssertionError,
        match=re.escape("bump report_version in dyno_reports/reports/win_loss/win_loss_executor.py to 2"),
    ):
        test_the_reports_statement_is_the_one_its_version_was_decided_for("win_loss")
    monkeypatch.setitem(registry(), "win_loss", replace(report, report_version=2))
    with pytest.raises(AssertionError, match="now version 2"):  # a version bumped here but not there
        test_the_reports_statement_is_the_one_its_version_was_decided_for("win_loss")
