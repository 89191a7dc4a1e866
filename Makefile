# Two commands for a newcomer: `make run` and `make test`. Both set up .venv first.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

PRISM_DIR   := tests/prism
PRISM_STAMP := $(PRISM_DIR)/node_modules/.installed

.PHONY: run test install clean prism

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test]'
	touch $(STAMP)

install: $(STAMP)

# Twilio's REST API description as a test peer (tests/test_twilio_spec.py): Prism and Twilio's OpenAPI file, pinned by
# tests/prism/package-lock.json. Without npm that test is skipped with the reason (CI sets HOTLINE_REQUIRE_PRISM=1: it fails).
$(PRISM_STAMP): $(PRISM_DIR)/package.json $(PRISM_DIR)/package-lock.json
	@if command -v npm >/dev/null 2>&1; then \
	  npm ci --prefix $(PRISM_DIR) --ignore-scripts --no-audit --no-fund --loglevel=error && touch $@ \
	    || echo "npm ci failed in $(PRISM_DIR): tests/test_twilio_spec.py will be skipped (or fail, in CI)"; \
	else echo "npm not found: tests/test_twilio_spec.py (Twilio's API spec as a peer) will be skipped"; fi

prism: $(PRISM_STAMP)

run: $(STAMP)
	$(BIN)/hotline run

test: $(STAMP) $(PRISM_STAMP)
	$(BIN)/pytest $(PYTEST_ARGS)

clean:
	rm -rf $(VENV) var .pytest_cache $(PRISM_DIR)/node_modules
