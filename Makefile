# The two commands of the README: `make run` (the local default) and `make test`.
# Both set up what they need first: a virtualenv with the package, and anvil from npm.

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
ANVIL := node_modules/@foundry-rs/anvil-linux-amd64/bin/anvil

.PHONY: run test setup bench clean

run: setup
	$(BIN)/trialnotary up

test: setup
	$(BIN)/pytest $(PYTEST_ARGS)

setup: $(BIN)/.installed $(ANVIL)

$(BIN)/.installed: setup.cfg pyproject.toml
	test -d $(VENV) || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test]'
	touch $@

$(ANVIL): package.json package-lock.json
	npm ci --ignore-scripts --no-audit --no-fund
	touch $@

bench: setup
	$(BIN)/python bench/run_all.py

clean:
	rm -rf $(VENV) node_modules build *.egg-info
