"""SQLAlchemy Core metadata of every table this project reads or writes.

The `crm` tables mirror the CRM source contract (docs/definitions.md, "The CRM source contract");
the `reporting` tables are ours. Migrations create them (as literal SQL, never from
this module); `dyno-reports db check` (storage/drift.py) compares a database with
this module, and a test runs it on a freshly migrated database.

Triggers are not SQLAlchemy objects: a table names the ones it must have in
`info["triggers"]` (their bodies live in the migrations), so `db check` can see a
missing or disabled guard. Row-level security likewise: a table that carries a
tenant names its policies in `info["policies"]` (row-level security enabled, those
policies and no others); a table without the key must have row-level security off.
"""

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    Column,
    Date,
    ForeignKeyConstraint,
    Index,
    Integer,
    MetaData,
    Numeric,
    PrimaryKeyConstraint,
    SmallInteger,
    Table,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB, TIMESTAMP, UUID
from sqlalchemy.sql.elements import conv

NAMING = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_N_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}
metadata = MetaData(naming_convention=NAMING)
# The CRM tables are the source contract's, created by its DDL verbatim, so their
# constraints keep PostgreSQL's default names: no naming convention there.
crm_metadata = MetaData()

TZ = TIMESTAMP(timezone=True)
MONEY = Numeric(28, 2)
DAYS = Numeric(14, 2)
RATE = Numeric(6, 4)
RUN_STATUSES = ("IN_PROGRESS", "SUCCEEDED", "FAILED")
# The row-level security policy of every reporting table with a tenant_id (migration 0003):
# rows of the tenant in the setting dyno.tenant_id only.
TENANT_POLICY = "tenant_isolation"

# --- CRM source contract (schema crm) --------------------------------------

tenant = Table(
    "tenant",
    crm_metadata,
    Column("tenant_id", UUID(as_uuid=True), primary_key=True),
    Column("name", Text, nullable=False),
    Column("created_at", TZ, nullable=False, server_default=text("now()")),
    # The tenant's calendar (migration 0009; docs/definitions.md, "Periods in the tenant's calendar").
    Column("time_zone", Text, nullable=False, server_default=text("'UTC'")),
    Column("week_start", SmallInteger, nullable=False, server_default=text("1")),
    Column("fiscal_year_start_month", SmallInteger, nullable=False, server_default=text("1")),
    Column("fiscal_year_named_by", Text, nullable=False, server_default=text("'end'")),
    CheckConstraint("reporting.is_time_zone_name(time_zone)", name="tenant_time_zone_check"),
    CheckConstraint("week_start BETWEEN 1 AND 7"),
    CheckConstraint("fiscal_year_start_month BETWEEN 1 AND 12"),
    CheckConstraint("fiscal_year_named_by IN ('start', 'end')"),
    schema="crm",
)
principal = Table(
    "principal",
    crm_metadata,
    Column("tenant_id", UUID(as_uuid=True), nullable=False),
    Column("principal_id", UUID(as_uuid=True), nullable=False),
    Column("display_name", Text, nullable=False),
    PrimaryKeyConstraint("tenant_id", "principal_id"),
    ForeignKeyConstraint(["tenant_id"], ["crm.tenant.tenant_id"]),
    schema="crm",
)
pipeline = Table(
    "pipeline",
    crm_metadata,
    Column("tenant_id", UUID(as_uuid=True), nullable=False),
    Column("pipeline_id", UUID(as_uuid=True), nullable=False),
    Column("name", Text, nullable=False),
    PrimaryKeyConstraint("tenant_id", "pipeline_id"),
    ForeignKeyConstraint(["tenant_id"], ["crm.tenant.tenant_id"]),
    schema="crm",
)
stage = Table(
    "stage",
    crm_metadata,
    Column("tenant_id", UUID(as_uuid=True), nullable=False),
    Column("stage_id", UUID(as_uuid=True), nullable=False),
    Column("pipeline_id", UUID(as_uuid=True), nullable=False),
    Column("name", Text, nullable=False),
    Column("position", Integer, nullable=False),
    Column("probability", Numeric(5, 4), nullable=False),
    Column("kind", Text, nullable=False),
    PrimaryKeyConstraint("tenant_id", "stage_id"),
    UniqueConstraint("tenant_id", "pipeline_id", "position"),
    ForeignKeyConstraint(["tenant_id", "pipeline_id"], ["crm.pipeline.tenant_id", "crm.pipeline.pipeline_id"]),
    CheckConstraint("probability BETWEEN 0 AND 1"),
    CheckConstraint("kind IN ('open', 'won', 'lost')"),
    schema="crm",
)
deal = Table(
    "deal",
    crm_metadata,
    Column("tenant_id", UUID(as_uuid=True), nullable=False),
    Column("deal_id", UUID(as_uuid=True), nullable=False),
    Column("name", Text, nullable=False),
    Column("created_at", TZ, nullable=False),
    PrimaryKeyConstraint("tenant_id", "deal_id"),
    ForeignKeyConstraint(["tenant_id"], ["crm.tenant.tenant_id"]),
    schema="crm",
)
deal_history = Table(
    "deal_history",
    crm_metadata,
    Column("tenant_id", UUID(as_uuid=True), nullable=False),
    Column("deal_id", UUID(as_uuid=True), nullable=False),
    Column("valid_from", TZ, nullable=False),
    Column("stage_id", UUID(as_uuid=True), nullable=False),
    Column("owner_principal_id", UUID(as_uuid=True), nullable=False),
    Column("amount", Numeric(18, 2), nullable=False),
    Column("expected_close_date", Date),
    Column("is_deleted", Boolean, nullable=False, server_default=text("false")),
    # When the CRM wrote the row (transaction time; migration 0011: rows from before it count as recorded at
    # their valid_from). A run reads the rows recorded at or before its known_at.
    Column("recorded_at", TZ, nullable=False, server_default=text("now()")),
    PrimaryKeyConstraint("tenant_id", "deal_id", "valid_from"),
    ForeignKeyConstraint(["tenant_id", "deal_id"], ["crm.deal.tenant_id", "crm.deal.deal_id"]),
    ForeignKeyConstraint(["tenant_id", "stage_id"], ["crm.stage.tenant_id", "crm.stage.stage_id"]),
    ForeignKeyConstraint(
        ["tenant_id", "owner_principal_id"], ["crm.principal.tenant_id", "crm.principal.principal_id"]
    ),
    CheckConstraint("amount >= 0"),
    schema="crm",
)
# The rows of a tenant recorded since a moment (migration 0011): the access path of a check for runs whose
# answer a backdated row changed, reading only the rows written since it last looked.
Index("deal_history_tenant_id_recorded_at_idx", deal_history.c.tenant_id, deal_history.c.recorded_at)

# --- Reporting (schema reporting) -------------------------------------------

report_type = Table(
    "report_type",
    metadata,
    Column("report_type", Text, primary_key=True),
    Column("fact_table", Text, nullable=False, unique=True),
    schema="reporting",
)
report_run = Table(
    "report_run",
    metadata,
    Column("run_id", UUID(as_uuid=True), primary_key=True),
    Column("tenant_id", UUID(as_uuid=True), nullable=False),
    Column("report_type", Text, nullable=False),
    Column("generated_at", TZ, nullable=False, server_default=text("now()")),
    Column("period_start", TZ),
    Column("period_end", TZ),
    Column("period_grain", Text, nullable=False),
    Column("input_params", JSONB, nullable=False, server_default=text("'{}'::jsonb")),
    Column("input_fingerprint", Text, nullable=False),
    Column("status", Text, nullable=False),
    Column("error_message", Text),
    Column("dagster_run_id", Text),
    # What else the run depended on (migration 0011): K, the CRM as known at (history rows recorded at or
    # before it), the report's version, and the digest of the pipelines and stages in its scope
    # (reports/scope_digest.py). Set on every SUCCEEDED run; a FAILED one has what it knew (none, for refused
    # inputs).
    Column("known_at", TZ),
    Column("report_version", Integer),
    Column("scope_digest", Text),
    UniqueConstraint("tenant_id", "run_id"),
    ForeignKeyConstraint(["report_type"], ["reporting.report_type.report_type"]),
    CheckConstraint("status IN ('IN_PROGRESS', 'SUCCEEDED', 'FAILED')", name="status"),
    CheckConstraint("status <> 'FAILED' OR error_message IS NOT NULL", name="failed_has_error"),
    CheckConstraint("period_start IS NULL OR period_end > period_start", name="period_order"),
    CheckConstraint("period_grain IN ('week', 'month', 'quarter', 'custom', 'unbounded')", name="period_grain"),
    CheckConstraint("input_fingerprint ~ '^[0-9a-f]{64}$'", name="input_fingerprint"),
    CheckConstraint(
        "status <> 'SUCCEEDED' OR (known_at IS NOT NULL AND report_version IS NOT NULL AND scope_digest IS NOT NULL)",
        name="succeeded_records_what_it_knew",
    ),
    CheckConstraint("report_version >= 1", name="report_version"),
    CheckConstraint("scope_digest ~ '^[0-9a-f]{64}$'", name="scope_digest"),
    schema="reporting",
    info={
        # status_is_final: a finished run is final (0001, extended to every column by 0003);
        # is_kept / is_not_truncated: runs are deleted only by reporting.prune_report_runs (0003);
        # facts_need_success: a run that got facts while IN_PROGRESS is SUCCEEDED at commit (0006)
        "triggers": (
            "report_run_status_is_final",
            "report_run_is_kept",
            "report_run_is_not_truncated",
            "report_run_facts_need_success",
        ),
        "policies": (TENANT_POLICY,),
    },
)
Index(
    "ix_report_run_tenant_id_report_type_period_end",
    report_run.c.tenant_id,
    report_run.c.report_type,
    report_run.c.period_end,
    report_run.c.generated_at,
)
Index("ix_report_run_input_fingerprint", report_run.c.input_fingerprint)
# The runs made outside Dagster in the order `report_runs_from_cli_sensor` reads them (migration 0008).
Index(
    "ix_report_run_cli_runs",
    report_run.c.generated_at,
    report_run.c.run_id,
    postgresql_where=text("dagster_run_id IS NULL AND status = 'SUCCEEDED'"),
)
Index(
    "ix_report_run_dagster_run_id",
    report_run.c.dagster_run_id,
    postgresql_where=report_run.c.dagster_run_id.isnot(None),
)
# The SUCCEEDED runs made since a moment: the runs a stale check has not seen yet (migration 0012).
Index(
    "ix_report_run_succeeded_generated_at",
    report_run.c.generated_at,
    postgresql_where=text("status = 'SUCCEEDED'"),
)

# The stale check (migration 0012, staleness.py): its cursor, one row, and what it found per run.
stale_check = Table(
    "stale_check",
    metadata,
    Column(
        "only_row", Boolean, CheckConstraint("only_row", name="only_row"), primary_key=True, server_default=text("true")
    ),
    Column("checked_to", TZ),
    schema="reporting",
)
report_run_stale = Table(
    "report_run_stale",
    metadata,
    Column("run_id", UUID(as_uuid=True), primary_key=True),
    Column("tenant_id", UUID(as_uuid=True), nullable=False),
    # late history rows found so far; the settled ones are counted once, the rest read again by the next check
    Column(
        "late_rows",
        BigInteger,
        CheckConstraint("late_rows >= 0", name="late_rows"),
        nullable=False,
        server_default=text("0"),
    ),
    Column("earliest_valid_from", TZ),
    Column(
        "settled_rows",
        BigInteger,
        CheckConstraint("settled_rows >= 0", name="settled_rows"),
        nullable=False,
        server_default=text("0"),
    ),
    Column("settled_earliest", TZ),
    Column("unsettled_to", TZ),  # the latest recorded_at of the late rows not settled yet
    Column("scope_changed", Boolean, nullable=False, server_default=text("false")),
    Column("current_version", Integer),  # the report's version at the last check, when the run's is older
    Column("found_at", TZ, nullable=False, server_default=text("now()")),
    Column("checked_at", TZ, nullable=False, server_default=text("now()")),
    ForeignKeyConstraint(
        ["tenant_id", "run_id"], ["reporting.report_run.tenant_id", "reporting.report_run.run_id"], ondelete="CASCADE"
    ),
    schema="reporting",
    info={"policies": (TENANT_POLICY,)},
)
# What the last stale check saw: the scope digest per tenant and pipeline selection of its runs (JSON null:
# every pipeline), and each report's version; a check compares runs only where these changed.
stale_scope = Table(
    "stale_scope",
    metadata,
    Column("tenant_id", UUID(as_uuid=True), primary_key=True),
    Column("selection", JSONB, primary_key=True),
    Column("digest", Text, CheckConstraint("digest ~ '^[0-9a-f]{64}$'", name="digest"), nullable=False),
    Column("checked_at", TZ, nullable=False, server_default=text("now()")),
    schema="reporting",
    info={"policies": (TENANT_POLICY,)},
)
stale_version = Table(
    "stale_version",
    metadata,
    Column("report_type", Text, primary_key=True),
    Column("report_version", Integer, nullable=False),
    Column("checked_at", TZ, nullable=False, server_default=text("now()")),
    schema="reporting",
)


def fact_table(name: str, *columns: Column, keys: tuple[str, ...]) -> Table:
    """A `reporting.report_<name>_fact` table: run_id and tenant_id, then the report's own columns.

    `keys` are the report's dimensions; together with run_id they identify a row
    (NULLS NOT DISTINCT, since some dimensions such as close_month may be NULL).
    """
    table_name = f"report_{name}_fact"
    return Table(
        table_name,
        metadata,
        Column("run_id", UUID(as_uuid=True), nullable=False),
        Column("tenant_id", UUID(as_uuid=True), nullable=False),
        *columns,
        ForeignKeyConstraint(
            ["tenant_id", "run_id"],
            ["reporting.report_run.tenant_id", "reporting.report_run.run_id"],
            ondelete="CASCADE",
        ),
        UniqueConstraint(
            "run_id", *keys, name=conv(f"uq_{table_name}_run_id_dims"), postgresql_nulls_not_distinct=True
        ),
        schema="reporting",
        info={
            # facts_need_succeeded_run(_on_update): per statement, facts only of a SUCCEEDED run (0006);
            # are_immutable / are_not_truncated: facts never change, deleted only with their run (0003)
            "triggers": (
                "facts_need_succeeded_run",
                "facts_need_succeeded_run_on_update",
                "facts_are_immutable",
                "facts_are_not_truncated",
            ),
            "policies": (TENANT_POLICY,),
        },
    )


def _count(name: str) -> Column:
    return Column(name, BigInteger, CheckConstraint(f"{name} >= 0", name=name), nullable=False)


def _money(name: str, nullable: bool = False) -> Column:
    return Column(name, MONEY, CheckConstraint(f"{name} >= 0", name=name), nullable=nullable)


def _uuid(name: str, nullable: bool = False) -> Column:
    return Column(name, UUID(as_uuid=True), nullable=nullable)


pipeline_overview_fact = fact_table(
    "pipeline_overview",
    _uuid("pipeline_id"),
    _uuid("stage_id"),
    _count("deal_count"),
    _money("total_amount"),
    _money("avg_amount", nullable=True),
    Column("avg_days_in_stage", DAYS),
    _count("entered_count"),
    keys=("stage_id",),
)
stage_conversion_fact = fact_table(
    "stage_conversion",
    _uuid("pipeline_id"),
    _uuid("stage_id"),
    _count("entered_count"),
    _count("advanced_count"),
    _count("lost_count"),
    Column("conversion_rate", RATE),
    Column("avg_days_to_advance", DAYS),
    keys=("stage_id",),
)
weighted_pipeline_fact = fact_table(
    "weighted_pipeline",
    _uuid("pipeline_id"),
    _uuid("principal_id"),
    Column("close_month", Date),
    _count("deal_count"),
    _money("total_amount"),
    _money("weighted_amount"),
    # appended by migration 0010, after the metrics as in the database; NULL in runs made before it
    Column("close_quarter", Date),
    keys=("pipeline_id", "principal_id", "close_month"),
)
win_loss_fact = fact_table(
    "win_loss",
    _uuid("pipeline_id"),
    _uuid("principal_id"),
    _count("won_count"),
    _count("lost_count"),
    _money("won_amount"),
    _money("lost_amount"),
    Column("win_rate", RATE),
    Column("win_rate_by_value", RATE),
    Column("avg_cycle_days", DAYS),
    keys=("pipeline_id", "principal_id"),
)
deal_velocity_fact = fact_table(
    "deal_velocity",
    _uuid("pipeline_id"),
    _uuid("stage_id"),
    _count("exited_count"),
    Column("avg_days", DAYS),
    Column("p50_days", DAYS),
    Column("p90_days", DAYS),
    keys=("stage_id",),
)
# pipeline_movement: per pipeline, the open pipeline at S, each movement to E, and the open pipeline at E.
MOVEMENTS = (
    "start",
    "created",
    "reopened",
    "moved_in",
    "increased",
    "decreased",
    "moved_out",
    "won",
    "lost",
    "deleted",
    "end",
)
pipeline_movement_fact = fact_table(
    "pipeline_movement",
    _uuid("pipeline_id"),
    *(column for movement in MOVEMENTS for column in (_count(f"{movement}_count"), _money(f"{movement}_amount"))),
    keys=("pipeline_id",),
)
