"""Drift between the models (tables.py) and a database: `dyno-reports db check`.

Alembic's autogenerate comparison (what `alembic check` runs), with `compare_type`
and `compare_server_default` on, over two schemas:

- `reporting`, ours: compared both ways; a table, column, index or constraint the
  models lack is drift as much as one the database lacks. Alembic's own
  `alembic_version` table is left out.
- `crm`, the CRM's source contract (created by migration 0001 with IF NOT EXISTS,
  mirrored in tables.py): compared one way. Everything the models declare must be
  there as declared (a dropped column or a changed type breaks our reports), but
  what the CRM has beyond the contract (its other tables, columns, indexes,
  constraints) is the CRM's business and not drift.

Autogenerate does not see CHECK constraints, triggers, functions or comments. Two
catalog queries cover what matters of those in `reporting`: CHECK constraints by
name (the models name every one), and the triggers each table lists in
`info["triggers"]` (present, and not disabled). A third covers row-level security:
a table listing `info["policies"]` must have it enabled with exactly those policies
(by name), any other table must have it off. Not covered: a CHECK constraint's, a
policy's or a function's body (CREATE OR REPLACE FUNCTION), FORCE ROW LEVEL
SECURITY, the CRM's CHECK constraints (the CRM names them), comments, grants, and
rows such as `reporting.report_type` (a test compares those with the report registry).
"""

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import CheckConstraint, Connection, Engine, MetaData, Table, text
from sqlalchemy.schema import SchemaItem

from dyno_reports.storage import migrate, tables

OWNED_SCHEMA = "reporting"
CONTRACT_SCHEMA = "crm"
TARGET_METADATA: tuple[MetaData, ...] = (tables.metadata, tables.crm_metadata)
IGNORED_TABLES = {(OWNED_SCHEMA, "alembic_version")}


@dataclass(frozen=True)
class Difference:
    """One difference, named with Alembic's words (`add_*`: the models have it, the database lacks it)."""

    kind: str
    target: str
    detail: str

    def __str__(self) -> str:
        return f"{self.kind} {self.target}: {self.detail}"


def include_name(name: str | None, type_: str, parent_names: Any) -> bool:
    """Reflect only our two schemas, and not Alembic's version table."""
    if type_ == "schema":
        return name in (OWNED_SCHEMA, CONTRACT_SCHEMA)
    if type_ == "table":
        return (parent_names.get("schema_name"), name) not in IGNORED_TABLES
    return True


def include_object(
    obj: SchemaItem, name: str | None, type_: str, reflected: bool, compare_to: SchemaItem | None
) -> bool:
    """In the CRM's schema, what only the database has (the CRM's own additions) is not drift."""
    if reflected and compare_to is None:
        return _schema_of(obj) != CONTRACT_SCHEMA
    return True


def _schema_of(obj: SchemaItem) -> str | None:
    table = obj if isinstance(obj, Table) else getattr(obj, "table", None)
    return table.schema if isinstance(table, Table) else None


def comparison_options() -> dict[str, Any]:
    """The autogenerate options of the check; env.py uses them too."""
    return {
        "include_schemas": True,
        "include_name": include_name,
        "include_object": include_object,
        "compare_type": True,
        "compare_server_default": True,
    }


def check(engine: Engine) -> list[Difference]:
    """Every difference between the models and the database (empty: no drift), read-only.

    A database that is not at the migrations' head is one difference, `revision`,
    and nothing else is compared: run `dyno-reports db upgrade` first.
    """
    current, head = migrate.current_revision(engine), migrate.head_revision()
    if current != head:
        return [
            Difference(
                "revision",
                f"{OWNED_SCHEMA}.alembic_version",
                f"database at {current or 'none'}, migrations at {head} (run `dyno-reports db upgrade`)",
            )
        ]
    with engine.connect() as conn:
        conn.exec_driver_sql("SET TRANSACTION READ ONLY")
        return differences(conn)


def differences(conn: Connection) -> list[Difference]:
    """The models against the database on `conn` (its open transaction included)."""
    context = MigrationContext.configure(conn, opts=comparison_options())
    diffs = compare_metadata(context, list(TARGET_METADATA))  # type: ignore[arg-type]  # a sequence is accepted
    found = [describe(diff) for diff in _flatten(diffs)]
    found += _check_constraint_differences(conn)
    found += _trigger_differences(conn)
    found += _policy_differences(conn)
    return found


def _flatten(diffs: Iterable[Any]) -> Iterator[tuple[Any, ...]]:
    for diff in diffs:
        if isinstance(diff, list):  # a column's modify_* diffs come as one list
            yield from diff
        else:
            yield diff


def describe(diff: tuple[Any, ...]) -> Difference:
    """One autogenerate diff tuple as a Difference."""
    kind = diff[0]
    if kind in ("add_table", "remove_table"):
        return Difference(kind, _table_name(diff[1]), _where(kind))
    if kind in ("add_column", "remove_column"):
        _, schema, table, column = diff
        return Difference(kind, f"{schema}.{table}.{column.name}", f"{_type(column.type)} {_where(kind)}")
    if kind in ("add_index", "remove_index"):
        index = diff[1]
        columns = ", ".join(getattr(expr, "name", None) or str(expr) for expr in index.expressions)
        return Difference(kind, _table_name(index.table), f"index {index.name} ({columns}) {_where(kind)}")
    if kind in ("add_constraint", "remove_constraint", "add_fk", "remove_fk"):
        constraint = diff[1]
        label = "foreign key" if kind.endswith("_fk") else type(constraint).__name__
        columns = ", ".join(column.name for column in constraint.columns)
        named = f" {constraint.name}" if constraint.name else ""
        return Difference(kind, _table_name(constraint.table), f"{label}{named} ({columns}) {_where(kind)}")
    if kind in ("modify_type", "modify_nullable", "modify_default", "modify_comment"):
        _, schema, table, column, _existing_kw, in_database, in_models = diff
        render = {
            "modify_type": _type,
            "modify_nullable": lambda nullable: "NULL" if nullable else "NOT NULL",
            "modify_default": _default,
        }.get(kind, repr)
        return Difference(
            kind,
            f"{schema}.{table}.{column}",
            f"{render(in_database)} in the database, {render(in_models)} in the models",
        )
    return Difference(kind, "", " ".join(repr(part) for part in diff[1:]))


def _where(kind: str) -> str:
    return "in the models, not in the database" if kind.startswith("add") else "in the database, not in the models"


def _table_name(table: Table) -> str:
    return f"{table.schema}.{table.name}" if table.schema else table.name


def _type(sql_type: Any) -> str:
    return str(sql_type) if sql_type is not None else "no type"


def _default(default: Any) -> str:
    if default is None or default is False:
        return "no default"
    arg = getattr(default, "arg", default)  # a model's DefaultClause, or the reflected SQL text
    return f"DEFAULT {getattr(arg, 'text', arg)}"


def _model_tables() -> list[Table]:
    return [table for table in tables.metadata.sorted_tables if table.schema == OWNED_SCHEMA]


def _existing_tables(conn: Connection) -> set[str]:
    return set(
        conn.execute(
            text("SELECT tablename FROM pg_tables WHERE schemaname = :schema"), {"schema": OWNED_SCHEMA}
        ).scalars()
    )


def _check_constraint_differences(conn: Connection) -> list[Difference]:
    """CHECK constraints of `reporting` by name, both ways (autogenerate does not compare them)."""
    existing = _existing_tables(conn)
    in_database: dict[str, set[str]] = {}
    for table, name in conn.execute(
        text(
            "SELECT c.relname, k.conname FROM pg_constraint k JOIN pg_class c ON c.oid = k.conrelid"
            " WHERE k.contype = 'c' AND c.relnamespace = to_regnamespace(:schema)"
        ),
        {"schema": OWNED_SCHEMA},
    ):
        in_database.setdefault(table, set()).add(name)
    found = []
    for table in _model_tables():
        if table.name not in existing:
            continue  # add_table says it already
        checks = [c for c in table.constraints if isinstance(c, CheckConstraint)]
        checks += [c for column in table.columns for c in column.constraints if isinstance(c, CheckConstraint)]
        in_models = {str(c.name) for c in checks}
        target = f"{OWNED_SCHEMA}.{table.name}"
        database = in_database.get(table.name, set())
        found += [
            Difference("add_check_constraint", target, f"{name} {_where('add')}")
            for name in sorted(in_models - database)
        ]
        found += [
            Difference("remove_check_constraint", target, f"{name} {_where('remove')}")
            for name in sorted(database - in_models)
        ]
    return found


def _trigger_differences(conn: Connection) -> list[Difference]:
    """The triggers each `reporting` table lists in info["triggers"]: there, enabled, and no others."""
    existing = _existing_tables(conn)
    in_database: dict[str, dict[str, bool]] = {}
    for table, name, enabled in conn.execute(
        text(
            "SELECT c.relname, t.tgname, t.tgenabled <> 'D' FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid"
            " WHERE NOT t.tgisinternal AND c.relnamespace = to_regnamespace(:schema)"
        ),
        {"schema": OWNED_SCHEMA},
    ):
        in_database.setdefault(table, {})[name] = enabled
    found = []
    for table in _model_tables():
        if table.name not in existing:
            continue
        in_models = set(table.info.get("triggers", ()))
        target = f"{OWNED_SCHEMA}.{table.name}"
        database = in_database.get(table.name, {})
        found += [
            Difference("add_trigger", target, f"{name} {_where('add')}") for name in sorted(in_models - set(database))
        ]
        found += [
            Difference("remove_trigger", target, f"{name} {_where('remove')}")
            for name in sorted(set(database) - in_models)
        ]
        found += [
            Difference("enable_trigger", target, f"{name} is disabled in the database, enabled in the models")
            for name in sorted(in_models & set(database))
            if not database[name]
        ]
    return found


def _policy_differences(conn: Connection) -> list[Difference]:
    """Row-level security of each `reporting` table: on with the policies of info["policies"], else off."""
    rls_enabled: dict[str, bool] = dict(
        conn.execute(
            text(
                "SELECT relname, relrowsecurity FROM pg_class"
                " WHERE relkind = 'r' AND relnamespace = to_regnamespace(:s)"
            ),
            {"s": OWNED_SCHEMA},
        ).all()
    )
    in_database: dict[str, set[str]] = {}
    for table, name in conn.execute(
        text("SELECT tablename, policyname FROM pg_policies WHERE schemaname = :s"), {"s": OWNED_SCHEMA}
    ):
        in_database.setdefault(table, set()).add(name)
    found = []
    for table in _model_tables():
        if table.name not in rls_enabled:
            continue
        in_models = set(table.info.get("policies", ()))
        target = f"{OWNED_SCHEMA}.{table.name}"
        if in_models and not rls_enabled[table.name]:
            found.append(Difference("enable_row_level_security", target, "off in the database, on in the models"))
        if not in_models and rls_enabled[table.name]:
            found.append(Difference("disable_row_level_security", target, "on in the database, off in the models"))
        database = in_database.get(table.name, set())
        found += [Difference("add_policy", target, f"{name} {_where('add')}") for name in sorted(in_models - database)]
        found += [
            Difference("remove_policy", target, f"{name} {_where('remove')}") for name in sorted(database - in_models)
        ]
    return found
