# The two commands a newcomer needs: `make demo` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
# The stamp is older than pyproject.toml whenever dependencies changed: reinstall then.
STAMP := $(VENV)/.installed

.PHONY: demo test lint unit install clean bench screenshots histories

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(BIN)/docpipe demo

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

test: lint
	$(BIN)/pytest -q

# Benchmarks, one script per line; each ends its output with a JSON line of its figures.
BENCH_SCRIPTS += bench/intake.py
BENCH_SCRIPTS += bench/pages.py
BENCH_SCRIPTS += bench/small.py
BENCH_SCRIPTS += bench/crash.py
BENCH_SCRIPTS += bench/repair.py

bench: $(STAMP)
	@set -e; for script in $(BENCH_SCRIPTS); do echo "== $$script"; $(BIN)/python $$script; done

# Re-record the workflow histories that `make test` replays (docs/ARCHITECTURE.md says
# when: only after making a workflow change replay-safe for the old ones).
histories: $(STAMP)
	$(BIN)/python -m tests.support.histories

# Pictures of the Temporal UI for the docs (needs Debian's chromium).
screenshots: $(STAMP)
	$(BIN)/python -m infra.app.screenshots --out docs

clean:
	rm -rf $(VENV) .docpipe .pytest_cache .mypy_cache .ruff_cache
