# Everything a fresh machine needs is installed from here: `make run`, `make test`.
PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip install --quiet --disable-pip-version-check -c constraints.txt
SUM := $(shell cat pyproject.toml constraints.txt | cksum | cut -d' ' -f1)
APP_STAMP := $(VENV)/.installed-app-$(SUM)
DEV_STAMP := $(VENV)/.installed-dev-$(SUM)

.PHONY: install install-app run test test-browser screenshots chromium lint format hooks bench bench-batch clean

# Runtime dependencies only (`make run`); `install` adds the test and lint tools.
install-app: $(APP_STAMP)
install: $(DEV_STAMP)

$(APP_STAMP): pyproject.toml constraints.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) pip
	$(PIP) --group app
	rm -f $(VENV)/.installed-*
	touch $@

$(DEV_STAMP): $(APP_STAMP)
	$(PIP) --group dev
	touch $@

run: export DJANGO_DEBUG ?= on
run: install-app
	$(PY) manage.py migrate --noinput
	$(PY) manage.py setup_schedules
	$(PY) manage.py run_local

# One suite at a time on a machine, whichever checkout starts it: suites share the cores, and
# tests with timeouts (a sandbox starting, a call hanging) fail spuriously on a starved machine.
TEST_LOCK ?= /tmp/oneoffice-portal-tests.lock
LOCKED := flock $(TEST_LOCK)

test: export DJANGO_SETTINGS_MODULE = portal.settings_test
test: install
	$(PY) manage.py check --fail-level WARNING
	$(PY) manage.py makemigrations --check --dry-run
	$(LOCKED) $(PY) -m pytest $(ARGS)

# Browser tests: Chromium from the OS packages (never a downloaded browser), path in CHROMIUM_PATH.
BROWSER_STAMP := $(VENV)/.browser-$(SUM)
CHROMIUM_PATH ?= $(shell command -v chromium || echo /usr/bin/chromium)
export CHROMIUM_PATH

$(BROWSER_STAMP): $(DEV_STAMP)
	$(PIP) --group browser
	rm -f $(VENV)/.browser-*
	touch $@

chromium:
	test -x "$(CHROMIUM_PATH)" || command -v chromium || (apt-get update && apt-get install -y chromium)

test-browser: install $(BROWSER_STAMP) chromium
	$(LOCKED) $(PY) -m pytest tests/browser -m "not screenshots" -p no:cacheprovider $(ARGS)

screenshots: install $(BROWSER_STAMP) chromium
	$(LOCKED) $(PY) -m pytest tests/browser -m screenshots -p no:cacheprovider -s $(ARGS)

lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy

format: install
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

# Runs ruff before every commit (see .pre-commit-config.yaml).
hooks: install
	$(PIP) pre-commit
	$(VENV)/bin/pre-commit install

# Every benchmark, on scratch databases of ARGS' size (CI: a small one, so none can rot).
bench: install
	$(PY) tests/benchmarks/bench_orders.py $(ARGS)
	$(PY) tests/benchmarks/bench_ops.py $(ARGS)
	$(PY) tests/benchmarks/bench_batch.py $(BATCH_ARGS)

bench-batch: install
	$(PY) tests/benchmarks/bench_batch.py $(ARGS)

clean:
	rm -rf $(VENV) var/*.sqlite3* var/sandbox.json
