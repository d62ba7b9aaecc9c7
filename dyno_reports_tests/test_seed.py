"""The synthetic CRM generator (touches real PostgreSQL): determinism, idempotency, contract facts, variety."""

from collections.abc import Callable
from datetime import UTC, datetime

import pytest
from sqlalchemy import Engine, create_engine, text
from sqlalchemy.engine import URL

from dyno_reports.core.errors import InputError
from dyno_reports.core.tenant_calendar import TenantCalendar
from dyno_reports.devtools import seed as seed_module
from dyno_reports.devtools import synthetic
from dyno_reports.devtools.seed import DEFAULT_END, DEFAULT_START, SeededTenant, seed
from dyno_reports.storage import migrate

SEED = 11
TENANTS = 2
DEALS = 400
CRM_TABLES = ("tenant", "principal", "pipeline", "stage", "deal", "deal_history")

# Per-deal facts over the seeded tenants, one row per deal: lag() compares each row with the previous one.
DEAL_FACTS = """
WITH h AS (
  SELECT h.*, s.kind, s.pipeline_id,
         lag(h.valid_from) OVER w AS prev_from, lag(s.kind) OVER w AS prev_kind,
         lag(h.stage_id) OVER w AS prev_stage, lag(s.pipeline_id) OVER w AS prev_pipeline,
         lag(h.owner_principal_id) OVER w AS prev_owner, lag(h.amount) OVER w AS prev_amount,
         lag(h.expected_close_date) OVER w AS prev_close, lag(h.is_deleted) OVER w AS prev_deleted,
         row_number() OVER w AS n
  FROM crm.deal_history h JOIN crm.stage s USING (tenant_id, stage_id)
  WHERE h.tenant_id = ANY(:tenants)
  WINDOW w AS (PARTITION BY h.tenant_id, h.deal_id ORDER BY h.valid_from)
)
SELECT d.deal_id,
       min(h.valid_from) FILTER (WHERE n = 1) = d.created_at AS first_row_at_created,
       count(*) FILTER (WHERE n = 1) AS first_rows,
       bool_and(prev_from IS NULL OR valid_from > prev_from) AS increasing,
       bool_or(prev_kind IN ('won', 'lost') AND kind = 'open') AS reopened,
       bool_or(prev_kind IN ('won', 'lost') AND kind IN ('won', 'lost') AND kind <> prev_kind) AS flipped,
       bool_or(is_deleted) AS deleted,
       bool_or(prev_deleted AND NOT is_deleted) AS restored,
       bool_or(is_deleted AND NOT prev_deleted AND stage_id <> prev_stage) AS deleted_changing_stage,
       bool_or(pipeline_id <> prev_pipeline) AS moved,
       bool_or(amount <> prev_amount AND stage_id = prev_stage AND owner_principal_id = prev_owner
               AND expected_close_date IS NOT DISTINCT FROM prev_close AND is_deleted = prev_deleted) AS amount_only,
       bool_or(owner_principal_id <> prev_owner AND stage_id = prev_stage) AS owner_only,
       bool_or(expected_close_date IS DISTINCT FROM prev_close AND stage_id = prev_stage
               AND amount = prev_amount) AS close_date_only,
       bool_or(expected_close_date IS NULL) AS null_close_date,
       bool_or(kind = 'open' AND prev_kind = 'open' AND pipeline_id = prev_pipeline AND stage_id <> prev_stage
               AND (SELECT p.position FROM crm.stage p WHERE p.tenant_id = h.tenant_id AND p.stage_id = prev_stage)
                   > (SELECT c.position FROM crm.stage c WHERE c.tenant_id = h.tenant_id AND c.stage_id = h.stage_id))
         AS went_back,
       bool_and(valid_from >= :start AND valid_from < :end) AS in_range,
       bool_and(amount >= 0 AND amount = round(amount, 2)) AS amounts_ok
FROM crm.deal d JOIN h USING (tenant_id, deal_id)
GROUP BY d.tenant_id, d.deal_id, d.created_at
"""


def checksums(engine: Engine, tenant_ids: list) -> dict[str, str]:
    """md5 of every CRM table's rows of these tenants, in a fixed order."""
    with engine.connect() as conn:
        return {
            table: conn.execute(
                text(
                    f"SELECT md5(coalesce(string_agg(t::text, E'\\n' ORDER BY t::text), ''))"
                    f" FROM crm.{table} t WHERE t.tenant_id = ANY(:tenants)"
                ),
                {"tenants": tenant_ids},
            ).scalar_one()
            for table in CRM_TABLES
        }


def count(engine: Engine, sql: str, **params: object) -> int:
    with engine.connect() as conn:
        return conn.execute(text(sql), params).scalar_one()


@pytest.fixture(scope="module")
def seeded(engine: Engine) -> tuple[list[SeededTenant], list[str]]:
    messages: list[str] = []
    return seed(engine, tenants=TENANTS, deals_per_tenant=DEALS, random_seed=SEED, progress=messages.append), messages


@pytest.fixture(scope="module")
def other_engine(database_factory: Callable[[str], URL]):
    """A second fresh, migrated database, to seed the same arguments again."""
    engine = create_engine(database_factory("seed_again"))
    migrate.upgrade(engine)
    yield engine
    engine.dispose()


@pytest.fixture(scope="module")
def deal_facts(engine: Engine, seeded) -> list:
    ids = [t.tenant_id for t in seeded[0]]
    with engine.connect() as conn:
        return conn.execute(text(DEAL_FACTS), {"tenants": ids, "start": DEFAULT_START, "end": DEFAULT_END}).all()


def test_creates_the_tenants_with_their_counts(engine, seeded):
    result, messages = seeded
    assert [t.created for t in result] == [True] * TENANTS
    assert [t.name for t in result] == [f"Acme 1 (seed {SEED})", f"Globex 2 (seed {SEED})"]
    assert len({t.tenant_id for t in result}) == TENANTS
    assert len(messages) == TENANTS
    for t in result:
        assert t.deals == DEALS == count(engine, "SELECT count(*) FROM crm.deal WHERE tenant_id = :t", t=t.tenant_id)
        assert t.history_rows == count(
            engine, "SELECT count(*) FROM crm.deal_history WHERE tenant_id = :t", t=t.tenant_id
        )
        assert 4 * DEALS <= t.history_rows <= 8 * DEALS
        assert 4 <= count(engine, "SELECT count(*) FROM crm.principal WHERE tenant_id = :t", t=t.tenant_id) <= 8
        assert count(engine, "SELECT count(*) FROM crm.pipeline WHERE tenant_id = :t", t=t.tenant_id) == 2


def test_tenants_get_their_calendars_the_first_one_the_default(engine, seeded):
    query = text(
        "SELECT time_zone, week_start, fiscal_year_start_month, fiscal_year_named_by FROM crm.tenant"
        " WHERE tenant_id = :t"
    )
    with engine.connect() as conn:
        rows = [tuple(conn.execute(query, {"t": t.tenant_id}).one()) for t in seeded[0]]
    assert rows == [("UTC", 1, 1, "end"), ("Australia/Sydney", 1, 7, "end")]


def test_calendars_cycle_through_zones_week_starts_and_fiscal_years():
    calendars = [synthetic.calendar_of(index) for index in range(3 + len(synthetic.MORE_CALENDARS))]
    assert calendars[0] == TenantCalendar()  # the demo's first tenant keeps the UTC periods
    assert calendars[2] == TenantCalendar("America/Los_Angeles", 7, 2, "end")
    assert len({c.time_zone for c in calendars}) == len(calendars) >= 8
    assert {"Asia/Kolkata", "Asia/Kathmandu"} <= {c.time_zone for c in calendars}
    assert {c.week_start for c in calendars} == {1, 7}
    assert {c.fiscal_year_named_by for c in calendars} == {"start", "end"}
    assert len({c.fiscal_year_start_month for c in calendars}) >= 4
    assert synthetic.calendar_of(3 + len(synthetic.MORE_CALENDARS)) == calendars[3]  # further tenants cycle


def test_stages_have_ordered_positions_and_kinds(engine, seeded):
    with engine.connect() as conn:
        rows = conn.execute(
            text(
                "SELECT p.name, array_agg(s.kind ORDER BY s.position), array_agg(s.probability ORDER BY s.position)"
                " FROM crm.stage s JOIN crm.pipeline p USING (tenant_id, pipeline_id)"
                " WHERE s.tenant_id = :t GROUP BY p.name ORDER BY p.name"
            ),
            {"t": seeded[0][0].tenant_id},
        ).all()
    assert [name for name, *_ in rows] == ["New business", "Renewals"]
    for _, kinds, probabilities in rows:
        assert kinds[-2:] == ["won", "lost"] and set(kinds[:-2]) == {"open"}
        assert probabilities[-2:] == [1, 0] and probabilities[:-2] == sorted(probabilities[:-2])


def test_is_idempotent(engine, seeded):
    before = checksums(engine, [t.tenant_id for t in seeded[0]])
    again = seed(engine, tenants=TENANTS + 1, deals_per_tenant=DEALS, random_seed=SEED)
    assert [t.created for t in again] == [False, False, True]
    assert [(t.tenant_id, t.deals, t.history_rows) for t in again[:TENANTS]] == [
        (t.tenant_id, t.deals, t.history_rows) for t in seeded[0]
    ]
    assert checksums(engine, [t.tenant_id for t in seeded[0]]) == before


def test_same_arguments_give_identical_data(engine, other_engine, seeded):
    ids = [t.tenant_id for t in seeded[0]]
    assert seed(other_engine, tenants=TENANTS, deals_per_tenant=DEALS, random_seed=SEED) == seeded[0]
    assert checksums(other_engine, ids) == checksums(engine, ids)
    # The tenant's identity depends on the seed and its index only; it now exists, so it is skipped.
    assert seed(other_engine, tenants=1, deals_per_tenant=5, random_seed=SEED)[0].tenant_id == ids[0]
    other = seed(other_engine, tenants=1, deals_per_tenant=DEALS, random_seed=SEED + 1)
    assert other[0].created and other[0].tenant_id not in ids


def test_history_keeps_the_contract(deal_facts):
    assert len(deal_facts) == TENANTS * DEALS
    for deal in deal_facts:
        assert deal.first_row_at_created and deal.first_rows == 1, deal
        assert deal.increasing and deal.in_range and deal.amounts_ok, deal
        assert not deal.deleted_changing_stage, deal


@pytest.mark.parametrize(
    "fact",
    [
        "reopened",
        "flipped",
        "deleted",
        "restored",
        "moved",
        "amount_only",
        "owner_only",
        "close_date_only",
        "null_close_date",
        "went_back",
    ],
)
def test_history_has_every_kind_of_change(deal_facts, fact):
    share = sum(bool(getattr(d, fact)) for d in deal_facts) / len(deal_facts)
    assert share >= 0.005, f"only {share:.1%} of deals {fact}"


def test_rows_reach_the_end_of_the_range(engine, seeded):
    last = count(engine, "SELECT max(valid_from) FROM crm.deal_history WHERE tenant_id = :t", t=seeded[0][0].tenant_id)
    assert (DEFAULT_END - last).days < 7


def test_skips_a_stage_sometimes(engine, seeded):
    skips = count(
        engine,
        """
        SELECT count(*) FROM (
          SELECT s.position - lag(s.position) OVER w AS step, s.kind, lag(s.kind) OVER w AS prev_kind,
                 s.pipeline_id = lag(s.pipeline_id) OVER w AS same_pipeline
          FROM crm.deal_history h JOIN crm.stage s USING (tenant_id, stage_id)
          WHERE h.tenant_id = :t
          WINDOW w AS (PARTITION BY h.deal_id ORDER BY h.valid_from)) x
        WHERE step = 2 AND kind = 'open' AND prev_kind = 'open' AND same_pipeline""",
        t=seeded[0][0].tenant_id,
    )
    assert skips > 0


def test_reports_progress_every_tenth_of_a_large_tenant(engine, monkeypatch):
    monkeypatch.setattr(seed_module, "PROGRESS_MIN_DEALS", 50)
    messages: list[str] = []
    seed(engine, tenants=1, deals_per_tenant=100, random_seed=SEED + 2, progress=messages.append)
    assert len(messages) == 10  # 9 intermediate steps and the tenant's summary
    assert messages[0].endswith("10/100 deals") and "100 deals" in messages[-1]


@pytest.mark.parametrize(
    "start, end",
    [
        (datetime(2025, 1, 1), datetime(2025, 2, 1)),
        (DEFAULT_END, DEFAULT_START),
    ],
)
def test_rejects_bad_ranges(engine, start, end):
    with pytest.raises(InputError):
        seed(engine, tenants=1, deals_per_tenant=1, random_seed=SEED + 3, start=start, end=end)


def test_seeding_zero_deals_gives_an_empty_tenant(engine):
    (tenant,) = seed(
        engine,
        tenants=1,
        deals_per_tenant=0,
        random_seed=SEED + 4,
        start=datetime(2025, 1, 1, tzinfo=UTC),
        end=datetime(2025, 1, 2, tzinfo=UTC),
    )
    assert tenant.created and tenant.deals == 0 and tenant.history_rows == 0
