# Journey Engine. `make run` and `make test` work on a machine with only Python 3.11+.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin

.PHONY: run test lint format bench chaos install dev clean screenshots

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

# Front-end libraries from npm (package.json): htmx for the admin panel, Swagger UI for the API
# reference, copied into static/vendor (git-ignored). Without npm, pages load the same pinned
# files from a CDN, checked by their hash (web/assets.py).
VENDOR := web/static/vendor
$(VENDOR)/.installed: package.json
	@if ! command -v npm >/dev/null 2>&1; then \
		echo "npm not found: pages will load htmx and Swagger UI from unpkg.com"; \
	elif npm install --no-audit --no-fund --silent; then \
		mkdir -p $(VENDOR)/swagger-ui && \
		cp node_modules/htmx.org/dist/htmx.min.js $(VENDOR)/ && \
		cp node_modules/swagger-ui-dist/swagger-ui-bundle.js node_modules/swagger-ui-dist/swagger-ui.css \
			$(VENDOR)/swagger-ui/ && touch $@; \
	else echo "npm install failed: pages will load htmx and Swagger UI from unpkg.com"; fi

install: $(VENV)/.installed $(VENDOR)/.installed
dev: $(VENV)/.dev $(VENDOR)/.installed

## run: install, migrate, load demo clients if empty, serve on http://127.0.0.1:5000
run: install
	$(BIN)/journey db upgrade
	$(BIN)/journey demo --if-empty
	$(BIN)/journey serve

## test: the whole test suite, on two parallel workers (PostgreSQL and Redis tests skip when
## unreachable)
test: dev
	$(BIN)/pytest -n 2 --dist loadgroup

## lint: ruff, and bandit (no medium or high finding; a `# nosec BXXX # reason` says why)
lint: dev
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/bandit -q -r web scheduler tasks migrations --severity-level medium

format: dev
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

## screenshots: run the browser tests, keeping their screenshots in docs/screenshots
screenshots: dev
	JOURNEY_SCREENSHOTS=docs/screenshots $(BIN)/pytest -q -k "browser and sqlite"

clean:
	rm -rf $(VENV) instance .pytest_cache .ruff_cache

## chaos: the Procfile's processes under kill -9, SIGTERM, Redis restarts and PostgreSQL outages
## (10,000 automations, about 20 minutes; not part of `make test`, which runs a 2-minute one)
chaos: dev
	$(BIN)/python -u -m tests.chaos

## bench: enrollment, sweep, throughput, latency and backlog drain against PostgreSQL and Redis
bench: dev
	$(BIN)/python -u -m tests.bench
