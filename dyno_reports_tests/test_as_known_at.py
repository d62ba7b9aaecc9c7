"""As known at (real PostgreSQL; `dyno-reports run` as a subprocess): a run reads the history rows recorded at or
before its K; K defaults to the run's start minus the CRM's longest write, is recorded, and can be given
(`--as-known-at`), and a run given an earlier run's K repeats its facts exactly, whatever was recorded since; a
run whose window ends after K is so far.
"""

import json
import re
import uuid
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import select, text

from dyno_reports.core.errors import ConfigError, InputError
from dyno_reports.engine import executor, run_request
from dyno_reports.reports import registry
from dyno_reports.storage.tables import report_run
from dyno_reports_tests.reference import REFERENCES
from dyno_reports_tests.support.facts import facts_by_key, run
from dyno_reports_tests.support.history import DEAL_IDS, PIPELINE_IDS, T0, TenantData, load, load_rows
from dyno_reports_tests.support.history import pipeline_selections as selections
from dyno_reports_tests.support.late_rows import known_ats, with_late_rows
from dyno_reports_tests.test_cli import dyno, run_count

D = timedelta(days=1)
CRM = timedelta(minutes=10)  # the CRM's longest write transaction, by default (docs/definitions.md)
NOW = datetime(2026, 3, 4, 15, 30, tzinfo=UTC)
WEEK = {"period_start": "2025-06-02", "period_end": "2025-06-09"}


@pytest.fixture(scope="module")
def tenant(engine) -> TenantData:
    """One open deal since before T0; a second one won in T0's week."""
    data = TenantData()
    lead, won, _lost = data.add_pipeline(PIPELINE_IDS[0], ["open", "won", "lost"])
    data.add_deal(DEAL_IDS[0], [(T0 - 3 * D, lead, 10)])
    data.add_deal(DEAL_IDS[1], [(T0 - 2 * D, lead, 20), (T0 + D, won, 20)])
    load(engine, data)
    return data


def header_of(engine, run_id) -> dict:
    with engine.connect() as conn:
        return dict(conn.execute(select(report_run).where(report_run.c.run_id == run_id)).mappings().one())


def last_json(done) -> dict:
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])


# --- a run given K repeats itself, whatever was recorded since (every report) -------------------


@pytest.mark.parametrize("report_type", sorted(registry()))
@given(choices=st.data())
def test_given_k_a_run_repeats_its_facts_exactly_after_late_rows_landed(engine, report_type, choices):
    """The CRM as it was at K (the rows recorded by then) is run at K; then the late rows land (recorded after K,
    often dated before E) and the run at K gives the very same facts, which are the reference's at K."""
    reference = REFERENCES[report_type]
    data = choices.draw(with_late_rows(choices.draw(reference.histories)))
    known_at = choices.draw(known_ats(data).filter(lambda k: k is not None))
    start, end = choices.draw(reference.windows(data))
    pipeline_ids = choices.draw(selections(data))
    options = choices.draw(st.fixed_dictionaries({}, optional=dict(reference.options)))
    asked = options | ({} if pipeline_ids is None else {"pipeline_ids": [str(p) for p in pipeline_ids]})
    load(engine, replace(data, rows=[r for r in data.rows if r.recorded_at <= known_at]))

    def run_at_k() -> dict:
        result = run(engine, report_type, data.tenant_id, start, end, asked or None, as_known_at=known_at, so_far=True)
        assert result.succeeded, result.error_message
        assert header_of(engine, result.run_id)["known_at"] == known_at
        return facts_by_key(engine, report_type, result.run_id)

    before = run_at_k()
    load_rows(engine, data, [r for r in data.rows if r.recorded_at > known_at])
    after = run_at_k()

    assert after == before == reference.expected(data, start, end, pipeline_ids, known_at=known_at, **options)


# --- K by default, and configured --------------------------------------------------------------


def test_k_defaults_to_the_runs_start_minus_ten_minutes_and_is_recorded(engine, tenant):
    with engine.connect() as conn:
        request = run_request.build_request(conn, "win_loss", tenant.tenant_id, **WEEK, now=NOW)
    assert request.known_at == NOW - CRM and not request.so_far
    result = executor.execute(engine, request)
    assert result.succeeded and result.fact_rows == 1
    assert header_of(engine, result.run_id)["known_at"] == NOW - CRM
    assert result.summary()["known_at"] == (NOW - CRM).isoformat()
    assert "known_at" not in request.input_params()  # K names the state of knowledge, not the question


def test_the_crms_longest_write_is_configured(engine, tenant, monkeypatch):
    monkeypatch.setenv("DYNO_CRM_MAX_WRITE_SECONDS", "60")
    with engine.connect() as conn:
        request = run_request.build_request(conn, "win_loss", tenant.tenant_id, **WEEK, now=NOW)
    assert request.known_at == NOW - timedelta(seconds=60)
    for bad in ("10min", "-1", "86401"):
        monkeypatch.setenv("DYNO_CRM_MAX_WRITE_SECONDS", bad)
        with engine.connect() as conn, pytest.raises(ConfigError, match="DYNO_CRM_MAX_WRITE_SECONDS must be"):
            run_request.build_request(conn, "win_loss", tenant.tenant_id, **WEEK, now=NOW)


def test_k_is_not_part_of_the_question(engine, tenant):
    with engine.connect() as conn:
        default = run_request.build_request(conn, "win_loss", tenant.tenant_id, **WEEK, now=NOW)
        given_k = run_request.build_request(
            conn, "win_loss", tenant.tenant_id, **WEEK, now=NOW, as_known_at="2025-07-01T00:00:00Z"
        )
    assert given_k.known_at == datetime(2025, 7, 1, tzinfo=UTC) != default.known_at
    assert given_k.fingerprint() == default.fingerprint() and given_k.input_params() == default.input_params()


# --- the real clock: a backdated row written now is not known yet -------------------------------------


def test_a_backdated_row_written_now_is_not_known_by_default_and_is_known_as_known_at_now(cli_env, engine):
    data = TenantData()
    lead, won, _lost = data.add_pipeline(PIPELINE_IDS[0], ["open", "won", "lost"])
    data.add_deal(DEAL_IDS[0], [(T0 - 3 * D, lead, 10)])
    load(engine, data)
    month = ("--period-start", "2025-06-01", "--period-end", "2025-07-01", "--json")
    ask = ("run", "weighted_pipeline", "--tenant", str(data.tenant_id), *month)
    with engine.begin() as conn:  # won on T0, written now (recorded_at: the CRM's default, now())
        written = conn.execute(
            text(
                "INSERT INTO crm.deal_history (tenant_id, deal_id, valid_from, stage_id, owner_principal_id, amount)"
                " VALUES (:t, :d, :v, :s, :o, 10) RETURNING recorded_at"
            ),
            {"t": data.tenant_id, "d": DEAL_IDS[0], "v": T0, "s": won.stage_id, "o": data.principals[0]},
        ).scalar_one()
    assert written > datetime.now(UTC) - timedelta(minutes=1)

    by_default = last_json(dyno(cli_env, *ask))
    assert by_default["headline"]["deal_count"] == 1  # still open as known ten minutes ago
    assert datetime.fromisoformat(by_default["known_at"]) < written

    known_now = last_json(dyno(cli_env, *ask, "--as-known-at", written.isoformat()))
    assert known_now["headline"]["deal_count"] == 0  # won before the month ended, as known now
    assert known_now["known_at"] == written.isoformat()
    assert known_now["input_fingerprint"] == by_default["input_fingerprint"]


# --- --as-known-at, read and refused -------------------------------------------------------------------


def test_as_known_at_is_read_as_a_bound_is_in_the_tenants_zone(cli_env, engine):
    data = TenantData(calendar=("Australia/Sydney", 1, 7, "end"))
    lead, *_ = data.add_pipeline(PIPELINE_IDS[0], ["open", "won", "lost"])
    data.add_deal(DEAL_IDS[0], [(T0 - 3 * D, lead, 10)])
    load(engine, data)
    ask = ("run", "win_loss", "--tenant", str(data.tenant_id), "--grain", "month", "--period", "2025-06", "--json")
    local = last_json(dyno(cli_env, *ask, "--as-known-at", "2025-07-01T10:00:00"))
    assert header_of(engine, uuid.UUID(local["run_id"]))["known_at"] == datetime(2025, 7, 1, tzinfo=UTC)
    instant = last_json(dyno(cli_env, *ask, "--as-known-at", "2025-07-01T10:00:00Z"))
    assert instant["known_at"] == "2025-07-01T10:00:00+00:00"
    day = last_json(dyno(cli_env, *ask, "--as-known-at", "2025-07-02"))  # a date: local midnight
    assert day["known_at"] == "2025-07-01T14:00:00+00:00"


@pytest.mark.parametrize(
    ("given", "refusal"),
    [
        ("2999-01-01T00:00:00Z", r"as-known-at '2999-01-01T00:00:00Z' is after now \(\S+\): a run can only know"),
        ("yesterday", r"as-known-at 'yesterday' is not an ISO date or timestamp"),
        ("0001-01-01", r"as-known-at '0001-01-01' is outside the supported range"),
    ],
)
def test_as_known_at_in_the_future_or_unreadable_is_refused_and_nothing_is_written(
    cli_env, engine, tenant, given, refusal
):
    before = run_count(engine)
    week = ("--period-start", WEEK["period_start"], "--period-end", WEEK["period_end"])
    done = dyno(cli_env, "run", "win_loss", "--tenant", str(tenant.tenant_id), *week, "--as-known-at", given)
    assert done.returncode == 2 and done.stdout == ""
    assert re.fullmatch(f"error: {refusal}.*\n", done.stderr), done.stderr
    assert run_count(engine) == before


# --- final only when E <= K ---------------------------------------------------------------------------


def test_a_window_ending_after_k_is_not_final_refused_without_so_far(engine, tenant):
    ends = {"period_start": NOW - 7 * D, "period_end": NOW - timedelta(minutes=5)}
    with engine.connect() as conn:
        with pytest.raises(InputError) as refused:
            run_request.build_request(conn, "win_loss", tenant.tenant_id, **ends, now=NOW)
        so_far = run_request.build_request(conn, "win_loss", tenant.tenant_id, **ends, now=NOW, so_far=True)
        final = run_request.build_request(conn, "win_loss", tenant.tenant_id, **ends, now=ends["period_end"] + CRM)
    assert str(refused.value) == (
        "period end 2026-03-04T15:25:00+00:00 is less than 10 minutes before now (2026-03-04T15:30:00+00:00): the "
        "CRM may still be writing rows dated before it (its longest write transaction, DYNO_CRM_MAX_WRITE_SECONDS), "
        "so its numbers can still change; pass --so-far to run it so far"
    )
    assert so_far.so_far and so_far.input_params()["so_far"] is True and so_far.known_at == NOW - CRM
    assert not final.so_far and final.known_at == final.window.end  # E = K: final
    assert so_far.fingerprint() == final.fingerprint()


def test_a_given_k_before_the_end_makes_a_so_far_run_of_a_past_period(engine, tenant):
    given_k, fortnight = "2025-06-05T00:00:00Z", {"period_start": "2025-06-02", "period_end": "2025-06-16"}
    with engine.connect() as conn:
        with pytest.raises(InputError, match=r"period end 2025-06-16T00:00:00\+00:00 is after as-known-at 2025-06-05"):
            run_request.build_request(conn, "win_loss", tenant.tenant_id, **fortnight, as_known_at=given_k)
        request = run_request.build_request(
            conn, "win_loss", tenant.tenant_id, **fortnight, as_known_at=given_k, so_far=True
        )
    result = executor.execute(engine, request)
    assert result.succeeded and result.summary()["so_far"] is True
    with engine.connect() as conn:
        shown = conn.execute(
            text("SELECT so_far, known_at FROM reporting.report_run_latest WHERE run_id = :r"), {"r": result.run_id}
        ).one()
    assert shown == (True, datetime(2025, 6, 5, tzinfo=UTC))
    final = executor.execute(engine, replace(request, so_far=False, known_at=NOW))
    with engine.connect() as conn:  # a final run of the question is its answer: the view prefers it
        latest = conn.execute(
            text("SELECT run_id, so_far FROM reporting.report_run_latest WHERE input_fingerprint = :f"),
            {"f": request.fingerprint()},
        ).one()
    assert latest == (final.run_id, False)


def test_the_cli_refuses_a_period_that_ended_minutes_ago_unless_so_far(cli_env, engine, tenant):
    end = (datetime.now(UTC) - timedelta(minutes=3)).replace(microsecond=0)
    window = ("--period-start", (end - D).isoformat(), "--period-end", end.isoformat())
    ask = ("run", "win_loss", "--tenant", str(tenant.tenant_id), *window)
    before = run_count(engine)
    refused = dyno(cli_env, *ask)
    assert refused.returncode == 2 and refused.stdout == "" and run_count(engine) == before
    assert refused.stderr.startswith(f"error: period end {end.isoformat()} is less than 10 minutes before now (")
    so_far = dyno(cli_env, *ask, "--so-far")
    assert so_far.returncode == 0, so_far.stderr
    assert so_far.stdout.startswith(f"SUCCEEDED (so far)  win_loss  tenant {tenant.tenant_id}  ")
    assert " as known at " in so_far.stdout.splitlines()[0]


def test_the_demo_asks_only_for_periods_that_are_final():
    """Minutes after midnight UTC, today's periods are not final yet: the demo's history ends a day earlier."""
    from dyno_reports.devtools import demo

    created = datetime(2026, 1, 1, tzinfo=UTC)
    assert demo.history_end(created, now=datetime(2026, 3, 10, 0, 5, tzinfo=UTC)) == datetime(2026, 3, 9, tzinfo=UTC)
    assert demo.history_end(created, now=datetime(2026, 3, 10, 0, 10, tzinfo=UTC)) == datetime(2026, 3, 10, tzinfo=UTC)
