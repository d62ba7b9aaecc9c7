"""The Dagster side of "as known at": a period is due once its end is the CRM's longest write in the past
(schedules and the asset's own check: no DB), and the run config's `as_known_at` reaches the partition's run
(real PostgreSQL, in-process `materialize`).
"""

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from dagster import materialize

from dyno_reports.dagster_defs.run_config import known_at_of, options_of, report_config_class
from dyno_reports.dagster_defs.schedules import due_slots
from dyno_reports.dagster_defs.slots import DEFAULT_CALENDAR, target_of
from dyno_reports.reports import registry
from dyno_reports_tests.support.dagster import instance_with_tenants, report_asset_of, report_resources
from dyno_reports_tests.support.facts import facts_by_key
from dyno_reports_tests.support.history import DEAL_IDS, PIPELINE_IDS, STAGE_IDS, T0, Row, TenantData, load
from dyno_reports_tests.test_dagster_assets import headers_of

D = timedelta(days=1)
TENANT = "00000000-0000-0000-0000-000000000001"
CLOSE = datetime(2025, 6, 9, tzinfo=UTC)  # the UTC week of 2025-06-02 ends


@pytest.mark.parametrize(
    ("at", "due"),
    [
        (CLOSE, False),  # closed this instant: rows dated before it may still be written
        (CLOSE + timedelta(minutes=9), False),
        (CLOSE + timedelta(minutes=10), True),
        (CLOSE - timedelta(minutes=1), False),
    ],
)
def test_a_partition_is_due_once_its_end_is_the_crms_longest_write_in_the_past(at, due):
    target = target_of("week", f"2025-06-02|{TENANT}", DEFAULT_CALENDAR)
    assert target.due_at(at) is due
    if not due:
        reason = target.too_early(at)
        assert reason.startswith(f"too early: the week of 2025-06-02 (UTC) of tenant {TENANT} ")
        assert reason.endswith("; nothing was run or recorded for it")
        if at >= CLOSE:
            assert "less than the CRM's longest write (DYNO_CRM_MAX_WRITE_SECONDS) before now" in reason
            assert "it runs from 2025-06-09T00:10:00+00:00" in reason
        else:
            assert "has not closed; it closes at 2025-06-09 00:00 UTC" in reason


def test_a_tick_asks_for_a_period_the_first_hour_after_its_end_and_the_crms_longest_write():
    ticks = {hour: due_slots("week", [TENANT], {}, CLOSE + timedelta(hours=hour)) for hour in (0, 1, 2)}
    assert ticks == {0: {}, 1: {"2025-06-02": {TENANT}}, 2: {}}


def test_with_no_write_margin_a_tick_asks_for_a_period_at_its_close(monkeypatch):
    monkeypatch.setenv("DYNO_CRM_MAX_WRITE_SECONDS", "0")
    assert due_slots("week", [TENANT], {}, CLOSE) == {"2025-06-02": {TENANT}}
    assert target_of("week", f"2025-06-02|{TENANT}", DEFAULT_CALENDAR).due_at(CLOSE)


def test_as_known_at_is_a_run_config_field_beside_the_options_and_not_an_option():
    config_class = report_config_class(registry()["pipeline_overview"])
    assert config_class.model_fields["as_known_at"].default is None
    given = {"include_closed": True, "as_known_at": "2025-06-20T00:00:00Z"}
    assert options_of(given) == {"include_closed": True}
    assert known_at_of(given) == "2025-06-20T00:00:00Z" and known_at_of({}) is None


@pytest.fixture(scope="module")
def tenant(engine) -> str:
    """A deal in lead since before June; its move to proposal on T0 + 1 d was recorded late, on T0 + 20 d."""
    data = TenantData()
    lead, proposal, _won, _lost = data.add_pipeline(PIPELINE_IDS[0], ["open", "open", "won", "lost"])
    data.add_deal(DEAL_IDS[0], [(T0 - 3 * D, lead, 100)])
    late = Row(DEAL_IDS[0], T0 + D, proposal.stage_id, data.principals[0], Decimal(100), recorded_at=T0 + 20 * D)
    data.rows.append(late)
    load(engine, data)
    return str(data.tenant_id)


def test_the_run_configs_as_known_at_reaches_the_partitions_run(database_url, engine, tenant, monkeypatch):
    url = database_url.render_as_string(hide_password=False)
    monkeypatch.setenv("DYNO_DATABASE_URL", url)
    asset = report_asset_of("pipeline_overview")
    in_lead = {}
    with instance_with_tenants(tenant) as instance:
        for known_at in ("2025-06-18T00:00:00Z", None):
            result = materialize(
                [asset],
                partition_key=f"2025-06-09|{tenant}",
                instance=instance,
                resources=report_resources(url),
                run_config={"ops": {"pipeline_overview": {"config": {"as_known_at": known_at}}}},
            )
            assert result.success
            (header,) = headers_of(engine, result.run_id)
            facts = facts_by_key(engine, "pipeline_overview", header.run_id)
            in_lead[known_at] = facts[(PIPELINE_IDS[0], STAGE_IDS[0])]["deal_count"]
            assert header.known_at == (datetime(2025, 6, 18, tzinfo=UTC) if known_at else header.known_at)
            assert header.input_params["options"] == {"include_closed": False, "pipeline_ids": None}
    assert header.known_at > datetime.now(UTC) - timedelta(hours=1)  # the default: the run's start - 10 minutes
    assert in_lead == {"2025-06-18T00:00:00Z": 1, None: 0}  # the late move to proposal, known only since June 22
