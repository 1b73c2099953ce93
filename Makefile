# The two commands a user needs: `make run` and `make test`. Both install what is missing.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
OUT ?= reports/latest
SCENARIO ?= scenarios/smoke.yaml
WORKERS ?= 2

.PHONY: run test setup system venv lint typecheck unit bench clean

run: setup
	$(BIN)/harness run $(SCENARIO) --out $(OUT)

test: setup lint typecheck unit

setup: system venv

system:
	@bash scripts/setup-system.sh

venv: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "Python 3.11 or newer is needed")'
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $@

lint:
	$(BIN)/ruff check harness tests conftest.py
	$(BIN)/ruff format --check harness tests conftest.py

typecheck:
	$(BIN)/mypy

unit:
	$(BIN)/pytest -n $(WORKERS) -q

bench: setup
	$(BIN)/python -m harness.bench

clean:
	rm -rf $(VENV) reports/latest
