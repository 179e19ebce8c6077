# Two entry points on a fresh machine: `make run` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
# Stage commands call `python`: the venv's, with the venv first on PATH.
export PATH := $(CURDIR)/$(BIN):$(PATH)
# torch is pinned in the same pip call: an unpinned resolver would pull CUDA wheels.
TORCH := torch==2.13.0

.PHONY: run run-full test bench install clean

$(BIN)/dexlite: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet $(TORCH) -e ".[dev]"
	@touch $@

install: $(BIN)/dexlite

run: install
	$(BIN)/dvc repro

# The GPU-scale configuration as a DVC experiment named `full` (overrides in params-full.yaml).
run-full: install
	$(BIN)/dvc exp run -n full $$($(BIN)/python -m dexlite_core.params params-full.yaml)

test: install
	$(BIN)/python -m pytest -q

bench: install
	for b in bench/bench_*.py; do $(BIN)/python $$b || exit 1; done

clean:
	rm -rf $(VENV) .pytest_cache
