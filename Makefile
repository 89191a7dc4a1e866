# Two commands for a newcomer: `make run` and `make test`. Both set up .venv first.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
# The hotline itself (what `make run` needs), then the test and lint tools on top (what `make test` needs).
STAMP      := $(VENV)/.installed
TEST_STAMP := $(VENV)/.installed-test

PRISM_DIR   := tests/prism
PRISM_STAMP := $(PRISM_DIR)/node_modules/.installed

.PHONY: run test test-fast lint install clean prism

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
