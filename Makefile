# The two commands of the README: `make run` (the local default) and `make test`.
# Both set up what they need first: a virtualenv with the package, and from npm anvil (the
# local Ethereum node) and the browser libraries the pages use. `make test` also needs
# Debian's Chromium for the browser tests and the DejaVu and Noto CJK fonts for the PDF
# tests, and installs them when they are missing (as root).

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
ANVIL := node_modules/@foundry-rs/anvil-linux-amd64/bin/anvil
VENDOR := trialnotary/static/vendor
CHROMIUM := /usr/bin/chromium
DEJAVU := /usr/share/fonts/truetype/dejavu/DejaVuSans.ttf
NOTO_CJK := /usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc

.PHONY: run test setup bench clean

run: setup
	$(BIN)/trialnotary up

test: setup $(CHROMIUM) $(DEJAVU) $(NOTO_CJK)
	$(BIN)/pytest $(PYTEST_ARGS)

setup: $(BIN)/.installed $(ANVIL) $(VENDOR)/.installed

$(BIN)/.installed: setup.cfg pyproject.toml
	test -d $(VENV) || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test]'
	touch $@

node_modules/.package-lock.json: package.json package-lock.json
	npm ci --ignore-scripts --no-audit --no-fund
	touch $@

$(ANVIL): node_modules/.package-lock.json

# The browser's libraries, from npm into the package's static folder (not committed).
$(VENDOR)/.installed: node_modules/.package-lock.json
	mkdir -p $(VENDOR)
	cp node_modules/hash-wasm/dist/sha256.umd.min.js $(VENDOR)/hash-wasm-sha256.umd.min.js
	cp node_modules/hash-wasm/LICENSE $(VENDOR)/hash-wasm.LICENSE
	cp node_modules/canonicalize/lib/canonicalize.js $(VENDOR)/canonicalize.js
	cp node_modules/canonicalize/LICENSE $(VENDOR)/canonicalize.LICENSE
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

bench: setup $(CHROMIUM) $(WRK)
	$(BIN)/python bench/run_all.py

$(WRK):
	apt-get install -y -q wrk || (apt-get update -q && apt-get install -y -q wrk)

clean:
	rm -rf $(VENV) node_modules $(VENDOR) build *.egg-info
