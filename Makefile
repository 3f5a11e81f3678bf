# Two commands from a fresh machine (see README.md):
#   make demo   install torch, yeswidget and JupyterLab (the `demo` extra), then open the quickstart notebook
#   make test   set up, lint and type-check (make lint), then run every test (Python, notebooks, JS units, the browser test)
# `make demo-headless` trains a paper task without a browser and writes a report.

PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
TASK   ?= phase-retrieval

.PHONY: setup browser lint test demo demo-headless bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/pip install torch==2.13.0
	$(BIN)/pip install -e ".[test,notebooks]"
	touch $@

# the demo installs only what the quickstart needs (the `demo` extra), not the test stack
$(VENV)/.demo-installed: pyproject.toml | $(BIN)/python
	$(BIN)/pip install torch==2.13.0
	$(BIN)/pip install -e ".[demo]"
	touch $@

js/node_modules/.package-lock.json: js/package.json js/package-lock.json
	cd js && npm ci --no-audit --no-fund

setup: $(VENV)/.installed

# Debian's chromium drives the browser test (Playwright's own browser download does not work offline)
browser:
	@command -v chromium >/dev/null 2>&1 || { apt-get update && apt-get install -y --no-install-recommends chromium; }

# ruff (lint) and mypy (types; strict on the math, the store and the monitor), both configured in
# pyproject.toml: any new finding fails `make test` and CI
lint: setup
	$(BIN)/ruff check .
	$(BIN)/mypy

test: setup lint browser js/node_modules/.package-lock.json
	$(BIN)/python -m pytest -q

# (JupyterLab refuses to start as root without --allow-root: containers often run as root)
# (the URL opens the quickstart itself, not the Launcher or a restored workspace)
demo: $(VENV)/.demo-installed
	$(BIN)/jupyter lab $(if $(filter 0,$(shell id -u)),--allow-root) \
		--ServerApp.default_url=/lab/workspaces/demo/tree/notebooks/01-quickstart.ipynb?reset

# exit codes 3-5 are verdicts (yellow, red, none), not failures of the demo
demo-headless: setup
	$(BIN)/yeswidget demo $(TASK) --out yeswidget-report || test $$? -ge 3

bench: setup
	$(BIN)/python benchmarks/bench_bounds.py
	$(BIN)/python benchmarks/bench_monitor.py
	$(BIN)/python benchmarks/bench_chart.py

clean:
	rm -rf $(VENV) js/node_modules yeswidget-report .mypy_cache .ruff_cache
