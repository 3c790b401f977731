# LiveInsight — the one make vocabulary: dev, test, lint, bench (and build, lock, clean).
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PORT ?= 8000

.PHONY: dev test test-unit test-integration test-e2e lint bench build install lock clean

## dev: the whole stack on http://127.0.0.1:$(PORT) with a demo site and demo traffic
dev: install build
	$(VENV)/bin/liveinsight dev --port $(PORT) --demo-traffic

## test: every tier (unit, integration under moto, end-to-end in Chromium)
test: install build
	$(PY) -m pytest -q

test-unit: install
	$(PY) -m pytest -q tests/unit

test-integration: install
	$(PY) -m pytest -q tests/integration

test-e2e: install build
	$(PY) -m pytest -q tests/e2e

## lint: ruff (lint + format check) and mypy strict on the source
lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy

## bench: every benchmark, one Markdown table, rows also in bench/results.json
bench: install build
	$(PY) -m bench

## build: the tracker and the dashboard (esbuild, Tailwind, vendored htmx and Chart.js)
build: node_modules/.installed
	npm run --silent build

node_modules/.installed: package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	@touch $@

## install: a virtualenv with the locked dependencies (requirements*.txt are exported from uv.lock)
install: $(VENV)/.installed

$(VENV)/.installed: requirements-dev.txt pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check --require-hashes -r requirements-dev.txt
	$(PY) -m pip install --quiet --disable-pip-version-check --no-deps -e .
	@touch $@

## lock: re-resolve dependencies (needs uv) and re-export the pinned requirement files
lock:
	uv lock
	uv export --frozen --no-dev --no-emit-project -q -o requirements.txt
	uv export --frozen --extra dev --no-emit-project -q -o requirements-dev.txt

clean:
	rm -rf $(VENV) node_modules tracker/dist dashboard/dist .pytest_cache .mypy_cache .ruff_cache
