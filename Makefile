# Two entry points on a fresh machine: `make run` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
# Stage commands call `python`: the venv's, with the venv first on PATH.
export PATH := $(CURDIR)/$(BIN):$(PATH)
# Every package at the version `make lock` resolved (CPython 3.11, Linux x86_64), torch 2.13.0
# among them: one pip call takes the local CPU wheel; an unpinned resolver would pull CUDA wheels.
LOCK := requirements.lock
TORCH := torch==2.13.0

.PHONY: run run-full test bench install lock clean

$(BIN)/dexlite: pyproject.toml $(LOCK)
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet -r $(LOCK)
	$(BIN)/pip install --quiet --no-deps --no-build-isolation -e .
	@touch $@

install: $(BIN)/dexlite

# Refresh the lock on purpose: resolve pyproject.toml's ranges afresh in a scratch venv.
lock:
	rm -rf .lock-venv && $(PYTHON) -m venv .lock-venv
	.lock-venv/bin/python -m pip install --quiet --upgrade pip
	.lock-venv/bin/pip install --quiet $(TORCH) -e ".[dev]"
	{ echo "# Every package of .venv, pinned. Refresh on purpose with \`make lock\`; installed by make install."; \
	  .lock-venv/bin/pip freeze --all --exclude-editable | sed 's/^\(torch==[^+]*\)+.*/\1/'; } > $(LOCK).tmp
	mv $(LOCK).tmp $(LOCK) && rm -rf .lock-venv

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
