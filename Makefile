# Every target creates .venv and installs the project (editable, with test tools) on first use.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp
PARAMS ?= params/local.yaml
# The accuracy benchmark's peers need pandas < 3 (statsforecast): a venv of their own.
PEERS_VENV  := .venv-peers
PEERS_STAMP := $(PEERS_VENV)/.installed-stamp

.PHONY: install run test lint format lab peers peers-real clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

run: $(STAMP)  ## run the whole pipeline (default: params/local.yaml, local disk)
	$(BIN)/python run_all.py --params $(PARAMS)

test: $(STAMP)  ## the whole test suite: unit, end-to-end papermill runs, S3 against a local server
	$(BIN)/python -m pytest

lint: $(STAMP)  ## ruff, the import contract (stages meet only through products), the type checker
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports
	$(BIN)/mypy

format: $(STAMP)
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

# Jupyter refuses to start as root unless told to (a root container): only then say so.
lab: $(STAMP)  ## JupyterLab on the notebooks, in the project's environment
	$(BIN)/jupyter lab $(if $(filter 0,$(shell id -u)),--allow-root,) notebooks/

$(PEERS_STAMP): pyproject.toml
	$(PYTHON) -m venv $(PEERS_VENV)
	$(PEERS_VENV)/bin/python -m pip install --quiet -e '.[peers]'
	touch $(PEERS_STAMP)

peers: $(PEERS_STAMP)  ## the accuracy benchmark with the peers its targets quote (ARGS: more options)
	$(PEERS_VENV)/bin/python benchmarks/forecast_accuracy.py --peers $(ARGS)

peers-real: $(PEERS_STAMP)  ## accuracy on real VMs (../shared's Bitbrains daily aggregates) beside the peers
	$(PEERS_VENV)/bin/python benchmarks/real_accuracy.py --peers $(ARGS)

clean:
	rm -rf $(VENV) $(PEERS_VENV) .pytest_cache .ruff_cache
