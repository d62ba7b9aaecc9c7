"""Every report asset (weekly, monthly and quarterly) through Dagster for ten tenants in ten time zones with
different week starts and fiscal years: real PostgreSQL, in-process Dagster (`materialize`), a temporary instance.

Each run must record the bounds of the tenant's own period of the slot, as the reference calendar
(reference/calendar.py, written from docs/definitions.md) gives them, and facts equal to the report's reference
(dyno_reports_tests/reference) on those bounds. Each tenant's history has deals just inside and just outside
its local period boundaries, so a window read in another calendar gives other facts.
"""

from dataclasses import astuple
from datetime import UTC, date, datetime, timedelta

import pytest
from dagster import materialize
from sqlalchemy import select

from dyno_reports.dagster_defs.cadences import report_assets_by_name
from dyno_reports.storage.tables import report_run
from dyno_reports_tests.conftest import url_string
from dyno_reports_tests.reference import REFERENCES
from dyno_reports_tests.reference import calendar as ref
from dyno_reports_tests.support.dagster import instance_with_tenants, report_asset_of, report_resources
from dyno_reports_tests.support.facts import facts_by_key
from dyno_reports_tests.support.history import DEAL_IDS, PIPELINE_IDS, PRINCIPAL_IDS, TenantData, load

START = "2025-01-01"
MINUTES = timedelta(minutes=1)
CALENDARS = (
    ref.RefCalendar("UTC", 1, 1, "end"),
    ref.RefCalendar("Australia/Sydney", 7, 7, "end"),
    ref.RefCalendar("America/Los_Angeles", 1, 2, "end"),  # its week of the slot holds the end of US DST
    ref.RefCalendar("Asia/Kolkata", 6, 4, "start"),  # +05:30
    ref.RefCalendar("Asia/Kathmandu", 1, 1, "end"),  # +05:45
    ref.RefCalendar("Pacific/Chatham", 7, 10, "end"),  # +13:45
    ref.RefCalendar("America/St_Johns", 3, 1, "end"),  # -02:30
    ref.RefCalendar("Europe/London", 1, 4, "end"),  # its month of the slot holds the end of EU summer time
    ref.RefCalendar("America/Santiago", 7, 5, "start"),
    ref.RefCalendar("Pacific/Kiritimati", 2, 7, "end"),  # +14:00
)
SLOTS = {"week": "2025-10-27", "month": "2025-10-01", "quarter": "FY2026-Q2"}


def period_of(calendar: ref.RefCalendar, cadence: str) -> ref.RefPeriod:
    """The reference calendar's period of the slot: the week containing that local date, that local month,
    the fiscal quarter of that label."""
    if cadence == "quarter":
        return ref.fiscal_quarter_labelled(calendar, SLOTS[cadence])
    return ref.period(calendar, cadence, date.fromisoformat(SLOTS[cadence]))


def add_deals_around(data: TenantData, stages: list, first_deal: int, period: ref.RefPeriod) -> None:
    """Five deals whose moves sit minutes inside or outside the period's local bounds."""
    lead, proposal, won, lost = stages
    s, e, owner = period.start, period.end, PRINCIPAL_IDS[1]
    close = period.end_day - timedelta(days=1)
    deals = [
        [(s - 2880 * MINUTES, lead, 100, None, close), (s + 30 * MINUTES, proposal, 120), (e - 30 * MINUTES, won, 120)],
        [(s - 30 * MINUTES, lead, 200, None, period.first_day), (e + 30 * MINUTES, lost, 200)],
        [(s + 30 * MINUTES, lead, 300, owner, close + timedelta(days=40)), (e - 30 * MINUTES, proposal, 310, owner)],
        [(e + 30 * MINUTES, lead, 400)],
        [
            (s - 4320 * MINUTES, proposal, 500, None, close),
            (s - 30 * MINUTES, lead, 510),
            (s + 45 * MINUTES, lost, 510),
            (e - 45 * MINUTES, proposal, 520),
        ],
    ]
    for offset, rows in enumerate(deals):
        data.add_deal(DEAL_IDS[first_deal + offset], rows)


@pytest.fixture(scope="module")
def fleet(engine) -> dict[str, tuple[TenantData, ref.RefCalendar]]:
    """Ten tenants, registration order as listed, each with deals around its week, month and quarter."""
    tenants = {}
    for calendar in CALENDARS:
        data = TenantData(calendar=astuple(calendar))
        stages = data.add_pipeline(PIPELINE_IDS[0], ["open", "open", "won", "lost"])
        for i, cadence in enumerate(SLOTS):
            add_deals_around(data, stages, 5 * i, period_of(calendar, cadence))
        load(engine, data)
        tenants[str(data.tenant_id)] = (data, calendar)
    return tenants


@pytest.fixture
def url(database_url, monkeypatch) -> str:
    monkeypatch.setenv("DYNO_DAGSTER_START_DATE", START)
    monkeypatch.setenv("DYNO_DATABASE_URL", url_string(database_url))
    return url_string(database_url)


def describe(calendar: ref.RefCalendar, cadence: str, period: ref.RefPeriod) -> str:
    zone = calendar.time_zone
    if cadence == "week":
        return f"week of {period.label} ({zone})"
    if cadence == "month":
        return f"{period.label} ({zone})"
    return f"{period.label} ({period.first_day} to {period.end_day}, {zone})"


@pytest.mark.parametrize("asset_name", sorted(report_assets_by_name()))
def test_every_report_asset_records_each_tenants_own_period_and_the_reference_facts(url, engine, fleet, asset_name):
    asset = report_assets_by_name()[asset_name]
    report, cadence, slot = asset.report.report_type, asset.cadence, SLOTS[asset.cadence]
    tenants = list(fleet)
    with instance_with_tenants(*tenants) as instance:
        result = materialize(
            [report_asset_of(report, START, cadence)],
            instance=instance,
            resources=report_resources(url),
            tags={
                "dagster/asset_partition_range_start": f"{slot}|{tenants[0]}",
                "dagster/asset_partition_range_end": f"{slot}|{tenants[-1]}",
            },
        )
    assert result.success
    with engine.connect() as conn:
        headers = {
            str(h.tenant_id): h
            for h in conn.execute(select(report_run).where(report_run.c.dagster_run_id == result.run_id))
        }
    materialised = {m.partition: m.metadata for m in result.asset_materializations_for_node(asset_name)}
    assert set(headers) == set(tenants) and len(materialised) == len(tenants)
    facts_seen = 0
    for tenant_id, (data, calendar) in fleet.items():
        period, header = period_of(calendar, cadence), headers[tenant_id]
        assert header.status == "SUCCEEDED" and header.period_grain == cadence
        assert (header.period_start, header.period_end) == (period.start, period.end), calendar
        want = REFERENCES[report].expected(data, period.start, period.end, None)
        assert facts_by_key(engine, report, header.run_id) == want, calendar
        facts_seen += len(want)
        metadata = materialised[f"{slot}|{tenant_id}"]
        assert metadata["run_id"].value == str(header.run_id)
        assert metadata["period"].value == describe(calendar, cadence, period)
    assert facts_seen > 0


def test_the_tenants_span_eight_zones_and_different_week_starts_and_fiscal_years():
    assert len({c.time_zone for c in CALENDARS}) >= 8
    assert len({c.week_start for c in CALENDARS}) >= 4
    assert len({(c.fiscal_year_start_month, c.fiscal_year_named_by) for c in CALENDARS}) >= 6
    assert max(period_of(c, "quarter").end for c in CALENDARS) < datetime.now(UTC)  # every slot closed
