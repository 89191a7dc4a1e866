# Two commands for a newcomer: `make run` and `make test`. Both set up .venv first.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
# The hotline itself (what `make run` needs), then the test and lint tools on top (what `make test` needs).
STAMP      := $(VENV)/.installed
TEST_STAMP := $(VENV)/.installed-test

PRISM_DIR   := tests/prism
PRISM_STAMP := $(PRISM_DIR)/node_modules/.installed

.PHONY: run test test-fast lint install clean prism vendor-sdk

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e .
	touch $(STAMP)

$(TEST_STAMP): $(STAMP) pyproject.toml
	$(BIN)/pip install --quiet -e '.[test,lint]'
	touch $(TEST_STAMP)

install: $(TEST_STAMP)

# Twilio's REST API description as a test peer (tests/fuzz/test_twilio_spec.py): Prism and Twilio's OpenAPI file, pinned
# by tests/prism/package-lock.json. Without npm that test is skipped with the reason (CI sets HOTLINE_REQUIRE_PRISM=1: it fails).
$(PRISM_STAMP): $(PRISM_DIR)/package.json $(PRISM_DIR)/package-lock.json
	@if command -v npm >/dev/null 2>&1; then \
	  npm ci --prefix $(PRISM_DIR) --ignore-scripts --no-audit --no-fund --loglevel=error && touch $@ \
	    || echo "npm ci failed in $(PRISM_DIR): the Twilio spec test will be skipped (or fail, in CI)"; \
	else echo "npm not found: the Twilio spec test (Twilio's API description as a peer) will be skipped"; fi

prism: $(PRISM_STAMP)

# Twilio's Voice JavaScript SDK for the agents' softphone: the browser bundle of @twilio/voice-sdk, committed under
# console/static/vendor/ with its licence (a fresh clone needs no npm; the app serves it, no CDN). This target fetches
# the pinned version again with npm and copies it there only if both files match the recorded sha256.
SDK_VERSION        := 2.18.5
SDK_SHA256         := 35d3cb1b22e309f9884724a89250aecd2de4f1556ad7b67a7bc5e06c73dcb74a
SDK_LICENSE_SHA256 := f9fc33ee30f1bcaf4c6147221f085c0ce44d2be6030c7b6a03085dd9c2c874a1
SDK_DIR            := console/static/vendor

vendor-sdk:
	@command -v npm >/dev/null 2>&1 || { echo "vendor-sdk: npm is needed to fetch @twilio/voice-sdk"; exit 1; }
	@tmp=$$(mktemp -d) && trap 'rm -rf "$$tmp"' EXIT && \
	  npm pack --silent --pack-destination "$$tmp" "@twilio/voice-sdk@$(SDK_VERSION)" >/dev/null && \
	  tar -xzf "$$tmp/twilio-voice-sdk-$(SDK_VERSION).tgz" -C "$$tmp" package/dist/twilio.min.js package/LICENSE.md && \
	  $(PYTHON) -c 'import hashlib, sys; \
	    got = [hashlib.sha256(open(f, "rb").read()).hexdigest() for f in sys.argv[1:3]]; \
	    bad = [f"{f}: sha256 {g}, expected {w}" for f, g, w in zip(sys.argv[1:3], got, sys.argv[3:5]) if g != w]; \
	    sys.exit("vendor-sdk: checksum mismatch, nothing copied\n" + "\n".join(bad) if bad else 0)' \
	    "$$tmp/package/dist/twilio.min.js" "$$tmp/package/LICENSE.md" "$(SDK_SHA256)" "$(SDK_LICENSE_SHA256)" && \
	  cp "$$tmp/package/dist/twilio.min.js" "$(SDK_DIR)/twilio-voice-sdk.min.js" && \
	  cp "$$tmp/package/LICENSE.md" "$(SDK_DIR)/twilio-voice-sdk.LICENSE.md" && \
	  echo "vendored @twilio/voice-sdk $(SDK_VERSION) into $(SDK_DIR) (sha256 $(SDK_SHA256))"

run: $(STAMP)
	$(BIN)/hotline run

# The layering (import-linter contracts in pyproject.toml), ruff, and mypy on the domain and the foundation.
lint: $(TEST_STAMP)
	$(BIN)/ruff check .
	$(BIN)/lint-imports
	$(BIN)/mypy

# Everything: lint, then every test (PYTEST_ARGS narrows it, e.g. PYTEST_ARGS="-m 'not browser'").
test: lint $(PRISM_STAMP)
	$(BIN)/pytest $(PYTEST_ARGS)

# The unit layer only (no processes, no browser): under 30 s.
test-fast: $(TEST_STAMP)
	$(BIN)/pytest -m unit -q $(PYTEST_ARGS)

clean:
	rm -rf $(VENV) var .pytest_cache .mypy_cache .ruff_cache .import_linter_cache $(PRISM_DIR)/node_modules
