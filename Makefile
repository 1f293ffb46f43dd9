# Every CI step calls one of these targets; they work the same on a laptop.
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
PY := $(BIN)/python
STAMP := $(VENV)/.installed-dev
CORE_STAMP := $(VENV)/.installed-core
export MLFLOW_TRACKING_URI ?= sqlite:///mlflow.db

.PHONY: install install-core test lint demo data run-train run-train-grid bench clean

# Full development install: reconciler + training stack + test tools.
install: $(STAMP)
$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --disable-pip-version-check --upgrade pip setuptools wheel
	$(PY) -m pip install -q --disable-pip-version-check -e '.[dev]'
	touch $@

# The reconciler alone (what the registry-plan/apply CI jobs install).
install-core: $(CORE_STAMP)
$(CORE_STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --disable-pip-version-check -e .
	touch $@

lint: install
	$(BIN)/ruff check src tests bench scripts
	$(BIN)/mypy

test: install lint
	$(BIN)/pytest -q

data: install
	$(BIN)/accident data

run-train: install
	$(BIN)/accident train

run-train-grid: install
	$(BIN)/accident train --grid-search

demo: install
	$(PY) scripts/demo.py

bench: install
	$(PY) bench/run_all.py

clean:
	rm -rf $(VENV) mlruns mlflow.db .pytest_cache .mypy_cache .ruff_cache data/raw data/processed data/features models
