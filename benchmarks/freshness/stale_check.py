"""The stale check's cost: a fleet of tenants with millions of history rows and current runs, then N new rows
(some backdated) and `staleness.check` timed (median of several). Goal: <= 100 ms at 1,000 new rows over 200
tenants and 5M rows, linear in new rows, not in history.

Side by side, alternating, each after its own N new rows: `before`, the check comparing every SUCCEEDED run's
scope digest and version at each check (FULL_SCOPE_AND_VERSION, the first design, kept here to measure it),
and `after`, the incremental comparison (only changed scopes and versions, and the runs made since).

    DYNO_DATABASE_URL=postgresql://postgres@127.0.0.1:5432/dyno_bench_stale \\
      .venv/bin/python -m benchmarks.freshness.stale_check --rows 5000000

The database of DYNO_DATABASE_URL is migrated and filled once (set-based INSERT ... SELECT generate_series);
a second --rows adds history to reach it. Every check here runs with DYNO_CRM_MAX_WRITE_SECONDS=0, so its
window holds exactly the rows inserted since the previous one (in production it also re-reads the rows
recorded in the CRM's longest write, 10 minutes, before the previous check).
"""

import argparse
import os
import statistics
import time
from contextlib import nullcontext
from typing import Any
from unittest import mock

from sqlalchemy import Engine, text

from dyno_reports.freshness import staleness
from dyno_reports.freshness import staleness_sql as sql
from dyno_reports.reports import registry
from dyno_reports.reports.scope_digest import SCOPE_DIGEST
from dyno_reports.storage import db, migrate

TENANT = "CAST(md5('stale-bench-tenant-' || t) AS uuid)"
TENANTS = "generate_series(1, CAST(:tenants AS integer)) t"
FLEET = f"""
INSERT INTO crm.tenant (tenant_id, name) SELECT {TENANT}, 'bench ' || t FROM {TENANTS}
ON CONFLICT DO NOTHING;
INSERT INTO crm.principal SELECT {TENANT}, CAST(md5('p' || t) AS uuid), 'owner' FROM {TENANTS}
ON CONFLICT DO NOTHING;
INSERT INTO crm.pipeline SELECT {TENANT}, CAST(md5('pl' || t) AS uuid), 'sales' FROM {TENANTS}
ON CONFLICT DO NOTHING;
INSERT INTO crm.stage SELECT {TENANT}, CAST(md5('s' || t || '-' || s) AS uuid), CAST(md5('pl' || t) AS uuid),
  'stage ' || s, s, CASE WHEN s = 4 THEN 1 WHEN s = 5 THEN 0 ELSE s / 10.0 END,
  CASE WHEN s = 4 THEN 'won' WHEN s = 5 THEN 'lost' ELSE 'open' END
FROM {TENANTS}, generate_series(1, 5) s ON CONFLICT DO NOTHING;
"""
# Deals d of tenant t, each with 5 history rows (stage 1..5 at d days + k weeks after 2024-01-01).
HISTORY = f"""
INSERT INTO crm.deal SELECT {TENANT}, CAST(md5('d' || t || '-' || d) AS uuid), 'deal', '2024-01-01'::timestamptz
FROM {TENANTS},
  generate_series(CAST(:first_deal AS integer), CAST(:last_deal AS integer)) d;
INSERT INTO crm.deal_history (tenant_id, deal_id, valid_from, stage_id, owner_principal_id, amount, recorded_at)
SELECT {TENANT}, CAST(md5('d' || t || '-' || d) AS uuid), v, CAST(md5('s' || t || '-' || k) AS uuid),
  CAST(md5('p' || t) AS uuid), 1000, v
FROM {TENANTS},
  generate_series(CAST(:first_deal AS integer), CAST(:last_deal AS integer)) d, generate_series(1, 5) k,
  LATERAL (SELECT timestamptz '2024-01-01' + (d % 600) * interval '1 day' + k * interval '1 week' AS v) at
"""
# Per tenant and report, one final run per month of 2024-2025 (known 1 day after its end), of the current version.
RUNS = f"""
INSERT INTO reporting.report_run (run_id, tenant_id, report_type, generated_at, period_start, period_end,
  period_grain, input_params, input_fingerprint, status, known_at, report_version, scope_digest)
SELECT gen_random_uuid(), {TENANT}, v.report_type, m + interval '1 month 1 day', m, m + interval '1 month', 'month',
  '{{"options": {{}}}}', encode(sha256(convert_to(t || v.report_type || m, 'UTF8')), 'hex'), 'SUCCEEDED',
  m + interval '1 month 1 day', v.version, repeat('0', 64)
FROM {TENANTS}, unnest(CAST(:types AS text[]), CAST(:versions AS int[])) v(report_type, version),
  generate_series(timestamptz '2024-01-01', '2025-12-01', interval '1 month') m
"""
NEW_ROWS = f"""
INSERT INTO crm.deal_history (tenant_id, deal_id, valid_from, stage_id, owner_principal_id, amount)
SELECT {TENANT}, CAST(md5('d' || t || '-' || (1 + i % 50)) AS uuid),
  CASE WHEN i % 50 = 0 THEN timestamptz '2025-11-15' + i * interval '1 second' + :salt * interval '1 ms'
       ELSE now() + i * interval '1 ms' END,
  CAST(md5('s' || t || '-1') AS uuid), CAST(md5('p' || t) AS uuid), 2000
FROM generate_series(1, CAST(:n AS integer)) i, LATERAL (SELECT 1 + (i * 7919 + :salt) % :tenants AS t) pick
"""


# The first design: every SUCCEEDED header read and every scope digested at each check.
FULL_SCOPE_AND_VERSION = f"""
WITH runs AS MATERIALIZED (
  SELECT r.run_id, r.tenant_id, {sql.SELECTION} AS selection, r.scope_digest, r.report_type, r.report_version
  FROM reporting.report_run r WHERE r.status = 'SUCCEEDED'
), scopes AS (
  SELECT DISTINCT runs.tenant_id, runs.selection FROM runs
), digests AS MATERIALIZED (
  SELECT scopes.tenant_id, scopes.selection, ({sql.DIGEST_OF_SCOPE}) AS digest
  FROM scopes CROSS JOIN LATERAL ({sql.SELECTED_IDS}) selected
), versions AS (
  SELECT * FROM unnest(CAST(:report_types AS text[]), CAST(:versions AS integer[])) v(report_type, version)
), flagged AS (
  SELECT runs.run_id, runs.tenant_id, runs.scope_digest <> d.digest AS scope_changed,
         CASE WHEN runs.report_version < v.version THEN v.version END AS current_version
  FROM runs
  JOIN digests d ON d.tenant_id = runs.tenant_id AND d.selection = runs.selection
  LEFT JOIN versions v ON v.report_type = runs.report_type
  WHERE runs.scope_digest <> d.digest OR runs.report_version < v.version
), cleared AS (
  UPDATE reporting.report_run_stale s SET scope_changed = false, current_version = NULL, checked_at = :checked_at
  WHERE (s.scope_changed OR s.current_version IS NOT NULL) AND NOT EXISTS (
    SELECT FROM flagged WHERE flagged.run_id = s.run_id)
)
INSERT INTO reporting.report_run_stale AS s (run_id, tenant_id, scope_changed, current_version, found_at, checked_at)
SELECT run_id, tenant_id, scope_changed, current_version, :checked_at, :checked_at FROM flagged
ON CONFLICT (run_id) DO UPDATE SET
  scope_changed = EXCLUDED.scope_changed, current_version = EXCLUDED.current_version, checked_at = EXCLUDED.checked_at
"""


def full_scope_and_version(conn: Any, bounds: dict[str, Any], versions: dict[str, int]) -> None:
    """The first design's step, in place of `staleness.compare_scopes_and_versions`."""
    params = {"checked_at": bounds["checked_at"], "report_types": list(versions), "versions": list(versions.values())}
    conn.execute(text(FULL_SCOPE_AND_VERSION), params)


def history_rows(engine: Engine) -> int:
    with engine.connect() as conn:
        return conn.execute(text("SELECT count(*) FROM crm.deal_history")).scalar_one()


def build(engine: Engine, tenants: int, rows: int) -> None:
    """The fleet, its history up to `rows` rows and its runs (with their real scope digests)."""
    deals_now = history_rows(engine) // (5 * tenants)
    deals = rows // (5 * tenants)
    if deals <= deals_now:
        return
    started = time.perf_counter()
    with engine.begin() as conn:
        conn.execute(text("SET LOCAL synchronous_commit = off"))
        for statement in FLEET.split(";\n"):
            conn.execute(text(statement), {"tenants": tenants})
        params = {"tenants": tenants, "first_deal": deals_now + 1, "last_deal": deals}
        conn.exec_driver_sql("SET LOCAL maintenance_work_mem = '256MB'")
        for statement in HISTORY.split(";\n"):
            conn.execute(text(statement), params)
        if deals_now == 0:
            versions = {name: report.report_version for name, report in registry().items()}
            conn.execute(text(RUNS), {"tenants": tenants, "types": list(versions), "versions": list(versions.values())})
            conn.exec_driver_sql("ALTER TABLE reporting.report_run DISABLE TRIGGER report_run_status_is_final")
            for tenant_id in conn.execute(text("SELECT tenant_id FROM crm.tenant")).scalars().all():
                digest = conn.execute(text(SCOPE_DIGEST), {"tenant_id": tenant_id, "pipeline_ids": None}).scalar()
                conn.execute(
                    text("UPDATE reporting.report_run SET scope_digest = :d WHERE tenant_id = :t"),
                    {"d": digest, "t": tenant_id},
                )
            conn.exec_driver_sql("ALTER TABLE reporting.report_run ENABLE TRIGGER report_run_status_is_final")
    with engine.connect() as conn:
        conn.execution_options(isolation_level="AUTOCOMMIT").exec_driver_sql("VACUUM ANALYZE")
    print(f"built {history_rows(engine):,} history rows in {time.perf_counter() - started:.0f} s")


def timed_check(engine: Engine, full: bool = False) -> tuple[float, int]:
    """One check, in ms, and the stale runs it listed; `full`: with the first design's scope/version step."""
    patch = (
        mock.patch.object(staleness, "compare_scopes_and_versions", full_scope_and_version) if full else nullcontext()
    )
    with engine.connect() as conn, patch:
        started = time.perf_counter()
        found = staleness.check(conn)
        return (time.perf_counter() - started) * 1000, len(found)


def median(times: list[float]) -> str:
    return f"{statistics.median(times):.1f}"


def measure(engine: Engine, tenants: int, new_rows: list[int], repeats: int) -> None:
    """Per N: `repeats` checks of each design, alternating, each after N new rows of its own."""
    print("| new rows | before: median ms | after: median ms | after: min | after: max | stale runs listed |")
    print("|---:|---:|---:|---:|---:|---:|")
    salt = int(time.time()) % 100_000
    for n in new_rows:
        times: dict[bool, list[float]] = {True: [], False: []}
        found = 0
        for _ in range(repeats):
            for full in (True, False):
                salt += 1
                if n:
                    with engine.begin() as conn:
                        conn.execute(text(NEW_ROWS), {"n": n, "tenants": tenants, "salt": salt})
                elapsed, found = timed_check(engine, full)
                times[full].append(elapsed)
        after = times[False]
        print(f"| {n:,} | {median(times[True])} | {median(after)} | {min(after):.1f} | {max(after):.1f} | {found:,} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tenants", type=int, default=200)
    parser.add_argument("--rows", type=int, nargs="+", default=[2_500_000, 5_000_000], help="history sizes, rising")
    parser.add_argument("--new-rows", type=int, nargs="+", default=[0, 1000, 10_000])
    parser.add_argument("--repeats", type=int, default=7)
    args = parser.parse_args()
    os.environ["DYNO_CRM_MAX_WRITE_SECONDS"] = "0"
    engine = db.get_engine()
    migrate.upgrade(engine)
    for rows in args.rows:
        build(engine, args.tenants, rows)
        with engine.connect() as conn:
            runs = conn.execute(text("SELECT count(*) FROM reporting.report_run")).scalar_one()
        elapsed, found = timed_check(engine)  # the catch-up (first check) or the rows the build added
        print(f"\n### {history_rows(engine):,} history rows, {args.tenants} tenants, {runs:,} runs")
        print(f"first check after the build: {elapsed:.0f} ms, {found:,} stale runs\n")
        measure(engine, args.tenants, args.new_rows, args.repeats)


if __name__ == "__main__":
    main()
