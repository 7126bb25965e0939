# Journey Engine. `make run` and `make test` work on a machine with only Python 3.11+.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin

.PHONY: run test lint format bench install dev clean screenshots

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

# Reinstall when the dependencies change.
$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e .
	@touch $@

$(VENV)/.dev: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e '.[dev]'
	@touch $@ $(VENV)/.installed

install: $(VENV)/.installed
dev: $(VENV)/.dev

## run: install, migrate, load demo clients if empty, serve on http://127.0.0.1:5000
run: install
	$(BIN)/journey db upgrade
	$(BIN)/journey demo --if-empty
	$(BIN)/journey serve

## test: the whole test suite (PostgreSQL and Redis tests skip when unreachable)
test: dev
	$(BIN)/pytest

lint: dev
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: dev
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

## screenshots: run the browser tests, keeping their screenshots in docs/screenshots
screenshots: dev
	JOURNEY_SCREENSHOTS=docs/screenshots $(BIN)/pytest -q -k "browser and sqlite"

clean:
	rm -rf $(VENV) instance .pytest_cache .ruff_cache

## bench: enrollment, sweep, throughput, latency and backlog drain against PostgreSQL and Redis
bench: dev
	$(BIN)/python -u -m tests.bench
