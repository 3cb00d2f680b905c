# Two commands for a newcomer: `make demo` (set up + main job) and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test bench setup system-deps clean js

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

# The listener page's JavaScript: node unit tests and eslint (pinned in package.json; pytest runs both too).
js:
	npm ci --no-audit --no-fund
	npm test
	npm run lint

bench: setup
	$(BIN)/python benchmarks/run.py

setup: system-deps $(STAMP)

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
