"""Dagster partitions read in each tenant's calendar: real PostgreSQL (crm.tenant with calendars), in-process Dagster
(`materialize`, `build_sensor_context`), temporary instances.

A weekly key is the tenant's week containing that local date, a quarterly key its fiscal quarter of that label;
a partition is never run before its period closed in the tenant's zone (refused, nothing written, and nothing
written by the reconciliation either); runs made outside Dagster and downstream inputs resolve keys the same way;
a default-calendar tenant's partition is exactly the UTC window of before.
"""

from datetime import UTC, date, datetime, time, timedelta

import pandas as pd
import pytest
from dagster import (
    AssetIn,
    AssetKey,
    AssetRecordsFilter,
    DagsterEventType,
    SensorResult,
    asset,
    build_sensor_context,
    materialize,
)
from sqlalchemy import select, update

from dyno_reports.dagster_defs.cli_runs import cli_runs_sensor
from dyno_reports.dagster_defs.partitions import period_partitions, report_partitions
from dyno_reports.dagster_defs.resources import ReportDatabase
from dyno_reports.dagster_defs.slots import DEFAULT_CALENDAR, target_of
from dyno_reports.engine import executor, run_request
from dyno_reports.storage.tables import report_run, tenant
from dyno_reports_tests.conftest import url_string
from dyno_reports_tests.reference import calendar as ref
from dyno_reports_tests.support.dagster import instance_with_tenants, report_asset_of, report_resources
from dyno_reports_tests.support.history import DEAL_IDS, PIPELINE_IDS, TenantData, load
from dyno_reports_tests.support.reaper import fail_and_reap, sweep_once

START = "2025-01-01"
H = timedelta(hours=1)
SYDNEY_SUNDAY = ref.RefCalendar("Australia/Sydney", 7, 1, "end")
NEW_YORK_FEBRUARY = ref.RefCalendar("America/New_York", 1, 2, "end")
LOS_ANGELES = ref.RefCalendar("America/Los_Angeles", 1, 1, "end")
KIRITIMATI_TUESDAY = ref.RefCalendar("Pacific/Kiritimati", 2, 1, "end")  # +14: the earliest week close of a slot
PAGO_PAGO = ref.RefCalendar("Pacific/Pago_Pago", 1, 1, "end")  # -11


def tenant_in(engine, calendar: ref.RefCalendar, moments: list[datetime] = ()) -> str:
    """A tenant with `calendar` and, per moment, a deal entering its lead stage then and won an hour later."""
    data = TenantData()
    lead, _proposal, won, _lost = data.add_pipeline(PIPELINE_IDS[0], ["open", "open", "won", "lost"])
    for deal_id, moment in zip(DEAL_IDS, moments, strict=False):
        data.add_deal(deal_id, [(moment, lead, 100), (moment + H, won, 100)])
    load(engine, data)
    with engine.begin() as conn:
        conn.execute(
            update(tenant)
            .where(tenant.c.tenant_id == data.tenant_id)
            .values(
                time_zone=calendar.time_zone,
                week_start=calendar.week_start,
                fiscal_year_start_month=calendar.fiscal_year_start_month,
                fiscal_year_named_by=calendar.fiscal_year_named_by,
            )
        )
    return str(data.tenant_id)


@pytest.fixture
def url(database_url, monkeypatch) -> str:
    monkeypatch.setenv("DYNO_DAGSTER_START_DATE", START)
    monkeypatch.setenv("DYNO_DATABASE_URL", url_string(database_url))
    return url_string(database_url)


def headers_of(engine, dagster_run_id: str) -> list:
    with engine.connect() as conn:
        return conn.execute(select(report_run).where(report_run.c.dagster_run_id == dagster_run_id)).all()


def run_partitions(url, instance, report: str, keys: tuple[str, str], cadence: str | None = None):
    """One Dagster run of `report`'s asset over the range keys[0]..keys[1] (one key when they are equal)."""
    tags = {"dagster/asset_partition_range_start": keys[0], "dagster/asset_partition_range_end": keys[1]}
    return materialize(
        [report_asset_of(report, START, cadence)],
        instance=instance,
        resources=report_resources(url),
        tags=tags,
        raise_on_error=False,
    )


def failure_of(result) -> str:
    (failure,) = [e for e in result.all_events if e.event_type == DagsterEventType.STEP_FAILURE]
    return failure.step_failure_data.user_failure_data.description


def test_a_weekly_key_of_a_sunday_start_tenant_is_its_local_week(url, engine):
    local_sunday_morning = datetime(2025, 5, 31, 23, tzinfo=UTC)  # 09:00 Sunday June 1 in Sydney
    tenant_id = tenant_in(engine, SYDNEY_SUNDAY, [local_sunday_morning])
    week = ref.week(SYDNEY_SUNDAY, date(2025, 6, 2))
    assert (week.first_day, week.end_day) == (date(2025, 6, 1), date(2025, 6, 8))
    key = f"2025-06-02|{tenant_id}"
    with instance_with_tenants(tenant_id) as instance:
        result = run_partitions(url, instance, "pipeline_overview", (key, key))
    assert result.success
    (header,) = headers_of(engine, result.run_id)
    assert (
        (header.period_start, header.period_end)
        == (week.start, week.end)
        == (
            datetime(2025, 5, 31, 14, tzinfo=UTC),
            datetime(2025, 6, 7, 14, tzinfo=UTC),
        )
    )
    (mat,) = result.asset_materializations_for_node("pipeline_overview")
    assert mat.partition == key and mat.metadata["run_id"].value == str(header.run_id)
    assert mat.metadata["period"].value == "week of 2025-06-01 (Australia/Sydney)"
    assert mat.metadata["period_utc"].value == "[2025-05-31T14:00:00+00:00, 2025-06-07T14:00:00+00:00)"
    assert mat.metadata["entered_count"].value == 1  # Sunday morning local: in this week, not in a UTC one


def test_a_quarterly_key_of_a_february_start_tenant_is_its_fiscal_quarter(url, engine):
    last_evening = datetime(2025, 5, 1, 1, tzinfo=UTC)  # 21:00 on April 30 in New York, won at 22:00
    tenant_id = tenant_in(engine, NEW_YORK_FEBRUARY, [last_evening])
    quarter = ref.fiscal_quarter_labelled(NEW_YORK_FEBRUARY, "FY2026-Q1")
    assert (quarter.first_day, quarter.end_day) == (date(2025, 2, 1), date(2025, 5, 1))
    key = f"FY2026-Q1|{tenant_id}"
    with instance_with_tenants(tenant_id) as instance:
        result = run_partitions(url, instance, "win_loss", (key, key), "quarter")
    assert result.success
    (header,) = headers_of(engine, result.run_id)
    assert header.report_type == "win_loss" and (header.period_start, header.period_end) == (quarter.start, quarter.end)
    (mat,) = result.asset_materializations_for_node("win_loss_quarterly")
    assert mat.partition == key
    assert mat.metadata["period"].value == "FY2026-Q1 (2025-02-01 to 2025-05-01, America/New_York)"
    assert mat.metadata["won_count"].value == 1  # won on the quarter's last local evening


def current_monday(now: datetime) -> date:
    return now.date() - timedelta(days=now.weekday())


def test_a_run_asked_too_early_is_refused_and_nothing_is_written(url, engine):
    """The current UTC week is listed (end_offset=1), but a Los Angeles week of it closes days later."""
    tenant_id = tenant_in(engine, LOS_ANGELES)
    key = f"{current_monday(datetime.now(UTC))}|{tenant_id}"
    with instance_with_tenants(tenant_id) as instance:
        result = run_partitions(url, instance, "pipeline_overview", (key, key))
        assert not result.success
        message = failure_of(result)
        assert message.startswith("pipeline_overview: too early: the week of ")
        assert f"(America/Los_Angeles) of tenant {tenant_id} has not closed" in message
        assert "nothing was run or recorded for it" in message
        assert headers_of(engine, result.run_id) == []
        assert not result.asset_materializations_for_node("pipeline_overview")
        sweep_once(instance, url)  # the reconciliation: the run failed, its partition was never due
        assert headers_of(engine, result.run_id) == []


def mixed_slot(now: datetime) -> str:
    """A weekly slot due at `now` (and for minutes after) for KIRITIMATI_TUESDAY, open for PAGO_PAGO: the
    current UTC week once the Tuesday-start week containing its Monday closed at Kiritimati (Monday 10:00 UTC)
    and the CRM's longest write (10 minutes) passed, else the week before, whose Pago Pago week closes on Monday
    at 11:00 UTC."""
    monday = current_monday(now)
    closed = datetime.combine(monday, time(10, 15), UTC) <= now
    return (monday if closed else monday - timedelta(weeks=1)).isoformat()


def test_in_a_batch_the_too_early_tenant_is_refused_alone_and_nothing_is_recorded_for_it(url, engine):
    early_close, late_close = tenant_in(engine, KIRITIMATI_TUESDAY), tenant_in(engine, PAGO_PAGO)
    slot = mixed_slot(datetime.now(UTC))
    with instance_with_tenants(early_close, late_close) as instance:
        result = run_partitions(url, instance, "pipeline_overview", (f"{slot}|{early_close}", f"{slot}|{late_close}"))
        assert not result.success
        assert "1 of 2 partition(s) failed" in failure_of(result) and "(Pacific/Pago_Pago)" in failure_of(result)
        (header,) = headers_of(engine, result.run_id)
        assert str(header.tenant_id) == early_close and header.status == "SUCCEEDED"
        week = ref.week(KIRITIMATI_TUESDAY, date.fromisoformat(slot))
        assert (header.period_start, header.period_end) == (week.start, week.end)
        (mat,) = instance.fetch_materializations(
            AssetRecordsFilter(AssetKey("pipeline_overview"), [f"{slot}|{early_close}"]), limit=5
        ).records  # reported by the failure hook: the step failed on the other tenant
        assert mat.asset_materialization.metadata["run_id"].value == str(header.run_id)
        sweep_once(instance, url)
        assert [str(h.tenant_id) for h in headers_of(engine, result.run_id)] == [early_close]


def test_the_reconciliation_fails_only_partitions_that_were_due_when_the_run_was_created(url, engine):
    """A run whose worker died before it started: a FAILED header for a closed period, none for an open one."""
    from dyno_reports.definitions import build_definitions

    tenant_id = tenant_in(engine, LOS_ANGELES)
    job = build_definitions().resolve_job_def("weekly_reports")
    this_week = current_monday(datetime.now(UTC))
    with instance_with_tenants(tenant_id) as instance:
        for monday, headers in ((this_week, 0), (this_week - timedelta(weeks=2), 1)):
            tags = {"dagster/partition": f"{monday}|{tenant_id}"}
            run = instance.create_run_for_job(job, tags=tags, asset_selection={AssetKey("pipeline_overview")})
            fail_and_reap(instance, run, url)
            found = headers_of(engine, run.run_id)
            assert len(found) == headers and all(h.status == "FAILED" for h in found)
    week = ref.week(LOS_ANGELES, this_week - timedelta(weeks=2))
    assert (found[0].period_start, found[0].period_end) == (week.start, week.end)


def test_a_default_calendar_tenant_resolves_every_key_to_the_utc_window_of_before():
    for cadence, step in (("week", timedelta(weeks=1)), ("month", None)):
        period_def = period_partitions(cadence, START)
        keys = period_def.get_partition_keys(current_time=datetime(2027, 1, 1, tzinfo=UTC))
        assert len(keys) >= (104 if step else 24)
        for key in keys:
            window = period_def.time_window_for_partition_key(key)
            target = target_of(cadence, f"{key}|t", DEFAULT_CALENDAR)
            assert (target.period_start, target.period_end) == (window.start, window.end), key
    assert target_of("week", "2025-06-02|t", DEFAULT_CALENDAR).described() == "week of 2025-06-02 (UTC)"


def cli_run(engine, report: str, tenant_id: str, period: ref.RefPeriod):
    with engine.connect() as conn:
        request = run_request.build_request(conn, report, tenant_id, period_start=period.start, period_end=period.end)
    result = executor.execute(engine, request)
    assert result.succeeded
    return str(result.run_id)


def test_cli_runs_of_a_tenants_own_periods_are_reported_as_their_partitions(url, engine):
    sydney = tenant_in(engine, SYDNEY_SUNDAY)
    new_york = tenant_in(engine, NEW_YORK_FEBRUARY)
    week = ref.week(SYDNEY_SUNDAY, date(2025, 6, 9))
    quarter = ref.fiscal_quarter_labelled(NEW_YORK_FEBRUARY, "FY2026-Q2")
    utc_week = ref.week(ref.RefCalendar("UTC", 1, 1, "end"), date(2025, 6, 9))
    with instance_with_tenants(sydney, new_york) as instance:
        resources = {"dyno_db": ReportDatabase(database_url=url)}
        with build_sensor_context(instance=instance, resources=resources) as context:
            cli_runs_sensor(START, settle=timedelta(0))(context)  # past the runs of earlier tests
            cursor = context.cursor
        runs = {
            ("pipeline_overview", f"2025-06-09|{sydney}"): cli_run(engine, "pipeline_overview", sydney, week),
            ("win_loss_quarterly", f"FY2026-Q2|{new_york}"): cli_run(engine, "win_loss", new_york, quarter),
        }
        cli_run(engine, "pipeline_overview", sydney, utc_week)  # a UTC week is no week of this tenant's
        with build_sensor_context(instance=instance, resources=resources, cursor=cursor) as context:
            result = cli_runs_sensor(START, settle=timedelta(0))(context)
    assert isinstance(result, SensorResult)
    reported = {(e.asset_key.to_user_string(), e.partition): e.metadata for e in result.asset_events}
    assert {k: m["run_id"].value for k, m in reported.items()} == runs
    assert reported[("win_loss_quarterly", f"FY2026-Q2|{new_york}")]["period"].value == (
        "FY2026-Q2 (2025-05-01 to 2025-08-01, America/New_York)"
    )
    assert "1 not one partition of the report's asset" in result.skip_reason.skip_message


def test_a_downstream_asset_reads_the_run_of_the_tenants_own_week(url, engine):
    tenant_id = tenant_in(engine, SYDNEY_SUNDAY, [datetime(2025, 6, 8, 1, tzinfo=UTC)])  # Sunday 11:00 local
    run_id = cli_run(engine, "pipeline_overview", tenant_id, ref.week(SYDNEY_SUNDAY, date(2025, 6, 9)))
    seen: list[pd.DataFrame] = []

    @asset(partitions_def=report_partitions("week", START), ins={"facts": AssetIn(key=AssetKey("pipeline_overview"))})
    def summary(facts: pd.DataFrame) -> None:
        seen.append(facts)

    with instance_with_tenants(tenant_id) as instance:
        result = materialize(
            [report_asset_of("pipeline_overview", START), summary],
            selection=[summary.key],
            partition_key=f"2025-06-09|{tenant_id}",
            instance=instance,
            resources=report_resources(url),
        )
    assert result.success  # found by the fingerprint of the tenant's local week (in UTC: no such run, a Failure)
    (frame,) = seen
    assert int(frame["entered_count"].sum()) == 1 and len(frame) == 2  # its two open stages
    (loaded,) = [e for e in result.all_events if e.event_type == DagsterEventType.LOADED_INPUT]
    assert loaded.event_specific_data.metadata["report_runs"].value == {f"2025-06-09|{tenant_id}": run_id}
