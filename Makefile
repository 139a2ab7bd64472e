# Paysheet developer commands. Everything runs from ./.venv, which `make install` creates.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: install run test bench lint fmt clean mutation

install: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

## make run: embedded PostgreSQL (or $$DATABASE_URL), migrations, demo tenant, server on :8000
run: install
	$(BIN)/paysheet serve

## make test: the whole suite against real PostgreSQL and Redis (started if none runs)
test: install
	$(BIN)/python -m pytest -p no:cacheprovider -n 2 --dist loadfile

bench: install
	$(BIN)/python bench/engine.py
	$(BIN)/python bench/uploads.py
	$(BIN)/python bench/runs.py
	$(BIN)/python bench/reports.py
	$(BIN)/python bench/export_api.py
	$(BIN)/python bench/excel_audit.py
	$(BIN)/python bench/api.py
	$(BIN)/python bench/deferrals.py
	$(BIN)/python bench/pii.py

## make mutation: mutmut over engine/ ([tool.mutmut], docs/engine.md); resumes where it stopped
MUTATION_CHILDREN ?= 1
mutation: install
	PAYSHEET_HYPOTHESIS_PROFILE=mutation POLARS_MAX_THREADS=1 \
		$(BIN)/mutmut run --max-children $(MUTATION_CHILDREN)
	$(BIN)/mutmut results

lint: install
	$(BIN)/ruff check .

fmt: install
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache .hypothesis
