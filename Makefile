# The two commands a new user needs: `make demo` and `make test`.
# Everything they need is installed here; nothing is assumed beyond Python 3.11, make and apt.

PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: install demo test lint typecheck unit services browser card-test bench soak clean

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	@touch $(STAMP)

install: $(STAMP)

## Run the whole loop on the embedded default: SQLite + sandbox CRMs.
demo: install
	$(BIN)/stagelink demo

## Lint, types, the HubSpot card's tests and the test suite (SQLite, PostgreSQL, Chromium).
test: install services browser lint typecheck card-test unit

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: install
	$(BIN)/mypy

unit: install
	$(BIN)/pytest

## Debian's Chromium for the browser tests (apt-get, once; Playwright drives it, no download).
browser:
	@bash scripts/ensure-chromium.sh

## The HubSpot app card (apps/hubspot-card, React): install from the lock file, run vitest.
card-test:
	cd apps/hubspot-card && npm ci --no-audit --no-fund --loglevel=error && npm test

## Make sure PostgreSQL is up (the machines here run it; restart it if it stopped).
services:
	@bash scripts/ensure-services.sh

## Every benchmark at the issues' sizes (recommendation latency over 20k of the 100k deals),
## then bench/RESULTS.md: about 12 minutes on 2 cores. BENCH_PROFILE=quick checks the
## machinery in ~2 minutes; BENCH_PROFILE=full also recommends for all 100k deals (~2.5 min more).
BENCH_PROFILE ?= standard
bench: install services
	$(BIN)/python bench/run.py --profile $(BENCH_PROFILE)

## Reliability soak: sandbox CRMs with 20% faults, their mutator, a usage stream and kill -9 of
## `stagelink serve` for $(DURATION); exits 0 only with 0 mismatches.
## e.g. make soak DURATION=1h SOAK_ARGS="--seed 7 --database-url postgresql+psycopg://…/soak"
DURATION ?= 10m
soak: install services
	$(BIN)/python -m soak.run --duration $(DURATION) $(SOAK_ARGS)

clean:
	rm -rf $(VENV) var .mypy_cache .ruff_cache .pytest_cache
