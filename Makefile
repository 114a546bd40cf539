# The two set-up commands of the README are `make serve` and `make test`; both create .venv.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
PG_URL ?= postgresql+psycopg://postgres@127.0.0.1:5432/cmo_ledger_test

.PHONY: serve test lint typecheck unit slow reliability bench clean demo

$(BIN)/cmo-ledger: pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $@

serve: $(BIN)/cmo-ledger
	$(BIN)/cmo-ledger serve --init-if-missing

demo: $(BIN)/cmo-ledger
	$(BIN)/cmo-ledger demo

test: $(BIN)/cmo-ledger lint typecheck unit

lint: $(BIN)/cmo-ledger
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports

typecheck: $(BIN)/cmo-ledger
	$(BIN)/mypy

unit: $(BIN)/cmo-ledger
	CMO_TEST_PG_URL=$(PG_URL) $(BIN)/pytest -n 2 --dist loadgroup --durations=20

slow: $(BIN)/cmo-ledger
	CMO_TEST_PG_URL=$(PG_URL) CMO_TEST_SLOW=1 $(BIN)/pytest -n 2 --dist loadgroup -m slow

# The reliability suites in full, one test at a time: the PostgreSQL restart among them
# disturbs whatever else uses the cluster. The figures are printed at the end.
reliability: $(BIN)/cmo-ledger
	CMO_TEST_PG_URL=$(PG_URL) CMO_TEST_SLOW=1 CMO_TEST_PG_RESTART=1 $(BIN)/pytest -n 0 tests/reliability

bench: $(BIN)/cmo-ledger
	$(BIN)/python -m bench

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
