# Relais: `make run` (console without credentials, the bot with DISCORD_TOKEN) and `make test`.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# The pinned versions, with hashes, of everything `make` installs (`make lock` refreshes them).
LOCK := requirements-dev.lock
# The other Pythons the project declares (pyproject.toml, requires-python): `make test-all`.
OTHER_PYTHONS ?= 3.12 3.13
# pytest workers: 2 halves a quiet run on two cores; `make test WORKERS=0` runs in one process.
WORKERS ?= 2

.PHONY: run test test-other test-all typecheck lint format lock wheel bench clean

$(STAMP): pyproject.toml $(LOCK)
	@echo "Installing Relais and its dependencies in $(VENV) (first run only, about a minute)..."
	@$(PYTHON) -m venv $(VENV)
	@$(BIN)/python -m pip install -qq --upgrade pip
	@$(BIN)/python -m pip install -qq --require-hashes -r $(LOCK)
	@$(BIN)/python -m pip install -qq --no-deps -e .
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
	$(BIN)/mypy
	$(BIN)/python -m pytest -n $(WORKERS)

typecheck: $(STAMP)
	$(BIN)/mypy

# The tests on every other declared Python, each in its own venv (.venv-3.12, .venv-3.13) made
# from the same lock; a Python this machine lacks is reported and skipped.
test-other:
	@for version in $(OTHER_PYTHONS); do \
		pyenv=$$(pyenv versions --bare 2>/dev/null | grep -E "^$$version\." | tail -1); \
		if [ -n "$$pyenv" ]; then export PYENV_VERSION=$$pyenv; fi; \
		if ! python$$version -c "" 2>/dev/null; then \
			echo "== Python $$version: SKIPPED, python$$version not found"; continue; \
		fi; \
		echo "== Python $$version"; \
		$(MAKE) --no-print-directory PYTHON=python$$version VENV=.venv-$$version \
			.venv-$$version/.installed || exit 1; \
		.venv-$$version/bin/python -m pytest -n $(WORKERS) || exit 1; \
	done

# What CI runs: `make test`, then the tests on the other declared Pythons.
test-all: test test-other

lint: $(STAMP)
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

# Refresh the pinned versions (one resolution valid on every declared Python and platform).
lock: $(STAMP)
	$(BIN)/uv pip compile pyproject.toml --universal --generate-hashes --python-version 3.11 \
		--custom-compile-command "make lock" -q -o requirements.lock
	$(BIN)/uv pip compile pyproject.toml --extra dev --universal --generate-hashes \
		--python-version 3.11 --custom-compile-command "make lock" -q -o requirements-dev.lock

# The wheel the Docker image installs (dist/relais-VERSION-py3-none-any.whl).
wheel: $(STAMP)
	rm -rf dist build
	$(BIN)/python -m pip wheel -q --no-deps -w dist .

bench: $(STAMP)
	@for script in bench/bench_*.py; do echo "== $$script"; $(BIN)/python $$script || exit 1; done

clean:
	rm -rf $(VENV) .venv-3.* .pytest_cache .ruff_cache .mypy_cache *.egg-info build dist
