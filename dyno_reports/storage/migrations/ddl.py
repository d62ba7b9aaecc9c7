"""DDL pieces that several migrations share (kept stable: old migrations call them)."""

from alembic import op


def create_fact_table(report_type: str, columns_sql: str, dimensions: str) -> None:
    """Create `reporting.report_<report_type>_fact`, register the report type and guard its facts.

    The deferred constraint trigger makes PostgreSQL refuse, at commit, any fact
    row whose run is not SUCCEEDED for the same tenant: facts of a failed or
    unfinished run can never become visible, whoever writes them.
    """
    table = f"report_{report_type}_fact"
    op.execute(
        f"""
        CREATE TABLE reporting.{table} (
          run_id     uuid NOT NULL,
          tenant_id  uuid NOT NULL,
          {columns_sql},
          CONSTRAINT uq_{table}_run_id_dims UNIQUE NULLS NOT DISTINCT (run_id, {dimensions}),
          CONSTRAINT fk_{table}_tenant_id_run_id_report_run FOREIGN KEY (tenant_id, run_id)
            REFERENCES reporting.report_run (tenant_id, run_id) ON DELETE CASCADE
        )
        """
    )
    op.execute(
        f"""
        CREATE CONSTRAINT TRIGGER facts_need_succeeded_run
          AFTER INSERT OR UPDATE ON reporting.{table}
          DEFERRABLE INITIALLY DEFERRED
          FOR EACH ROW EXECUTE FUNCTION reporting.fact_requires_succeeded_run()
        """
    )
    op.execute(f"INSERT INTO reporting.report_type (report_type, fact_table) VALUES ('{report_type}', '{table}')")


def drop_fact_table(report_type: str) -> None:
    op.execute(f"DROP TABLE reporting.report_{report_type}_fact")
    op.execute(f"DELETE FROM reporting.report_type WHERE report_type = '{report_type}'")
