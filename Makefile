# Relais: `make run` (console without credentials, the bot with DISCORD_TOKEN) and `make test`.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test lint format bench clean

$(STAMP): pyproject.toml
	@echo "Installing Relais and its dependencies in $(VENV) (first run only, about a minute)..."
	@$(PYTHON) -m venv $(VENV)
	@$(BIN)/python -m pip install -qq --upgrade pip
	@$(BIN)/python -m pip install -qq -e '.[dev]'
	@touch $(STAMP)

run: $(STAMP)
	@if [ -n "$$DISCORD_TOKEN" ] || grep -Eq '^DISCORD_TOKEN=.+' .env 2>/dev/null; then \
		$(BIN)/relais run; \
	else \
		$(BIN)/relais console; \
	fi

test: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/python -m pytest

lint: $(STAMP)
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

bench: $(STAMP)
	@for script in bench/bench_*.py; do echo "== $$script"; $(BIN)/python $$script || exit 1; done

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache *.egg-info
