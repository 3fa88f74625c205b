# Two commands on a fresh machine: `make run` and `make test`. Everything else here is what they need.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-$(shell cat pyproject.toml | sha1sum | cut -c1-12)

.PHONY: run test setup system-deps migrate clean

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

migrate: setup
	$(BIN)/mirai migrate

run: setup migrate
	$(BIN)/mirai serve

test: setup system-deps
	$(BIN)/python -m pytest $(PYTEST_ARGS)

clean:
	rm -rf $(VENV) data test-artifacts .pytest_cache .hypothesis
