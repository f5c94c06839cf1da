# gpskit developer commands. `make demo` and `make test` work on a fresh clone.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.gpskit-installed

.PHONY: setup test test-fast lint typecheck unit unit-fast demo bench fuzz clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[train,tensorboard,dev]'
	touch $(STAMP)

setup: $(STAMP)

lint: setup
	$(BIN)/ruff check gpskit tests benchmarks

typecheck: setup
	$(BIN)/mypy

unit: setup
	$(BIN)/pytest -q

test: lint typecheck unit  ## everything, as CI runs it (slow tests too)

unit-fast: setup
	$(BIN)/pytest -q -m "not slow"

test-fast: lint typecheck unit-fast  ## for the edit-test loop: skips @pytest.mark.slow (training, kills, demo, browser)

fuzz: setup  ## the long fuzz budget (thousands of hostile files); `make test` runs a short one
	GPSKIT_FUZZ=long $(BIN)/pytest -q -p no:warnings tests/test_fuzz.py

demo: setup
	$(BIN)/gpskit demo --out demo

bench: setup
	$(BIN)/python benchmarks/bench_ingest.py

clean:
	rm -rf demo gpskit-data .pytest_cache .mypy_cache .ruff_cache
