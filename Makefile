# Everything a fresh machine needs is installed from here: `make run`, `make test`.
PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-$(shell cat pyproject.toml constraints.txt | cksum | cut -d' ' -f1)

.PHONY: install run test lint format bench bench-batch clean

install: $(STAMP)

$(STAMP): pyproject.toml constraints.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -c constraints.txt pip
	$(PY) -m pip install --quiet --disable-pip-version-check -c constraints.txt --group dev
	rm -f $(VENV)/.installed-*
	touch $@

run: install
	$(PY) manage.py migrate --noinput
	$(PY) manage.py ensure_superuser
	$(PY) manage.py setup_schedules
	$(PY) manage.py run_local

test: install
	$(PY) manage.py check --fail-level WARNING
	$(PY) manage.py makemigrations --check --dry-run
	$(PY) -m pytest $(ARGS)

lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

format: install
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

bench: install
	$(PY) tests/benchmarks/bench_orders.py $(ARGS)

bench-batch: install
	$(PY) tests/benchmarks/bench_batch.py $(ARGS)

clean:
	rm -rf $(VENV) var/*.sqlite3* var/sandbox.json
