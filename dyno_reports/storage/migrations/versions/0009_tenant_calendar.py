"""crm.tenant gains the tenant's calendar: time_zone, week_start, fiscal_year_start_month, fiscal_year_named_by.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-08

Frozen: every statement is literal SQL in this file; it imports nothing from
dyno_reports, so no later change to shared code can change what it does.

- The four columns of the CRM source contract, each with the default that gives
  the UTC periods of before (UTC, Monday, January, 'end'): existing tenants keep
  their periods. A constant default rewrites no row; the CHECKs read the tenant
  rows once, under the migration's lock timeout.
- `reporting.is_time_zone_name(text)`, the CHECK on `time_zone`: true for the IANA
  zone names of the server's time zone database, and for nothing else PostgreSQL
  would also read as a zone (POSIX rules such as 'EST5EDT,M3.2.0,M11.1.0' or
  '<+05>-5', offsets such as '+05', abbreviations such as 'PST', another case
  such as 'europe/paris'), which Python's zoneinfo does not read. The name must
  have an IANA name's shape (letters, digits, '_', '+', '-' in '/'-separated
  parts, starting with a letter; not tzdata's 'localtime', 'posixrules', posix/
  or right/, which name no zone: dyno_reports/core/local_time.py holds the same rule).
  A name with a '/' can be neither a POSIX rule nor an abbreviation, so setting
  TimeZone to it (for the function's call only) succeeds exactly when the zone
  exists, and reads back the very name only in its canonical case: microseconds.
  A name without one ('EST5EDT', 'Cuba') is looked up in pg_timezone_names,
  which reads every zone file (about 70 ms); 'UTC', the default, is accepted at
  once. IMMUTABLE, as a CHECK assumes: its answer changes only with the server's
  tzdata. A role inserting tenants needs no right on schema reporting.
- A CRM that owns crm.tenant and already has one of these columns keeps it as it
  is (ADD COLUMN IF NOT EXISTS: no check of ours is added to it).
- Downgrade: where migration 0001 created the crm schema (the demo's, the
  tests'), the columns go. In a CRM's own schema they stay (they are the
  contract's, the CRM's table); only the zone check goes, with its function
  (DROP ... CASCADE drops what depends on the function: that check alone).
"""

from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None

CRM_OWNED_BY_US = "dyno-reports: created by migration 0001"  # 0001's comment on a crm schema it created

IS_TIME_ZONE_NAME = """
CREATE FUNCTION reporting.is_time_zone_name(zone_name text) RETURNS boolean
LANGUAGE plpgsql IMMUTABLE STRICT
SET search_path = pg_catalog, pg_temp
SET TimeZone = 'UTC'
AS $fn$
BEGIN
  IF zone_name = 'UTC' THEN
    RETURN true;
  END IF;
  IF zone_name !~ '^[A-Za-z][A-Za-z0-9_+-]*(/[A-Za-z0-9_+-]+)*$'
     OR zone_name IN ('localtime', 'posixrules') OR zone_name ~ '^(posix|right)/' THEN
    RETURN false;
  END IF;
  IF strpos(zone_name, '/') = 0 THEN
    RETURN EXISTS (SELECT FROM pg_timezone_names n WHERE n.name = zone_name);
  END IF;
  BEGIN
    PERFORM set_config('TimeZone', zone_name, true);  -- undone when the function returns (its SET clause)
  EXCEPTION WHEN invalid_parameter_value THEN
    RETURN false;
  END;
  RETURN current_setting('TimeZone') = zone_name;
END $fn$;

COMMENT ON FUNCTION reporting.is_time_zone_name(text) IS
  'True for an IANA time zone name of the server''s tzdata (exact case), false for POSIX rules, offsets, '
  'abbreviations and anything else: the CHECK on crm.tenant.time_zone';
"""

ADD_COLUMNS = """
ALTER TABLE crm.tenant
  ADD COLUMN IF NOT EXISTS time_zone text NOT NULL DEFAULT 'UTC'
    CONSTRAINT tenant_time_zone_check CHECK (reporting.is_time_zone_name(time_zone)),
  ADD COLUMN IF NOT EXISTS week_start smallint NOT NULL DEFAULT 1
    CHECK (week_start BETWEEN 1 AND 7),
  ADD COLUMN IF NOT EXISTS fiscal_year_start_month smallint NOT NULL DEFAULT 1
    CHECK (fiscal_year_start_month BETWEEN 1 AND 12),
  ADD COLUMN IF NOT EXISTS fiscal_year_named_by text NOT NULL DEFAULT 'end'
    CHECK (fiscal_year_named_by IN ('start', 'end'));
"""


def upgrade() -> None:
    op.execute(IS_TIME_ZONE_NAME)
    op.execute(ADD_COLUMNS)


def downgrade() -> None:
    owner_note = (
        op.get_bind().exec_driver_sql("SELECT obj_description(to_regnamespace('crm'), 'pg_namespace')").scalar()
    )
    if owner_note == CRM_OWNED_BY_US:
        op.execute(
            "ALTER TABLE crm.tenant DROP COLUMN time_zone, DROP COLUMN week_start,"
            " DROP COLUMN fiscal_year_start_month, DROP COLUMN fiscal_year_named_by"
        )
    op.execute("DROP FUNCTION reporting.is_time_zone_name(text) CASCADE")
