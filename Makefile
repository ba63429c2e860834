# The two commands a newcomer needs: `make run` and `make test`.
# Each sets up whatever is missing first (virtualenv, dependencies), so both work on a fresh clone.

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test lint format bench bench-import bench-pages clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

# Reinstall only when the dependency list changes.
$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

run: $(STAMP)
	$(BIN)/merumaga setup
	$(BIN)/merumaga run

test: $(STAMP)
	$(BIN)/pytest $(PYTEST_ARGS)

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

format: $(STAMP)
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

# The delivery benchmark; e.g. make bench BENCH_ARGS="--n 100000 --backend postgres --sink aiosmtpd"
bench: $(STAMP)
	$(BIN)/python bench/delivery.py $(BENCH_ARGS)

bench-import: $(STAMP)
	$(BIN)/python bench/import_subscribers.py $(BENCH_ARGS)

bench-pages: $(STAMP)
	$(BIN)/python bench/pages.py $(BENCH_ARGS)

clean:
	rm -rf $(VENV) var
