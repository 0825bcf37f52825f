# Every target creates .venv and installs the project (editable, with test tools) on first use.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp
PARAMS ?= params/local.yaml

.PHONY: install run test lint format lab clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

run: $(STAMP)  ## run the whole pipeline (default: params/local.yaml, local disk)
	$(BIN)/python run_all.py --params $(PARAMS)

test: $(STAMP)  ## the whole test suite: unit, end-to-end papermill runs, S3 against a local server
	$(BIN)/python -m pytest

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: $(STAMP)
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

lab: $(STAMP)  ## JupyterLab on the notebooks, in the project's environment
	$(BIN)/jupyter lab notebooks/

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache
