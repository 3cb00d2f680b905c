# Two commands for a newcomer: `make demo` (set up + main job) and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test lint bench setup system-deps clean js

# `make demo APP=0` stops after the report instead of serving the app.
APP ?= 1

demo: setup
	$(BIN)/evalkit codecs
	$(BIN)/evalkit demo
ifneq ($(APP),0)
	$(BIN)/evalkit app --mushra-demo
endif

test: setup
	$(BIN)/python -m pytest

# ruff's rules and formatting over the whole tree, and a type check of the core modules (pyproject.toml).
lint: setup
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

# The listener page's JavaScript: node unit tests and eslint (pinned in package.json; pytest runs both too).
js:
	npm ci --no-audit --no-fund
	npm test
	npm run lint
	npm run types

bench: setup
	$(BIN)/python benchmarks/run.py

setup: system-deps $(STAMP) node_modules/.package-lock.json

# eslint for the listener page (pytest runs it when node_modules/ is there); node itself is a Debian package.
node_modules/.package-lock.json: package.json package-lock.json
	@if command -v npm >/dev/null; then npm ci --no-audit --no-fund; else echo "npm is missing: the listener page's lint test will skip"; fi

system-deps:
	@bash scripts/install_system_deps.sh

$(STAMP): pyproject.toml requirements-adapters.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e ".[dev]"
	$(BIN)/pip install -q --no-deps -r requirements-adapters.txt
	touch $(STAMP)

clean:
	rm -rf $(VENV) results/*.db results/cache
