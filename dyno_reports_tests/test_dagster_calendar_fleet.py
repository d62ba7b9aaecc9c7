"""Hourly schedule ticks for 2,000 tenants in 30 time zones, two week starts and six fiscal years: real PostgreSQL
(crm.tenant holds their calendars, read by the schedules), in-process Dagster (`build_schedule_context`), a
temporary instance whose tenants are registered as `sync_tenants` registers them.

What each tenant should be asked for comes from the reference calendar (reference/calendar.py), not from the
module: every period that closed in the ticks' span, exactly once, at the first tick at or after its local
close plus the CRM's longest write (10 minutes: a period is due once its run can be final), in contiguous
batches of at most 100 tenants, far fewer runs than tenants.
"""

import random
import uuid
from collections import Counter
from datetime import UTC, datetime, timedelta

import pytest
from dagster import PartitionKeyRange, build_schedule_context, instance_for_test, partition_loading_context
from sqlalchemy import insert

from dyno_reports.dagster_defs.partitions import TENANT, report_partitions
from dyno_reports.dagster_defs.resources import ReportDatabase
from dyno_reports.dagster_defs.run_partitions import RANGE_END_TAG, RANGE_START_TAG
from dyno_reports.dagster_defs.tenants import sync_tenants
from dyno_reports.storage.tables import tenant
from dyno_reports_tests.conftest import url_string
from dyno_reports_tests.reference import calendar as ref

START = "2025-01-01"
FLEET = 2000
ZONES = (
    "UTC", "Europe/London", "Europe/Paris", "Europe/Helsinki", "Europe/Moscow", "Asia/Dubai", "Asia/Karachi",
    "Asia/Kolkata", "Asia/Kathmandu", "Asia/Dhaka", "Asia/Yangon", "Asia/Bangkok", "Asia/Shanghai", "Asia/Tokyo",
    "Australia/Adelaide", "Australia/Sydney", "Pacific/Auckland", "Pacific/Chatham", "Pacific/Tongatapu",
    "Pacific/Kiritimati", "Pacific/Pago_Pago", "Pacific/Honolulu", "America/Anchorage", "America/Los_Angeles",
    "America/Denver", "America/Chicago", "America/New_York", "America/St_Johns", "America/Sao_Paulo", "Etc/GMT+12",
)  # fmt: skip
WEEK_STARTS = (1, 7)  # Monday, Sunday
FISCAL_YEARS = ((1, "end"), (4, "start"), (7, "end"), (7, "start"), (10, "end"), (2, "end"))
HOUR = timedelta(hours=1)
CRM_MAX_WRITE = timedelta(minutes=10)  # the default of DYNO_CRM_MAX_WRITE_SECONDS (docs/definitions.md)
# Sunday- and Monday-start weeks end from Saturday 10:00 UTC (Kiritimati, +14) to Monday 12:00 UTC (-12);
# June and the quarters ending with it from 2025-06-30 10:00 to 2025-07-01 12:00 UTC.
SPANS = {
    "week": (datetime(2025, 6, 28, 6, tzinfo=UTC), datetime(2025, 6, 30, 16, tzinfo=UTC)),
    "month": (datetime(2025, 6, 30, 6, tzinfo=UTC), datetime(2025, 7, 1, 16, tzinfo=UTC)),
    "quarter": (datetime(2025, 6, 30, 6, tzinfo=UTC), datetime(2025, 7, 1, 16, tzinfo=UTC)),
}
SCHEDULES = {
    "week": "weekly_reports_schedule",
    "month": "monthly_reports_schedule",
    "quarter": "quarterly_reports_schedule",
}


def calendar_of(i: int) -> ref.RefCalendar:
    return ref.RefCalendar(ZONES[i % 30], WEEK_STARTS[(i // 30) % 2], *FISCAL_YEARS[(i // 60) % 6])


@pytest.fixture(scope="module")
def fleet(engine) -> dict[str, ref.RefCalendar]:
    """2,000 crm.tenant rows with their calendars (no CRM content: the schedules only read calendars)."""
    calendars = {str(uuid.uuid4()): calendar_of(i) for i in range(FLEET)}
    rows = [
        {
            "tenant_id": tenant_id,
            "name": f"fleet {i}",
            "time_zone": c.time_zone,
            "week_start": c.week_start,
            "fiscal_year_start_month": c.fiscal_year_start_month,
            "fiscal_year_named_by": c.fiscal_year_named_by,
        }
        for i, (tenant_id, c) in enumerate(calendars.items())
    ]
    with engine.begin() as conn:
        conn.execute(insert(tenant), rows)
    return calendars


@pytest.fixture
def url(database_url, monkeypatch) -> str:
    monkeypatch.setenv("DYNO_DAGSTER_START_DATE", START)
    monkeypatch.setenv("DYNO_DATABASE_URL", url_string(database_url))
    return url_string(database_url)


def ref_slot(cadence: str, period: ref.RefPeriod) -> str:
    """The slot naming a reference period: the Monday inside a week, a month's first day, a quarter's label."""
    if cadence == "week":
        days = (period.first_day + timedelta(days=d) for d in range(7))
        return next(day for day in days if day.isoweekday() == 1).isoformat()
    return period.label if cadence == "quarter" else period.first_day.isoformat()


def expected_closes(calendars: dict[str, ref.RefCalendar], cadence: str) -> dict[tuple[str, str], datetime]:
    """(tenant, slot) -> the close of each period of `cadence` due in the span's ticks: its end in (first - 1 h,
    last], minus the CRM's longest write."""
    first, last = (moment - CRM_MAX_WRITE for moment in SPANS[cadence])
    closes: dict[tuple[str, str], datetime] = {}
    by_calendar: dict[ref.RefCalendar, ref.RefPeriod] = {}
    for tenant_id, calendar in calendars.items():
        if calendar not in by_calendar:
            by_calendar[calendar] = ref.last_closed(calendar, cadence, last)
        period = by_calendar[calendar]
        if period.end > first - HOUR:
            closes[(tenant_id, ref_slot(cadence, period))] = period.end
    return closes


def ticks(url: str, instance, cadence: str) -> list[tuple[datetime, object]]:
    """(tick time, run request) for every hourly tick of the cadence's span, as the daemon evaluates them."""
    from dyno_reports.definitions import build_definitions

    repository = build_definitions().get_repository_def()
    schedule = repository.get_schedule_def(SCHEDULES[cadence])
    first, last = SPANS[cadence]
    asked = []
    at = first
    while at <= last:
        with build_schedule_context(  # closed at once: see test_dagster_fleet.tick
            instance=instance,
            scheduled_execution_time=at,
            repository_def=repository,
            resources={"dyno_db": ReportDatabase(database_url=url)},
        ) as context:
            asked.extend((at, request) for request in schedule.evaluate_tick(context).run_requests or [])
        at += HOUR
    return asked


def tenants_of(request, registered: list[str]) -> tuple[str, list[str]]:
    """The slot and the tenants of a request's range, in registration order (what Dagster's range spans)."""
    slot, first = request.tags[RANGE_START_TAG].split("|")
    last_slot, last = request.tags[RANGE_END_TAG].split("|")
    assert slot == last_slot == request.tags["dyno/period"]
    return slot, registered[registered.index(first) : registered.index(last) + 1]


def check_ticks(url: str, instance, calendars: dict[str, ref.RefCalendar], cadence: str) -> Counter:
    """Every expected (tenant, slot) asked exactly once, at the first tick at or after its close; nothing else.
    Returns the batch sizes."""
    registered = instance.get_dynamic_partitions(TENANT)
    expected = expected_closes(calendars, cadence)
    asked: Counter = Counter()
    sizes: Counter = Counter()
    for at, request in ticks(url, instance, cadence):
        slot, batch = tenants_of(request, registered)
        sizes[len(batch)] += 1
        assert 1 <= len(batch) <= 100 and request.run_key == f"{slot}|{batch[0]}..{batch[-1]}"
        for tenant_id in batch:
            close = expected.get((tenant_id, slot))
            assert close is not None, f"{tenant_id} {slot} asked at {at} but not due ({calendars[tenant_id]})"
            # never open, nor before the CRM's longest write has passed; within the hour after that
            assert close + CRM_MAX_WRITE <= at < close + CRM_MAX_WRITE + HOUR
            asked[(tenant_id, slot)] += 1
    assert asked == Counter(dict.fromkeys(expected, 1))
    return sizes


@pytest.mark.parametrize("cadence", ["week", "month", "quarter"])
def test_hourly_ticks_ask_each_tenants_closed_period_once_within_the_hour_in_few_batches(url, fleet, cadence):
    with instance_for_test() as instance:
        changes = sync_tenants(ReportDatabase(database_url=url).engine(), instance, at=SPANS[cadence][0])
        assert len(changes.added) == FLEET
        sizes = check_ticks(url, instance, fleet, cadence)
    runs, due = sum(sizes.values()), sum(size * n for size, n in sizes.items())
    assert due >= FLEET * (5 / 6 if cadence == "quarter" else 1) - 1  # five fiscal years of six close on July 1
    # One zone's tenants closing one slot together are contiguous: one range each (per week start too for
    # quarters, as weeks come first in the order), cut into batches of at most 100: far fewer runs than tenants.
    together = {(close, slot) for (_, slot), close in expected_closes(fleet, cadence).items()}
    assert runs <= len(together) * (2 if cadence == "quarter" else 1) + due // 100, sizes
    assert runs * 5 <= due


def test_tenants_registered_in_any_order_are_still_asked_once_each_in_more_batches(url, fleet):
    """Registrations made before the close order existed keep their places: correct, only more runs."""
    shuffled = list(fleet)
    random.Random(22).shuffle(shuffled)
    with instance_for_test() as instance:
        instance.add_dynamic_partitions(TENANT, shuffled)
        sizes = check_ticks(url, instance, fleet, "week")
        with partition_loading_context(dynamic_partitions_store=instance):  # Dagster's own reading of a range
            keys = report_partitions("week", START).get_partition_keys_in_range(
                PartitionKeyRange(f"2025-06-23|{shuffled[0]}", f"2025-06-23|{shuffled[2]}")
            )
    assert [str(k) for k in keys] == [f"2025-06-23|{t}" for t in shuffled[:3]]
    assert sum(sizes.values()) > 70
