# REX build / test plumbing.
#
#   make test          venv + local services, then the whole pytest suite
#   make test-unit     tests not marked broker/database; needs no services
#   make test-cluster  the tests on a three-node RabbitMQ cluster of their own (tests/cluster)
#   make lint          ruff check + mypy (config in pyproject.toml)
#   make bench         engine benchmark on $(WORKLOAD)
#   make demo          a scripted trading session on the embedded exchange
#   make services      make sure RabbitMQ and PostgreSQL are up
#   make clean         remove .venv, caches and data/
#
# Extra pytest arguments:  make test PYTEST_ARGS='-k book -x'

SHELL := bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := test

PYTHON   ?= python3
VENV     := .venv
PY       := $(VENV)/bin/python
STAMP    := $(VENV)/.installed

PYTEST_ARGS ?=
WORKLOAD    ?= ../shared/workloads/book-1m.msgpack

.PHONY: venv services test test-unit test-cluster lint bench demo clean

# --- environment -------------------------------------------------------------

venv: $(STAMP)

# Re-install only when pyproject.toml is newer than the stamp (or the venv is new).
$(STAMP): pyproject.toml
	@if [ ! -x $(PY) ]; then \
		echo "venv: creating $(VENV) with $(PYTHON)"; \
		if ! $(PYTHON) -m venv $(VENV); then \
			rm -rf $(VENV); \
			if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
				echo "venv: '$(PYTHON) -m venv' failed; installing python3-venv"; \
				apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y python3-venv; \
				$(PYTHON) -m venv $(VENV); \
			else \
				echo "venv: '$(PYTHON) -m venv' failed; install python3-venv (Debian) and retry" >&2; \
				exit 1; \
			fi; \
		fi; \
	fi
	$(PY) -m pip install -e '.[dev]'
	touch $@

services:
	scripts/ensure-services.sh

# --- checks ------------------------------------------------------------------

test: venv services
	$(PY) -m pytest tests $(PYTEST_ARGS)

test-cluster: venv services
	REX_CLUSTER_LONG=1 $(PY) -m pytest tests/cluster -m cluster $(PYTEST_ARGS)

test-unit: venv
	$(PY) -m pytest tests -m "not broker and not database" $(PYTEST_ARGS)

lint: venv
	$(PY) -m ruff check .
	$(PY) -m mypy

demo: venv
	$(PY) -m demo

bench: venv
	$(PY) -m engine.bench --workload $(WORKLOAD)

# --- housekeeping ------------------------------------------------------------

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache .hypothesis data build dist
	find . -path ./.git -prune -o \( -name '*.egg-info' -o -name __pycache__ \) -prune -exec rm -rf {} +
