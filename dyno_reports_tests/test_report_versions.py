"""Each report's version against a digest of its statement (no DB): a change to a report's SQL fails here until
someone decides whether its results can change.

The digest is sha256 of the statement the executor sends for a run of the report (`executor._facts_sums_and_header`
compiled for psycopg: the report's SQL inside the facts, headline and header statement), followed by its
multi-period statement when it has one (which must give the same facts), so a change to the shared blocks
(`sql_common.py`, `multi_period.py`), to the report's own SQL or to the statement around it counts.
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
    "deal_velocity": (1, "9f437ccd0eec33357b3f7259b4902e3f3b7a2914871672cdc50a617e6cb2fa35"),
    "pipeline_movement": (1, "741df37e007dea29e7e9ceb0b8047093af01a0a5969d55e7994a66e1471a6355"),
    "pipeline_overview": (1, "25287335cd94284fb8ea5bbcbe1ed1196a4134fb2989af1ba6273c21901c99d9"),
    "stage_conversion": (1, "c8db35792aeaaefb16fb61cd1735339a32945c5dce720707ea8b83e89ceff987"),
    "weighted_pipeline": (1, "3a396d370ecaa2c55b2f173a4bff947c8b4aa57bde51920a400662d0f98b47e5"),
    "win_loss": (1, "29bc2c9898f0e16aee4784db60d0aa981ede733cccd5a10de1a50b8756afd761"),
}


def statement_digest(report_type: str) -> str:
    report = registry()[report_type]
    statement = _facts_sums_and_header(report, False).compile(dialect=psycopg.dialect())
    return hashlib.sha256((str(statement) + (report.multi_period_sql or "")).encode()).hexdigest()


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
