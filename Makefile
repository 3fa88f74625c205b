# Two commands on a fresh machine: `make run` and `make test`. Everything else here is what they need.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-$(shell cat pyproject.toml | sha1sum | cut -c1-12)

.PHONY: run test setup system-deps rasa-env migrate clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test]'
	rm -f $(VENV)/.installed-*
	touch $(STAMP)

setup: $(STAMP)

# The browser, its fonts (Japanese, Chinese, Burmese) and PostgreSQL for the tests; skipped when present.
system-deps:
	@sh scripts/install-system-deps.sh

# A real Rasa 3.6 server's own virtual environment, outside the checkout, keyed by its pinned versions: built once
# (about 8 minutes), then reused. When it cannot be built the Rasa tests are skipped with the reason, unless
# MIRAI_REQUIRE_RASA=1 (CI), which makes this step fail.
rasa-env:
	@bash scripts/rasa-env.sh >/dev/null || [ -z "$$MIRAI_REQUIRE_RASA" ]

migrate: setup
	$(BIN)/mirai migrate

run: setup migrate
	$(BIN)/mirai serve

test: setup system-deps rasa-env
	$(BIN)/python -m pytest $(PYTEST_ARGS)

clean:
	rm -rf $(VENV) data test-artifacts .pytest_cache .hypothesis
