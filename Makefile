# Two commands do everything on a fresh machine with Python 3.11+:
#   make run    set up, generate the sample data if absent, materialize every asset through Dagster
#   make test   set up, lint (ruff, sqlfluff) and run the test suite
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
INSTALLED := $(VENV)/.cx360-installed

.PHONY: run test lint ui generate contracts benchmark clean

$(INSTALLED): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $@

run: $(INSTALLED)
	$(BIN)/cx360 run

lint: $(INSTALLED)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	CX360_WAREHOUSE=$$(mktemp -d)/lint.duckdb $(BIN)/sqlfluff lint dbt_project/models --processes 2

test: lint
	$(BIN)/pytest -n 2 --dist loadfile

test-resilience: $(INSTALLED)
	$(BIN)/pytest -m resilience tests/test_resilience.py

ui: $(INSTALLED)
	$(BIN)/cx360 ui

generate: $(INSTALLED)
	$(BIN)/cx360 generate

# Rewrites the files generated from cx_pipeline/contracts.py: the dbt sources YAML of the raw tables and
# docs/sources.md (tests/test_ingestion_docs.py fails while a committed copy is stale).
contracts: $(INSTALLED)
	$(BIN)/python -m cx_pipeline.dbt_sources
	$(BIN)/python -m cx_pipeline.ingestion.docs

# Benchmarks at scale (issue #6): SCALES/REPEATS override, e.g. make benchmark SCALES=10000 REPEATS=3
SCALES ?= 10000,100000,1000000
REPEATS ?= 3,1,1
benchmark: $(INSTALLED)
	$(BIN)/python -m benchmarks.run --scales $(SCALES) --repeats $(REPEATS) --out docs/benchmarks.md

clean:
	rm -rf data/cx360.duckdb data/landing data/truth data/exports data/serving data/quarantine dbt_project/target
