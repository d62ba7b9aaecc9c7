"""The demo's late import: a win backdated into the first tenant's latest month, found stale and refreshed.

After the demo's runs, one row is written to `crm.deal_history` as an import would write it: an open deal of
the tenant, quiet since before the month's last day, is won on that day (`valid_from` = the month's end minus
a day), recorded now. The stale check (`staleness.check`) then lists the tenant's runs whose period ends
after that day (docs/definitions.md, "As known at"), `refresh` asks their questions again, and the demo
prints what changed in the month's `win_loss` run and the commands that show it (`runs stale`, `diff`).

The refresh reads the CRM as known at now, not at the default K (now minus the CRM's longest write): the
demo wrote the row itself and its transaction has committed, so nothing recorded before now can still
appear. `dyno-reports refresh` waits that margin for rows it did not write.

A second demo writes no second import (the tenant has a backdated row already): its check finds nothing
stale, as the first demo refreshed every run the import touched, and it adds no run.
"""

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from uuid import UUID

from sqlalchemy import Engine, text

from dyno_reports.core.tenant_calendar import Period
from dyno_reports.freshness import refresh, staleness
from dyno_reports.storage import db

CLI = ".venv/bin/dyno-reports"  # as the README writes the commands

# One won row for the tenant's largest open deal whose last row is before :won_at, unless the tenant has a
# backdated row already (recorded more than a day after its valid_from: an earlier demo's import).
IMPORT_A_LATE_WIN = text("""
WITH last_rows AS (
    SELECT DISTINCT ON (h.deal_id) h.deal_id, h.valid_from, h.stage_id, h.owner_principal_id, h.amount,
           h.expected_close_date, h.is_deleted
    FROM crm.deal_history h
    WHERE h.tenant_id = :tenant_id
    ORDER BY h.deal_id, h.valid_from DESC
),
quiet_open_deal AS (
    SELECT r.*, (SELECT w.stage_id FROM crm.stage w
                 WHERE w.tenant_id = :tenant_id AND w.pipeline_id = s.pipeline_id AND w.kind = 'won'
                 ORDER BY w.position, w.stage_id LIMIT 1) AS won_stage_id
    FROM last_rows r
    JOIN crm.stage s ON s.tenant_id = :tenant_id AND s.stage_id = r.stage_id AND s.kind = 'open'
    WHERE NOT r.is_deleted AND r.valid_from < CAST(:won_at AS timestamptz)
    ORDER BY r.amount DESC, r.deal_id
    LIMIT 1
)
INSERT INTO crm.deal_history (tenant_id, deal_id, valid_from, stage_id, owner_principal_id, amount,
                              expected_close_date, is_deleted)
SELECT :tenant_id, d.deal_id, CAST(:won_at AS timestamptz), d.won_stage_id, d.owner_principal_id, d.amount,
       d.expected_close_date, false
FROM quiet_open_deal d
WHERE d.won_stage_id IS NOT NULL
  AND NOT EXISTS (SELECT FROM crm.deal_history b
                  WHERE b.tenant_id = :tenant_id AND b.recorded_at > b.valid_from + interval '1 day')
RETURNING deal_id, amount
""")


def import_a_late_win(engine: Engine, tenant_id: UUID, month: Period) -> tuple[UUID, str] | None:
    """Write the backdated win (committed on return): its deal and amount; None when an earlier demo did."""
    won_at = month.end - timedelta(days=1)
    with engine.begin() as conn:
        row = conn.execute(IMPORT_A_LATE_WIN, {"tenant_id": tenant_id, "won_at": won_at}).first()
    return None if row is None else (row.deal_id, f"{row.amount:,.2f}")


def show_a_late_import(
    engine: Engine, tenant_id: UUID, month: Period, describe: Callable[[Period], str], echo: Callable[[str], None]
) -> None:
    """Import a late win into `month` of the tenant, list the runs it made stale, refresh them, show the diff."""
    won_at = month.end - timedelta(days=1)
    echo(f"\nA late import (tenant {tenant_id}): a win dated {won_at:%Y-%m-%d %H:%M} UTC, in {describe(month)}")
    imported = import_a_late_win(engine, tenant_id, month)
    if imported is None:
        echo("  imported by an earlier demo already: nothing new is written")
    else:
        deal_id, amount = imported
        echo(f"  written now to crm.deal_history: deal {deal_id} won, amount {amount} (recorded_at = now)")
    with db.connect(engine) as conn:
        stale = staleness.check(conn, tenant_ids=[tenant_id])
    if not stale:
        echo("  stale runs: none (every run the import touched was refreshed by then)")
        return
    echo(f"  stale runs: {len(stale)} (their period ends after the win), e.g.")
    for run in stale[:3]:
        why = "; ".join(run.reasons())
        echo(f"    {run.report_type:<18} {run.period_grain:<7} until {run.period_end:%Y-%m-%d}  {why}")
    done = refresh.refresh(engine, tenant_ids=[tenant_id], as_known_at=datetime.now(UTC))
    succeeded = [r for r in done if r.result is not None and r.result.succeeded]
    echo(f"  refreshed: {len(succeeded)} of {len(done)} runs asked again (the old runs stay; the latest views moved)")
    month_win_loss = [r for r in succeeded if r.stale.report_type == "win_loss" and r.stale.period_end == month.end]
    for r in month_win_loss[:1]:
        assert r.result is not None
        echo(f"  win_loss, {describe(month)}: {r.summary()}")
        echo(f"  {CLI} diff {r.stale.run_id} {r.result.run_id}")
    echo(f"  {CLI} runs stale --tenant {tenant_id}")
