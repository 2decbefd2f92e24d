# The two commands a new user needs: `make demo` and `make test`.
# Everything they need is installed here; nothing is assumed beyond Python 3.11, make and apt.

PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: install demo test lint typecheck unit services bench clean

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	@touch $(STAMP)

install: $(STAMP)

## Run the whole loop on the embedded default: SQLite + sandbox CRMs.
demo: install
	$(BIN)/stagelink demo

## Lint, types and the test suite (SQLite and PostgreSQL).
test: install services lint typecheck unit

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: install
	$(BIN)/mypy

unit: install
	$(BIN)/pytest

## Make sure PostgreSQL is up (the machines here run it; restart it if it stopped).
services:
	@bash scripts/ensure-services.sh

## Benchmarks print Markdown tables (bench/README.md lists them).
bench: install
	$(BIN)/python bench/bench_sandbox_salesforce.py
	$(BIN)/python bench/bench_sandbox_hubspot.py
	$(BIN)/python bench/bench_sync.py
	$(BIN)/python bench/bench_recommend.py
	$(BIN)/python bench/bench_writeback.py
	$(BIN)/python bench/bench_usage_ingest.py
	$(BIN)/python bench/bench_e2e_latency.py

clean:
	rm -rf $(VENV) var .mypy_cache .ruff_cache .pytest_cache
