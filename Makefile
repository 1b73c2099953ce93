# The two commands a user needs: `make run` and `make test`. Both install what is missing.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
OUT ?= reports/latest
SCENARIO ?= scenarios/smoke.yaml
WORKERS ?= 2

.PHONY: run test setup system system-test venv lint typecheck unit clean bench docker-engine docker-engine-stop

run: system venv
	$(BIN)/harness run $(SCENARIO) --out $(OUT)

# Benchmarks (minutes; not part of `make test`): fleet throughput against the TPM floor,
# manufacturing against swtpm_setup, evaluator throughput, scaling, a 10k-device report.
bench: system venv
	$(BIN)/python -m bench

# The browser test needs Debian's chromium and chromedriver; only `make test` installs them.
test: system-test venv lint typecheck unit

setup: system venv

system:
	@bash scripts/setup-system.sh

system-test:
	@bash scripts/setup-system.sh --browser --docker

venv: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "Python 3.11 or newer is needed")'
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $@

lint:
	$(BIN)/ruff check harness tests bench
	$(BIN)/ruff format --check harness tests bench

typecheck:
	$(BIN)/mypy

# pytest exits 5 when a selection collects nothing (e.g. PYTEST_ADDOPTS=-k ...): not a failure.
# The tests get a private Docker engine for their run; it is stopped whatever their outcome.
unit:
	bash scripts/docker-engine.sh run --swarm -- $(BIN)/pytest -n $(WORKERS) -q; status=$$?; [ $$status -eq 0 ] || [ $$status -eq 5 ]

# A private Docker engine with the swtpm image, for `--backend docker` by hand; prints DOCKER_HOST.
docker-engine: system-test
	@bash scripts/docker-engine.sh start

docker-engine-stop:
	@bash scripts/docker-engine.sh stop

clean:
	rm -rf $(VENV) reports/latest
