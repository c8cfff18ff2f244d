# Everything a fresh machine needs is installed from here: `make run`, `make test`.
PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-$(shell cat pyproject.toml constraints.txt | cksum | cut -d' ' -f1)

.PHONY: install run test test-browser screenshots chromium lint format bench clean

install: $(STAMP)

$(STAMP): pyproject.toml constraints.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -c constraints.txt pip
	$(PY) -m pip install --quiet --disable-pip-version-check -c constraints.txt --group dev
	rm -f $(VENV)/.installed-*
	touch $@

run: install
	$(PY) manage.py migrate --noinput
	$(PY) manage.py setup_schedules
	$(PY) manage.py run_local

test: install
	$(PY) manage.py check --fail-level WARNING
	$(PY) manage.py makemigrations --check --dry-run
	$(PY) -m pytest $(ARGS)

# Browser tests: Chromium from the OS packages (never a downloaded browser), path in CHROMIUM_PATH.
BROWSER_STAMP := $(VENV)/.browser-$(shell cat pyproject.toml constraints.txt | cksum | cut -d' ' -f1)
CHROMIUM_PATH ?= $(shell command -v chromium || echo /usr/bin/chromium)
export CHROMIUM_PATH

$(BROWSER_STAMP): $(STAMP)
	$(PY) -m pip install --quiet --disable-pip-version-check -c constraints.txt --group browser
	rm -f $(VENV)/.browser-*
	touch $@

chromium:
	test -x "$(CHROMIUM_PATH)" || command -v chromium || (apt-get update && apt-get install -y chromium)

test-browser: install $(BROWSER_STAMP) chromium
	$(PY) -m pytest tests/browser -m "not screenshots" -p no:cacheprovider $(ARGS)

screenshots: install $(BROWSER_STAMP) chromium
	$(PY) -m pytest tests/browser -m screenshots -p no:cacheprovider -s $(ARGS)

lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

format: install
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

bench: install
	$(PY) tests/benchmarks/bench_orders.py $(ARGS)

clean:
	rm -rf $(VENV) var/*.sqlite3* var/sandbox.json
