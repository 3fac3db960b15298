# The two commands a fresh machine needs (Python 3.11+ and make): `make run` and `make test`.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: run test install install-dev lint bench clean

$(BIN)/notifier: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e .
	@touch $@

$(VENV)/.dev-installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[dev]'
	@touch $@

install: $(BIN)/notifier

install-dev: $(VENV)/.dev-installed

run: install
	$(BIN)/notifier dev

test: install-dev
	$(BIN)/python -m pytest

# The gate .ci/run passes before the tests: lint rules, formatting and strict types, all
# configured in pyproject.toml.
LINTED := notifier workers providers tests bench

lint: install-dev
	$(BIN)/ruff check $(LINTED)
	$(BIN)/ruff format --check $(LINTED)
	$(BIN)/mypy

clean:
	rm -rf $(VENV) .notifier .pytest_cache
