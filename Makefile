# One-command entry points (README "Quick start"). Both run the idempotent setup first.
VENV ?= .venv
BIN := $(VENV)/bin
SPEC ?= examples/quickstart.yaml
OUT ?= runs/quickstart
PYTEST_ARGS ?=

.PHONY: setup run test lint typecheck pytest clean

setup:
	@VENV=$(VENV) scripts/setup.sh

run: setup
	$(BIN)/testbed run $(SPEC) --out $(OUT)

test: setup lint typecheck pytest

lint:
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck:
	$(BIN)/mypy

pytest:
	$(BIN)/pytest $(PYTEST_ARGS)

clean:
	rm -rf $(VENV) build *.egg-info .mypy_cache .ruff_cache .pytest_cache flowgraphs/generated
