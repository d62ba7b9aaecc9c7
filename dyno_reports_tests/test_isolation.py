"""Tenant isolation in the database (real PostgreSQL): row-level security on every reporting table
with a tenant, the reader and writer roles, the executor as the writer, and the tenant predicate
of every report's SQL (migration 0003, docs/reliability.md)."""

import re
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import Connection, Engine, create_engine, event, select, text
from sqlalchemy.exc import DBAPIError

from dyno_reports.core.errors import ConfigError
from dyno_reports.devtools import seed
from dyno_reports.engine import executor, run_records, run_request
from dyno_reports.freshness import staleness
from dyno_reports.reports import registry
from dyno_reports.storage import drift, migrate, tables

READER, WRITER = "dyno_report_reader", "dyno_report_writer"
START, END = datetime(2025, 3, 1, tzinfo=UTC), datetime(2025, 6, 1, tzinfo=UTC)
CRM_CONTRACT = ("tenant", "principal", "pipeline", "stage", "deal", "deal_history")


@pytest.fixture(scope="module")
def tenants(engine) -> list[str]:
    return [str(t.tenant_id) for t in seed.seed(engine, tenants=2, deals_per_tenant=40, random_seed=5)]


def execute(engine: Engine, report_type: str, tenant_id: str) -> executor.RunResult:
    with engine.connect() as conn:
        request = run_request.build_request(conn, report_type, tenant_id, period_start=START, period_end=END)
    return executor.execute(engine, request)


@pytest.fixture(scope="module")
def runs(engine, tenants) -> dict[tuple[str, str], executor.RunResult]:
    """Every report for both tenants, run as the connecting user (the superuser)."""
    results = {(name, tenant): execute(engine, name, tenant) for name in registry() for tenant in tenants}
    assert all(result.succeeded for result in results.values()), results
    return results


# One backdated row per tenant: a copy of its latest row before END, a microsecond later, recorded now.
BACKDATED_COPY = text("""
INSERT INTO crm.deal_history (tenant_id, deal_id, valid_from, stage_id, owner_principal_id, amount,
                              expected_close_date, is_deleted)
SELECT tenant_id, deal_id, valid_from + interval '1 microsecond', stage_id, owner_principal_id, amount,
       expected_close_date, is_deleted
FROM crm.deal_history WHERE tenant_id = CAST(:t AS uuid) AND valid_from < :end
ORDER BY valid_from DESC, deal_id LIMIT 1
""")


@pytest.fixture(scope="module")
def stale_findings(engine, tenants, runs) -> None:
    """Rows of both tenants in the stale check's tables: a backdated row each, then a check."""
    with engine.begin() as conn:
        for tenant in tenants:
            conn.execute(BACKDATED_COPY, {"t": tenant, "end": END})
    with engine.connect() as conn:
        assert {str(run.tenant_id) for run in staleness.check(conn)} == set(tenants)


def tenant_tables(conn: Connection) -> list[str]:
    return list(
        conn.execute(
            text(
                "SELECT c.relname FROM pg_class c JOIN pg_attribute a ON a.attrelid = c.oid"
                " WHERE c.relnamespace = 'reporting'::regnamespace AND c.relkind IN ('r', 'p')"
                " AND a.attname = 'tenant_id' AND NOT a.attisdropped ORDER BY 1"
            )
        ).scalars()
    )


@contextmanager
def as_role(engine: Engine, role: str, tenant: str | None) -> Iterator[Connection]:
    """A transaction as `role` (SET LOCAL ROLE from the superuser), with dyno.tenant_id set when given; rolled back."""
    with engine.connect() as conn:
        if tenant is not None:
            conn.execute(text("SELECT set_config('dyno.tenant_id', :t, true)"), {"t": tenant})
        conn.exec_driver_sql(f"SET LOCAL ROLE {role}")
        yield conn
        conn.rollback()


def test_every_reporting_table_with_a_tenant_has_row_level_security_and_the_catalogue_none(engine):
    with engine.connect() as conn:
        found = tenant_tables(conn)
        security = dict(
            conn.execute(
                text(
                    "SELECT relname, ARRAY[relrowsecurity, relforcerowsecurity] FROM pg_class"
                    " WHERE relnamespace = 'reporting'::regnamespace AND relkind = 'r'"
                )
            ).all()
        )
        policies = set(conn.execute(text("SELECT tablename FROM pg_policies WHERE schemaname = 'reporting'")).scalars())
    checks = ["report_run_stale", "stale_scope"]  # the stale check's findings and the scopes it saw, per tenant
    assert found == sorted(["report_run", *checks, *(report.fact_table.name for report in registry().values())])
    for table in found:
        assert security[table] == [True, False], table  # enabled; not forced: the owner bypasses (reliability.md)
        assert table in policies
    assert security["report_type"] == [False, False]
    assert {t.name for t in tables.metadata.tables.values() if t.info.get("policies")} == set(found)


def test_the_roles_are_nologin_and_grantable(engine):
    with engine.connect() as conn:
        rows = dict(
            conn.execute(
                text("SELECT rolname, rolcanlogin FROM pg_roles WHERE rolname IN (:r, :w)"), {"r": READER, "w": WRITER}
            ).all()
        )
    assert rows == {READER: False, WRITER: False}


def test_the_reader_sees_only_its_tenants_rows_in_every_table(engine, tenants, runs, stale_findings):
    with engine.connect() as conn:
        names = tenant_tables(conn)
        all_tenants = {
            name: set(conn.execute(text(f"SELECT DISTINCT tenant_id::text FROM reporting.{name}")).scalars())
            for name in names
        }
    for name in names:
        assert all_tenants[name] >= set(tenants), name  # both tenants have rows: the filter is what hides one
    for tenant in tenants:
        with as_role(engine, READER, tenant) as conn:
            for name in names:
                seen = conn.execute(text(f"SELECT tenant_id::text, count(*) FROM reporting.{name} GROUP BY 1")).all()
                assert [row[0] for row in seen] == [tenant], name
                # the same holds when the reader asks for the other tenant by name
                other = next(t for t in tenants if t != tenant)
                count = conn.execute(
                    text(f"SELECT count(*) FROM reporting.{name} WHERE tenant_id = CAST(:o AS uuid)"), {"o": other}
                ).scalar_one()
                assert count == 0, name


@pytest.mark.parametrize("setting", [None, ""], ids=["unset", "empty"])
def test_no_tenant_means_no_rows_but_the_catalogue(engine, runs, stale_findings, setting):
    with as_role(engine, READER, setting) as conn:
        for name in tenant_tables(conn):
            assert conn.execute(text(f"SELECT count(*) FROM reporting.{name}")).scalar_one() == 0, name
        catalogue = set(conn.execute(select(tables.report_type.c.report_type)).scalars())
    assert catalogue == set(registry())


def test_a_setting_that_is_not_a_uuid_is_a_clear_error_for_the_tables_it_guards_only(engine, tenants, runs):
    with pytest.raises(DBAPIError, match=r"dyno\.tenant_id is not a tenant UUID: 'acme'"):  # noqa: SIM117
        with as_role(engine, READER, "acme") as conn:
            conn.execute(text("SELECT count(*) FROM reporting.report_run")).scalar_one()
    with as_role(engine, READER, "acme") as conn:  # the global catalogue is unaffected
        assert conn.execute(text("SELECT count(*) FROM reporting.report_type")).scalar_one() == len(registry())
    with engine.connect() as conn:  # and so is whoever the policies do not bind (the owner, here the superuser)
        conn.execute(text("SELECT set_config('dyno.tenant_id', 'acme', true)"))
        assert conn.execute(text("SELECT count(*) FROM reporting.report_run")).scalar_one() > 0
    with as_role(engine, READER, tenants[0].upper()) as conn:  # a UUID in capitals is a UUID
        assert conn.execute(text("SELECT count(*) FROM reporting.report_run")).scalar_one() > 0


@pytest.mark.parametrize(
    "statement",
    [
        "INSERT INTO reporting.report_type VALUES ('x', 'y')",
        "UPDATE reporting.report_run SET error_message = 'x'",
        "DELETE FROM reporting.report_win_loss_fact",
        "SELECT count(*) FROM crm.deal",
    ],
)
def test_the_reader_only_reads_reporting(engine, tenants, runs, statement):
    with pytest.raises(DBAPIError, match="permission denied"), as_role(engine, READER, tenants[0]) as conn:
        conn.exec_driver_sql(statement)


def privileges(conn: Connection, role: str, table: str) -> set[str]:
    kinds = ("SELECT", "INSERT", "UPDATE", "DELETE", "TRUNCATE", "REFERENCES", "TRIGGER")
    return {
        k
        for k in kinds
        if conn.execute(text("SELECT has_table_privilege(:r, :t, :k)"), {"r": role, "t": table, "k": k}).scalar_one()
    }


def test_the_writer_may_select_insert_and_update_reporting_and_read_the_crm_nothing_else(engine):
    with engine.connect() as conn:
        for name in tenant_tables(conn):
            assert privileges(conn, WRITER, f"reporting.{name}") == {"SELECT", "INSERT", "UPDATE"}, name
            assert privileges(conn, READER, f"reporting.{name}") == {"SELECT"}, name
        for role in (READER, WRITER):
            assert privileges(conn, role, "reporting.report_type") == {"SELECT"}
            assert privileges(conn, role, "reporting.alembic_version") == set()
        for name in CRM_CONTRACT:
            assert privileges(conn, WRITER, f"crm.{name}") == {"SELECT"}, name
            assert privileges(conn, READER, f"crm.{name}") == set(), name
        schema = "SELECT has_schema_privilege(:r, :s, :k)"
        for role, nsp, kind, expected in [
            (WRITER, "reporting", "USAGE", True),
            (WRITER, "reporting", "CREATE", False),
            (WRITER, "crm", "USAGE", True),
            (WRITER, "crm", "CREATE", False),
            (READER, "reporting", "USAGE", True),
            (READER, "reporting", "CREATE", False),
            (READER, "crm", "USAGE", False),
        ]:
            assert conn.execute(text(schema), {"r": role, "s": nsp, "k": kind}).scalar_one() is expected
        prune = "reporting.prune_report_runs(integer, boolean, uuid, text)"
        assert not conn.execute(
            text("SELECT has_function_privilege(:w, :f, 'EXECUTE')"), {"w": WRITER, "f": prune}
        ).scalar_one()


def test_the_writer_cannot_write_or_see_another_tenants_rows(engine, tenants, runs):
    mine, other = tenants
    theirs = runs[("win_loss", other)]
    header = run_records.header_values(theirs.request, uuid.uuid4(), "FAILED") | {"error_message": "forged"}
    with pytest.raises(DBAPIError, match="row-level security"), as_role(engine, WRITER, mine) as conn:
        conn.execute(tables.report_run.insert().values(**header))
    with as_role(engine, WRITER, mine) as conn:
        changed = conn.execute(
            tables.report_run.update().where(tables.report_run.c.run_id == theirs.run_id).values(error_message="x")
        ).rowcount
        assert changed == 0  # invisible, so untouched
    with pytest.raises(DBAPIError, match="row-level security"), as_role(engine, WRITER, mine) as conn:
        conn.exec_driver_sql(
            "INSERT INTO reporting.report_win_loss_fact SELECT * FROM reporting.report_win_loss_fact LIMIT 0"
        )  # nothing to insert is fine; now a row that names the other tenant:
        conn.execute(
            text(
                "INSERT INTO reporting.report_win_loss_fact (run_id, tenant_id, pipeline_id, principal_id, won_count,"
                " lost_count, won_amount, lost_amount) VALUES (:r, CAST(:t AS uuid), gen_random_uuid(),"
                " gen_random_uuid(), 1, 0, 1, 0)"
            ),
            {"r": theirs.run_id, "t": other},
        )


def fact_rows(engine: Engine, report_type: str, run_id: uuid.UUID) -> list[tuple[Any, ...]]:
    report = registry()[report_type]
    table = report.fact_table
    with engine.connect() as conn:
        rows = conn.execute(
            select(table.c.tenant_id, *(table.c[c] for c in report.fact_columns))
            .where(table.c.run_id == run_id)
            .order_by(*(table.c[c] for c in report.dimensions))
        ).all()
    return [tuple(row) for row in rows]


def test_the_executor_as_the_writer_gives_the_same_facts(engine, tenants, runs, monkeypatch):
    monkeypatch.setenv("DYNO_EXECUTOR_ROLE", WRITER)
    statements: list[str] = []

    def seen(_conn, _cursor, statement, *_args):
        statements.append(statement)

    event.listen(engine, "before_cursor_execute", seen)
    try:
        for name in registry():
            for tenant in tenants:
                as_writer = execute(engine, name, tenant)
                assert as_writer.succeeded, as_writer.error_message
                assert as_writer.headline == runs[(name, tenant)].headline
                expected = fact_rows(engine, name, runs[(name, tenant)].run_id)
                assert expected and fact_rows(engine, name, as_writer.run_id) == expected, name
    finally:
        event.remove(engine, "before_cursor_execute", seen)
    # the role is switched by set_config('role', ..., true) in the run's settings statement (= SET LOCAL ROLE)
    assert sum("set_config('role'" in s for s in statements) == len(registry()) * len(tenants)


def test_a_failure_as_the_writer_is_recorded_as_the_writer(engine, tenants, monkeypatch):
    monkeypatch.setenv("DYNO_EXECUTOR_ROLE", WRITER)
    with engine.connect() as conn:
        request = run_request.build_request(conn, "win_loss", tenants[0], period_start=START, period_end=END)
    run_id = uuid.uuid4()
    run_records.record_failure(engine, request, run_id, "boom")
    with engine.connect() as conn:
        row = conn.execute(select(tables.report_run).where(tables.report_run.c.run_id == run_id)).mappings().one()
    assert (row["status"], row["error_message"], str(row["tenant_id"])) == ("FAILED", "boom", tenants[0])


@pytest.mark.parametrize("role", ["writer; DROP TABLE x", "1writer", "a" * 64, 'dyno"writer'])
def test_a_malformed_executor_role_is_refused_before_anything_is_written(engine, tenants, monkeypatch, role):
    monkeypatch.setenv("DYNO_EXECUTOR_ROLE", role)
    with engine.connect() as conn:
        before = conn.execute(text("SELECT count(*) FROM reporting.report_run")).scalar_one()
        request = run_request.build_request(conn, "win_loss", tenants[0], period_start=START, period_end=END)
    with pytest.raises(ConfigError, match="DYNO_EXECUTOR_ROLE"):
        executor.execute(engine, request)
    with engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM reporting.report_run")).scalar_one() == before


# --- every report's SQL binds every crm table it reads to :tenant_id ---------------------------


def unbound_crm_scans(conn: Connection, sql: str, params: dict[str, Any], tenant: str) -> list[str]:
    """The scans of crm tables in the plan of `sql` that are not restricted to `tenant` (a plan with
    no crm scan at all fails: the check would be vacuous).

    PostgreSQL's own plan is the parser: every scan node of a crm table (with the
    bitmap index scans under it) must carry `<alias>.tenant_id = '<tenant>'::uuid`
    in its Filter, Index Cond or Recheck Cond. A predicate the planner derived
    (t.tenant_id = h.tenant_id with h bound) counts, as it binds the rows as well;
    one under an OR that can be true without it does not appear, so it is caught.
    """
    plan = conn.execute(text("EXPLAIN (VERBOSE, FORMAT JSON) " + sql), params).scalar_one()
    bound = re.compile(rf"(\w+\.)?tenant_id = '{re.escape(tenant)}'::uuid")
    unbound: list[str] = []
    scanned: list[str] = []

    def conditions(node: dict[str, Any]) -> list[str]:
        own = [str(node[key]) for key in ("Filter", "Index Cond", "Recheck Cond") if key in node]
        below = [c for c in node.get("Plans", ()) if c["Node Type"] in ("Bitmap Index Scan", "BitmapAnd")]
        return own + [cond for child in below for cond in conditions(child)]

    def is_bound(node: dict[str, Any]) -> bool:
        return any(bound.fullmatch(term) for cond in conditions(node) for term in conjuncts(cond))

    def walk(node: dict[str, Any]) -> None:
        if node.get("Schema") == "crm" and "Relation Name" in node:
            scanned.append(node["Relation Name"])
        if node.get("Schema") == "crm" and "Relation Name" in node and not is_bound(node):
            unbound.append(f"{node['Node Type']} on crm.{node['Relation Name']} {node.get('Alias', '')}")
        for child in node.get("Plans", ()):
            walk(child)

    walk(plan[0]["Plan"])
    assert scanned, "no crm table in the plan"
    return unbound


def conjuncts(condition: str) -> list[str]:
    """The terms of a plan condition's top-level AND, each without its enclosing parentheses."""
    condition = _unwrap(condition.strip())
    terms, depth, start, quoted = [], 0, 0, False
    for i, char in enumerate(condition):
        if char == "'":
            quoted = not quoted
        elif not quoted and char in "()":
            depth += 1 if char == "(" else -1
        elif not quoted and depth == 0 and condition.startswith(" AND ", i):
            terms.append(condition[start:i])
            start = i + len(" AND ")
    terms.append(condition[start:])
    return [_unwrap(term.strip()) for term in terms]


def _unwrap(term: str) -> str:
    """`term` without parentheses that enclose all of it."""
    while term.startswith("(") and term.endswith(")"):
        depth = 0
        for i, char in enumerate(term):
            depth += {"(": 1, ")": -1}.get(char, 0)
            if depth == 0 and i < len(term) - 1:
                return term
        term = term[1:-1]
    return term


def request_for(conn: Connection, report_type: str, tenant: str) -> run_request.RunRequest:
    return run_request.build_request(conn, report_type, tenant, period_start=START, period_end=END)


@pytest.mark.parametrize("report_type", sorted(registry()))
def test_every_crm_table_a_report_reads_is_bound_to_the_tenant(engine, tenants, report_type):
    with engine.connect() as conn:
        request = request_for(conn, report_type, tenants[0])
        assert unbound_crm_scans(conn, request.report.sql, request.sql_params(), tenants[0]) == []


# Mutations of real report SQL that lose the tenant predicate one way or another.
MUTATIONS = [
    ("pipeline_overview", "WHERE h.tenant_id = :tenant_id\n      AND", "WHERE"),
    ("pipeline_overview", "WHERE s.tenant_id = :tenant_id\n      AND", "WHERE"),
    ("win_loss", "d.tenant_id = :tenant_id AND ", ""),
    ("stage_conversion", "at_end.tenant_id = :tenant_id", "at_end.tenant_id = at_end.tenant_id"),
    ("deal_velocity", "h.tenant_id = :tenant_id", "(h.tenant_id = :tenant_id OR h.amount >= 0)"),
]


@pytest.mark.parametrize(("report_type", "old", "new"), MUTATIONS)
def test_the_tenant_predicate_check_catches_a_report_that_lost_it(engine, tenants, report_type, old, new):
    with engine.connect() as conn:
        request = request_for(conn, report_type, tenants[0])
        assert old in request.report.sql, "the mutation no longer applies: update MUTATIONS"
        mutated = request.report.sql.replace(old, new, 1)
        assert unbound_crm_scans(conn, mutated, request.sql_params(), tenants[0]) != []


# --- migrations and drift ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (
            "DROP POLICY tenant_isolation ON reporting.report_win_loss_fact",
            "add_policy reporting.report_win_loss_fact: tenant_isolation",
        ),
        (
            "ALTER TABLE reporting.report_run DISABLE ROW LEVEL SECURITY",
            "enable_row_level_security reporting.report_run",
        ),
        (
            "ALTER TABLE reporting.report_type ENABLE ROW LEVEL SECURITY",
            "disable_row_level_security reporting.report_type",
        ),
        (
            "CREATE POLICY everything ON reporting.report_run USING (true)",
            "remove_policy reporting.report_run: everything",
        ),
        (
            "ALTER TABLE reporting.report_run DISABLE TRIGGER report_run_is_kept",
            "enable_trigger reporting.report_run: report_run_is_kept",
        ),
        (
            "DROP TRIGGER facts_are_immutable ON reporting.report_deal_velocity_fact",
            "add_trigger reporting.report_deal_velocity_fact: facts_are_immutable",
        ),
    ],
)
def test_db_check_sees_row_level_security_and_guards_changed_out_of_band(engine, change, expected):
    with engine.connect() as conn:
        assert drift.differences(conn) == []
        conn.exec_driver_sql(change)
        found = [str(d) for d in drift.differences(conn)]
        conn.rollback()
    assert len(found) == 1 and found[0].startswith(expected), found


def test_downgrade_drops_policies_and_grants_and_keeps_roles_other_databases_use(database_factory, engine):
    other = create_engine(database_factory("isolation_downgrade"))
    try:
        migrate.upgrade(other)
        migrate.downgrade(other, "0002")
        with other.connect() as conn:
            assert (
                conn.execute(text("SELECT count(*) FROM pg_policies WHERE schemaname = 'reporting'")).scalar_one() == 0
            )
            assert tenant_tables(conn)  # the tables stay
            for name in tenant_tables(conn):
                assert privileges(conn, WRITER, f"reporting.{name}") == set()
                assert privileges(conn, READER, f"reporting.{name}") == set()
            # this module's database still grants them: they stay, for it
            roles = conn.execute(
                text("SELECT count(*) FROM pg_roles WHERE rolname IN (:r, :w)"), {"r": READER, "w": WRITER}
            ).scalar_one()
            assert roles == 2
        assert migrate.upgrade(other) == migrate.head_revision()
        assert drift.check(other) == []
    finally:
        other.dispose()
