"""What a run's header records it depended on (real PostgreSQL): K, the report's version and the digest of the
pipelines and stages in its scope, computed in the run's own statement by the canonical form of
docs/definitions.md; a stage's probability, kind, position or pipeline changes the digest of the runs whose scope
holds it, a rename changes none; a finished run's record of them is final.
"""

import uuid
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import insert, select, text, update
from sqlalchemy.exc import IntegrityError

from dyno_reports.engine import run_records, run_request
from dyno_reports.reports import registry
from dyno_reports.storage.tables import report_run
from dyno_reports_tests.reference.common import scope_digest
from dyno_reports_tests.support.facts import run
from dyno_reports_tests.support.history import DEAL_IDS, T0, load, two_pipelines

D = timedelta(days=1)
WINDOW = (T0, T0 + 30 * D)


def tenant_with_two_pipelines(engine):
    data, (lead, proposal, won, _lost), (renewal, *_) = two_pipelines()
    data.add_deal(DEAL_IDS[0], [(T0 - 2 * D, lead, 100), (T0 + D, proposal, 120), (T0 + 3 * D, won, 120)])
    data.add_deal(DEAL_IDS[1], [(T0 - D, renewal, 30)])
    load(engine, data)
    return data


def header_of(engine, run_id) -> dict:
    with engine.connect() as conn:
        return dict(conn.execute(select(report_run).where(report_run.c.run_id == run_id)).mappings().one())


def digest_of_run(engine, data, report_type: str, pipeline_ids=None) -> str:
    options = None if pipeline_ids is None else {"pipeline_ids": [str(p) for p in pipeline_ids]}
    result = run(engine, report_type, data.tenant_id, *WINDOW, options)
    assert result.succeeded, result.error_message
    recorded = header_of(engine, result.run_id)
    assert recorded["scope_digest"] == result.scope_digest == result.summary()["scope_digest"]
    return recorded["scope_digest"]


@pytest.mark.parametrize("report_type", sorted(registry()))
def test_a_run_records_its_k_its_reports_version_and_its_scopes_digest_in_the_documented_form(engine, report_type):
    data = tenant_with_two_pipelines(engine)
    first, second = data.pipelines
    for selected in (None, [first], [second, first]):
        options = None if selected is None else {"pipeline_ids": [str(p) for p in selected]}
        result = run(engine, report_type, data.tenant_id, *WINDOW, options)
        assert result.succeeded, result.error_message
        recorded = header_of(engine, result.run_id)
        assert recorded["known_at"] == result.request.known_at
        assert (
            recorded["report_version"] == registry()[report_type].report_version == result.summary()["report_version"]
        )
        assert recorded["scope_digest"] == scope_digest(data, selected)
    assert scope_digest(data, [first]) != scope_digest(data, None) != scope_digest(data, [second])


CHANGES = {
    "probability": ("UPDATE crm.stage SET probability = 0.55 WHERE tenant_id = :t AND stage_id = :s", True),
    "kind": ("UPDATE crm.stage SET kind = 'lost' WHERE tenant_id = :t AND stage_id = :s", True),
    "position": ("UPDATE crm.stage SET position = 99 WHERE tenant_id = :t AND stage_id = :s", True),
    "stage renamed": ("UPDATE crm.stage SET name = 'Discovery' WHERE tenant_id = :t AND stage_id = :s", False),
    "pipeline renamed": (
        "UPDATE crm.pipeline SET name = 'Sales' WHERE tenant_id = :t"
        " AND pipeline_id = (SELECT pipeline_id FROM crm.stage WHERE tenant_id = :t AND stage_id = :s)",
        False,
    ),
}


@pytest.mark.parametrize("change", CHANGES)
def test_a_stage_edit_changes_the_digest_of_the_runs_whose_scope_holds_it_a_rename_none(engine, change):
    data = tenant_with_two_pipelines(engine)
    first, second = data.pipelines
    edited = next(s for s in data.stages.values() if s.pipeline_id == first and s.kind == "open")
    scopes = {"every pipeline": None, "its pipeline": [first], "the other pipeline": [second]}
    before = {name: digest_of_run(engine, data, "weighted_pipeline", ids) for name, ids in scopes.items()}
    statement, changes_results = CHANGES[change]
    with engine.begin() as conn:
        conn.execute(text(statement), {"t": data.tenant_id, "s": edited.stage_id})
    after = {name: digest_of_run(engine, data, "weighted_pipeline", ids) for name, ids in scopes.items()}

    changed = {name for name in scopes if after[name] != before[name]}
    assert changed == ({"every pipeline", "its pipeline"} if changes_results else set())


def test_a_stage_moved_to_another_pipeline_changes_both_pipelines_digests(engine):
    data = tenant_with_two_pipelines(engine)
    first, second = data.pipelines
    moved = next(s for s in data.stages.values() if s.pipeline_id == first and s.kind == "open")
    before = [digest_of_run(engine, data, "win_loss", [p]) for p in (first, second)]
    with engine.begin() as conn:
        conn.execute(
            text("UPDATE crm.stage SET pipeline_id = :p, position = 50 WHERE tenant_id = :t AND stage_id = :s"),
            {"p": second, "t": data.tenant_id, "s": moved.stage_id},
        )
    after = [digest_of_run(engine, data, "win_loss", [p]) for p in (first, second)]
    assert after[0] != before[0] and after[1] != before[1]
    stages = dict(data.stages) | {moved.stage_id: replace(moved, pipeline_id=second, position=50)}
    assert after == [scope_digest(replace(data, stages=stages), [p]) for p in (first, second)]


def test_a_finished_runs_record_of_what_it_knew_is_final(engine):
    data = tenant_with_two_pipelines(engine)
    result = run(engine, "win_loss", data.tenant_id, *WINDOW)
    assert result.succeeded
    later = {
        "known_at": result.request.known_at + timedelta(seconds=1),
        "report_version": 2,
        "scope_digest": "f" * 64,
    }
    for column, value in later.items():
        with engine.begin() as conn, pytest.raises(IntegrityError, match=f"its record is final: {column} cannot"):
            conn.execute(update(report_run).where(report_run.c.run_id == result.run_id).values({column: value}))


def test_a_succeeded_header_must_say_what_it_knew_and_a_failed_one_says_what_it_can(engine):
    data = tenant_with_two_pipelines(engine)
    with engine.connect() as conn:
        request = run_request.build_request(
            conn, "win_loss", data.tenant_id, period_start=WINDOW[0], period_end=WINDOW[1]
        )
    for missing in ("known_at", "report_version", "scope_digest"):
        values = run_records.header_values(request, uuid.uuid4(), "SUCCEEDED") | {"scope_digest": "0" * 64}
        with engine.begin() as conn, pytest.raises(IntegrityError, match="succeeded_records_what_it_knew"):
            conn.execute(insert(report_run).values(values | {missing: None}))
    for column, bad in (("report_version", 0), ("scope_digest", "not a digest")):
        values = run_records.header_values(request, uuid.uuid4(), "FAILED") | {"error_message": "x", column: bad}
        with engine.begin() as conn, pytest.raises(IntegrityError, match=f"ck_report_run_{column}"):
            conn.execute(insert(report_run).values(values))

    failed = uuid.uuid4()
    run_records.record_failure(engine, request, failed, "a failure")
    recorded = header_of(engine, failed)
    assert (recorded["known_at"], recorded["report_version"], recorded["scope_digest"]) == (
        request.known_at,
        registry()["win_loss"].report_version,
        None,  # computed only by a run's own statement
    )
    refused = run_records.record_input_failure(
        engine, "win_loss", data.tenant_id, request.window, '{"colour": 1}', "unknown option"
    )
    assert [header_of(engine, refused)[c] for c in ("known_at", "report_version", "scope_digest")] == [None] * 3


def test_an_old_k_and_the_default_k_differ_only_in_known_at(engine):
    """Two runs of one question at two K on unchanged data: the same version and digest, their own K."""
    data = tenant_with_two_pipelines(engine)
    given = datetime(2025, 8, 1, tzinfo=UTC)
    old = run(engine, "stage_conversion", data.tenant_id, *WINDOW, as_known_at=given)
    new = run(engine, "stage_conversion", data.tenant_id, *WINDOW)
    a, b = header_of(engine, old.run_id), header_of(engine, new.run_id)
    assert (a["report_version"], a["scope_digest"]) == (b["report_version"], b["scope_digest"])
    assert a["known_at"] == given < b["known_at"]
