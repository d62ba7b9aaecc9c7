-- Opt-in covering index for the reports' one ordered pass over crm.deal_history.
--
-- NOT part of the Alembic chain: crm belongs to the CRM's owners, who decide whether
-- to pay its size and write cost for faster reports. Figures, and how to check that
-- the planner uses it: docs/covering_index.md. Remove it with
-- crm_deal_history_covering_index_drop.sql.
--
-- The key is the primary key's order, so every report still reads the history in
-- (tenant_id, deal_id, valid_from) order with no sort; INCLUDE holds every other
-- column the reports read (here: all of the table's columns, recorded_at included:
-- every report filters recorded_at <= K), so the scan can be index-only and never
-- visits the heap for pages the visibility map marks all-visible.
--
-- deal_history_reports_covering, this index before recorded_at existed, covers no
-- report any more (each would visit the heap for recorded_at): it is dropped here.
--
-- Apply with psql outside a transaction (CONCURRENTLY and VACUUM refuse one):
--   psql "$DATABASE_URL" -v ON_ERROR_STOP=1 -f crm_deal_history_covering_index.sql
-- If the build fails (e.g. cancelled), PostgreSQL leaves an INVALID index that
-- IF NOT EXISTS would skip: run the drop file, then this one again.

CREATE INDEX CONCURRENTLY IF NOT EXISTS deal_history_reports_covering_v2
    ON crm.deal_history (tenant_id, deal_id, valid_from)
    INCLUDE (stage_id, owner_principal_id, amount, expected_close_date, is_deleted, recorded_at);

DROP INDEX CONCURRENTLY IF EXISTS crm.deal_history_reports_covering;

-- Sets the visibility map, without which an index-only scan visits the heap anyway
-- (autovacuum keeps it set afterwards on this append-only table), and gives the
-- planner the new index's statistics.
VACUUM (ANALYZE) crm.deal_history;
