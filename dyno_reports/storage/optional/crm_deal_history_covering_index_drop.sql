-- Removes the opt-in covering index of crm_deal_history_covering_index.sql.
-- The reports stay correct without it (they then scan the primary key index).
--   psql "$DATABASE_URL" -v ON_ERROR_STOP=1 -f crm_deal_history_covering_index_drop.sql

DROP INDEX CONCURRENTLY IF EXISTS crm.deal_history_reports_covering_v2;
-- its version from before recorded_at, if it is still there
DROP INDEX CONCURRENTLY IF EXISTS crm.deal_history_reports_covering;
