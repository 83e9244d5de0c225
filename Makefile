# The two commands of the README: `make run` (the local default) and `make test`.
# Both set up what they need first: a virtualenv with the package and what it needs to run,
# and from npm anvil (the local Ethereum node) and the browser libraries the pages use.
# `make test` also installs the test tools (the package's `test` extras), Debian's Chromium
# for the browser tests and the DejaVu and Noto CJK fonts for the PDF tests, when they are
# missing (as root). `PORT=5001 make run` serves on another port.

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
ANVIL := node_modules/@foundry-rs/anvil-linux-amd64/bin/anvil
VENDOR := trialnotary/web/static/vendor
CHROMIUM := /usr/bin/chromium
DEJAVU := /usr/share/fonts/truetype/dejavu/DejaVuSans.ttf
NOTO_CJK := /usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc

PORT ?= 5000
# The tests run in one process per core (pytest-xdist; `PYTEST_WORKERS=0` runs them in this one),
# each test file on one worker, so a module's set-up is made once.
PYTEST_WORKERS ?= auto

.PHONY: run test setup bench clean

run: setup
	$(BIN)/trialnotary up --port $(PORT)

test: setup $(BIN)/.installed-test $(CHROMIUM) $(DEJAVU) $(NOTO_CJK)
	$(BIN)/pytest -n $(PYTEST_WORKERS) --dist loadfile $(PYTEST_ARGS)

setup: $(BIN)/.installed $(ANVIL) $(VENDOR)/.installed

# The package with the server's packages (its `server` extra: `pip install trialnotary`
# alone is the verifier and the client commands), the browser libraries first, so that the
# build finds them in place.
$(BIN)/.installed: setup.cfg pyproject.toml setup.py build_vendor.py | $(VENDOR)/.installed
	test -d $(VENV) || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[server]'
	touch $@

# The test tools besides.
$(BIN)/.installed-test: $(BIN)/.installed
	$(BIN)/pip install --quiet -e '.[server,test]'
	touch $@

node_modules/.package-lock.json: package.json package-lock.json
	npm ci --ignore-scripts --no-audit --no-fund
	touch $@

$(ANVIL): node_modules/.package-lock.json

# The browser's libraries, from npm into the package's static folder (not committed), and the
# verify page's bundle (again whenever a script changes); the package build does the same
# (build_vendor.py lists them).
$(VENDOR)/.installed: node_modules/.package-lock.json build_vendor.py $(wildcard trialnotary/web/static/js/*.js)
	$(PYTHON) build_vendor.py
	touch $@

$(CHROMIUM):
	apt-get install -y -q chromium || (apt-get update -q && apt-get install -y -q chromium)

# The Unicode font of the PDF receipts and reports (they fall back to a core font without it).
$(DEJAVU):
	apt-get install -y -q fonts-dejavu-core || (apt-get update -q && apt-get install -y -q fonts-dejavu-core)

# The PDF font for Chinese, Japanese and Korean (jRCT, ChiCTR labels; without it: a replacement mark).
$(NOTO_CJK):
	apt-get install -y -q fonts-noto-cjk || (apt-get update -q && apt-get install -y -q fonts-noto-cjk)

# The load generator of the HTTP benchmarks, from Debian.
WRK := /usr/bin/wrk

bench: setup $(BIN)/.installed-test $(CHROMIUM) $(WRK)
	$(BIN)/python bench/run_all.py

$(WRK):
	apt-get install -y -q wrk || (apt-get update -q && apt-get install -y -q wrk)

clean:
	rm -rf $(VENV) node_modules $(VENDOR) build *.egg-info
