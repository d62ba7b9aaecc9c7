"""Each collected test's kind (`unit`, `db`, `dagster`, `cli`), read from what it requests and what its code reaches.

No DB: used by conftest.py's collection hook. A test is `db` when a fixture it needs (directly or through other
fixtures) reaches the server (every database fixture of conftest.py stems from `server_url`), or its code reaches
something that opens a connection by itself. Its code is its function and, transitively, the module-level
functions of the test package it names (helpers such as test_cli's `dyno`), so a helper imported from another
test module counts. The reading is static and errs one way: a name that might be a connection, a subprocess or a
Dagster object makes the test not `unit`.
"""

import inspect
import subprocess
import sys
import types
from collections.abc import Callable, Iterator
from pathlib import Path

from click.testing import CliRunner
from sqlalchemy import create_engine

# The root of every database fixture, and the fixtures that hand a test the command's environment.
DB_FIXTURES = frozenset({"server_url"})
CLI_FIXTURES = frozenset({"cli_env"})
# Modules whose names, once reached, mean a connection (or the embedded server) is opened.
DB_MODULES = ("dyno_reports.storage.db", "dyno_reports.storage.embedded_cluster", "psycopg", "psycopg2")
DAGSTER_MODULES = ("dagster", "dagster_postgres", "dyno_reports.dagster_defs", "dyno_reports.definitions")
PROCESS_MODULES = ("subprocess", "multiprocessing")
TEST_PACKAGE = "dyno_reports_tests"


def kinds_of(functions: list[Callable], fixturenames: list[str], path: Path) -> set[str]:
    """The kinds of one test (its function and its fixtures' functions): some of {db, dagster, cli}, else {unit}."""
    seen: set[int] = set()
    reached = [obj for function in functions for obj in _reached(_undecorated(function), seen)]
    found = set()
    if DB_FIXTURES & set(fixturenames) or any(_is_db(obj) for obj in reached):
        found.add("db")
    if path.name.startswith("test_dagster_") or any(_from_modules(obj, DAGSTER_MODULES) for obj in reached):
        found.add("dagster")
    if CLI_FIXTURES & set(fixturenames) or any(_is_process(obj) for obj in reached):
        found.add("cli")
    return found or {"unit"}


def _undecorated(function: Callable) -> object:
    """The test as written: under hypothesis's @given and functools.wraps decorators."""
    inner = getattr(getattr(function, "hypothesis", None), "inner_test", function)
    return inspect.unwrap(inner)


def _reached(function: object, seen: set[int]) -> Iterator[object]:
    """The global objects a function names, and those of the test-package functions it names, transitively."""
    if not isinstance(function, types.FunctionType) or id(function) in seen:
        return
    seen.add(id(function))
    for name in _names(function.__code__):
        obj = function.__globals__.get(name)
        if obj is None:
            # not a global: an import inside the function (`from dagster import ...`) names its module here
            obj = types.ModuleType(name)
        yield obj
        for inner in _test_functions(obj):
            yield from _reached(inner, seen)


def _names(code: types.CodeType) -> Iterator[str]:
    """Global and attribute names a code object uses, nested functions and comprehensions included."""
    yield from code.co_names
    for const in code.co_consts:
        if isinstance(const, types.CodeType):
            yield from _names(const)


def _test_functions(obj: object) -> Iterator[types.FunctionType]:
    """The functions of the test package behind a name: itself, or a class's methods."""
    if _from_modules(obj, (TEST_PACKAGE,)):
        if inspect.isfunction(obj):
            yield obj
        elif inspect.isclass(obj):
            yield from (f for _, f in inspect.getmembers(obj, inspect.isfunction) if f.__module__ == obj.__module__)


def _module_name(obj: object) -> str:
    if isinstance(obj, types.ModuleType):
        return obj.__name__
    return getattr(obj, "__module__", None) or ""


def _from_modules(obj: object, prefixes: tuple[str, ...]) -> bool:
    name = _module_name(obj)
    return any(name == prefix or name.startswith(prefix + ".") for prefix in prefixes)


def _is_db(obj: object) -> bool:
    return obj is create_engine or _from_modules(obj, DB_MODULES)


def _is_process(obj: object) -> bool:
    """A process of its own: subprocess, CliRunner, or our code from a module that imports subprocess."""
    if obj is subprocess or obj is CliRunner or _from_modules(obj, PROCESS_MODULES):
        return True
    home = sys.modules.get(_module_name(obj)) if _from_modules(obj, ("dyno_reports",)) else None
    return home is not None and any(
        isinstance(value, types.ModuleType) and value.__name__ in PROCESS_MODULES for value in vars(home).values()
    )
