# customer-manager: common tasks. `make test` is the test command CI runs (with CI=true).
PY ?= python3
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: venv test lint unit run bench clean

$(BIN)/customer-control: setup.cfg pyproject.toml
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[test,dev]'
	touch $@

venv: $(BIN)/customer-control

lint: venv
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy --strict customer_manager

test: venv lint
	$(BIN)/python -m customer_manager.launch pytest -q -p no:cacheprovider

unit: venv
	$(BIN)/pytest -q tests/unit tests/contract

run: venv
	$(BIN)/customer-control customer list

bench: venv
	$(BIN)/python -m bench.run

clean:
	rm -rf $(VENV) *.egg-info .mypy_cache .ruff_cache customer-manager.sqlite3
