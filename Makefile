# The two commands of the README work on a fresh machine: they create .venv and
# install what they need. PYTHON must be 3.11 or newer.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp

.PHONY: install demo test test-unit test-thorough lint format lock dev bench clean stop-db

# Installs are pinned by constraints.txt (the whole dependency tree); `make lock` refreshes it.
CONSTRAINTS := constraints.txt

$(STAMP): pyproject.toml $(CONSTRAINTS)
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -c $(CONSTRAINTS) -e ".[test,lint]"
	touch $(STAMP)

install: $(STAMP)

## Run the demo on the embedded PostgreSQL (or DYNO_DATABASE_URL when set).
demo: $(STAMP)
	$(BIN)/dyno-reports demo

## Run the tests against DYNO_TEST_DATABASE_URL, else the embedded PostgreSQL, with branch coverage of the
## package (fails under [tool.coverage.report] fail_under of pyproject.toml), in TEST_WORKERS processes
## (pytest-xdist; each test module stays on one worker, with its own database). TEST_WORKERS=0: one process.
COVERAGE ?= --cov --cov-report=term-missing:skip-covered
TEST_WORKERS ?= 2
test: $(STAMP)
	$(BIN)/pytest -n $(TEST_WORKERS) --dist loadfile $(COVERAGE)

## The unit tests only (no database, no subprocess, no Dagster): seconds, no server needed.
test-unit: $(STAMP)
	$(BIN)/pytest -m unit

## Lint, format check, types, the layers (import-linter) and the reports' SQL (sqlfluff); CI runs it first.
lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/lint-imports
	$(BIN)/sqlfluff lint dyno_reports/reports

## Rewrite the reports' SQL snapshots (dyno_reports/reports/<report>/<report>.sql) from their statements.
.PHONY: sql-snapshots
sql-snapshots: $(STAMP)
	$(BIN)/python -m dyno_reports.reports.sql_snapshots

## Apply the formatter and the safe lint fixes.
format: $(STAMP)
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

## The property-based tests with many more examples.
test-thorough: $(STAMP)
	HYPOTHESIS_PROFILE=thorough $(BIN)/pytest -n $(TEST_WORKERS) --dist loadfile

## Benchmarks (printed figures, not timed tests).
bench: $(STAMP)
	$(BIN)/python -m benchmarks.report_runs
	$(BIN)/python -m benchmarks.dagster_overhead

## Refresh constraints.txt: resolve pyproject.toml's ranges afresh in a throwaway venv and pin the result.
lock:
	rm -rf .lock-venv
	$(PYTHON) -m venv .lock-venv
	.lock-venv/bin/python -m pip install --quiet --upgrade pip
	.lock-venv/bin/python -m pip install --quiet -e ".[test,lint]"
	( echo "# Every package of the dependency tree, pinned; installed with pip -c by make. Refresh: make lock"; \
	  .lock-venv/bin/python -m pip freeze --exclude-editable | grep -v '^-e ' ) > $(CONSTRAINTS)
	rm -rf .lock-venv

stop-db: $(STAMP)
	$(BIN)/dyno-reports db stop

clean:
	rm -rf $(VENV) .pytest_cache .hypothesis

## Dagster UI on the embedded PostgreSQL: upgrade, seed if empty, sync tenants, `dagster dev`.
## DAGSTER_HOME is .dyno/dagster_home; pass e.g. DEV_ARGS="-p 3001" for another port.
## Ctrl-C or SIGTERM stops every Dagster process within seconds; the embedded PostgreSQL
## keeps running (`make stop-db`) unless DEV_ARGS="--stop-db".
dev: $(STAMP)
	$(BIN)/python -m dyno_reports.devtools.dev $(DEV_ARGS)
