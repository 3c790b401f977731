# LiveInsight — the one make vocabulary: dev, test, lint, bench (and build, package, lock, clean).
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PORT ?= 8000
# checkov pins boto3==1.35.49, which the project's boto3>=1.40 excludes: it gets its own virtualenv.
CHECKOV_VENV := .venv-checkov
CHECKOV_VERSION := 3.3.30

.PHONY: dev test test-dates test-unit test-integration test-e2e test-infra infra-tools lint bench soak build trackers package install lock clean

## dev: the whole stack on http://127.0.0.1:$(PORT) with a demo site and demo traffic; the rollup
## tier batches every 10 s (AWS: 300 s, decision 0015) so the demo's ranges fill in as you watch
dev: install build
	$(VENV)/bin/liveinsight dev --port $(PORT) --demo-traffic --rollup-window 10

## test: every tier (unit, integration under moto, infra, end-to-end in Chromium), one worker per
## core (a test file stays on one worker, so its fixtures are built once); the slowest are listed
test: install build infra-tools trackers
	$(PY) -m pytest -q -n auto --dist loadfile --durations=20

## test-dates: the unit and integration tiers again with the wall clock moved to a European DST
## change, a year's end and 29 February, each crossed while the tests run: nothing may depend on
## today's date (e2e runs at today's date in `make test`). tests/conftest.py moves the clock with
## time-machine; monotonic time is left alone (why not libfaketime: docs/decisions/0019).
## Files with no calendar in them run at today's date only (decision 0019, amendments): the
## hostile-input corpus, and who-may-do-what and CRUD suites (status codes, credentials, stored
## settings: epoch times and durations, no local day, month or year), the emulator's own patches
## and the bill model (monthly prices and Terraform, no date).
DATES ?= 2027-03-28T00:58:00+00:00 2026-12-31T23:57:00+00:00 2028-02-29T23:57:00+00:00
CALENDAR_FREE = $(addprefix integration/,test_hostile_inputs test_isolation test_sign_in \
  test_bad_input test_query_auth test_admin_api test_openapi test_segments test_segments_cli \
  test_funnels_cli test_alerts_cli test_umami_ids test_sites test_moto_patch) \
  $(addprefix unit/,test_bill test_idle_cost)
test-dates: install
	@for at in $(DATES); do \
	  echo "== unit and integration tiers at $$at"; \
	  LIVEINSIGHT_TEST_NOW=$$at $(PY) -m pytest -q -n auto --dist loadfile -p no:cacheprovider \
	    $(foreach f,$(CALENDAR_FREE),--ignore=tests/$(f).py) \
	    tests/unit tests/integration || exit 1; \
	done

test-unit: install
	$(PY) -m pytest -q tests/unit

test-integration: install
	$(PY) -m pytest -q tests/integration

test-e2e: install build trackers
	$(PY) -m pytest -q tests/e2e

## test-infra: Terraform checked statically (HCL, checkov), IAM against recorded calls, zips, logs
test-infra: install infra-tools
	$(PY) -m pytest -q tests/infra

## infra-tools: checkov's virtualenv and the x86_64 wheels the zip tests build with (then offline)
infra-tools: $(CHECKOV_VENV)/.installed build/wheelhouse/.x86_64

$(CHECKOV_VENV)/.installed: requirements-checkov.txt
	$(PYTHON) -m venv $(CHECKOV_VENV)
	$(CHECKOV_VENV)/bin/pip install --quiet --disable-pip-version-check --require-hashes -r requirements-checkov.txt
	@touch $@

build/wheelhouse/.x86_64: requirements.txt uv.lock scripts/package.py | install
	$(PY) -m scripts.package --fetch-only --platform manylinux2014_x86_64
	@touch $@

## lint: ruff (lint + format check) and mypy strict on the source
lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy

## bench: every benchmark, one Markdown table, rows also in bench/results.json
## (`$(PY) -m bench --only load,hotkeys` runs some groups alone; see bench/__main__.py)
bench: install build trackers
	$(PY) -m bench

## soak: `liveinsight dev` with demo traffic for SOAK_MINUTES (memory, log and data growth,
## errors, shutdown); opt-in, in neither `make test` nor `make bench`
SOAK_MINUTES ?= 60
soak: install build
	$(PY) -m bench.soak --minutes $(SOAK_MINUTES)

## package: one zip per Lambda in build/lambda/ (manylinux aarch64 wheels), within size budgets
package: install
	$(PY) -m scripts.package

## build: the tracker and the dashboard (esbuild, Tailwind, vendored htmx and Chart.js)
build: node_modules/.installed
	npm run --silent build

node_modules/.installed: package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	@touch $@

## trackers: the real Plausible and Umami trackers (npm, pinned in tests/trackers) the e2e tests drive
trackers: tests/trackers/dist/.built

# --ignore-scripts: nothing of these packages runs here but the browser code we bundle.
tests/trackers/node_modules/.installed: tests/trackers/package.json tests/trackers/package-lock.json
	npm ci --prefix tests/trackers --ignore-scripts --no-audit --no-fund --loglevel=error
	@touch $@

tests/trackers/dist/.built: tests/trackers/build.mjs tests/trackers/node_modules/.installed node_modules/.installed
	node tests/trackers/build.mjs
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
	echo "checkov==$(CHECKOV_VERSION)" | uv pip compile - --universal --python-version 3.11 \
		--generate-hashes --custom-compile-command "make lock" -q -o requirements-checkov.txt

clean:
	rm -rf $(VENV) $(CHECKOV_VENV) build node_modules tracker/dist dashboard/dist tests/trackers/node_modules tests/trackers/dist .pytest_cache .mypy_cache .ruff_cache
