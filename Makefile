# The two commands a newcomer needs: `make demo` and `make test`.
# Both install exactly what uv.lock pins (with hashes), so a fresh clone runs what CI tested.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
# uv installs from the lock; it is itself installed pinned and hash-checked, beside the
# project's environment (not in it, so that a sync never removes it).
UV_VERSION := 0.13.9
UV_HASHES := \
	--hash=sha256:d7f459fe4fd247d830351c75686d3996ace3c6f3f728eb0e85a30b7ada0cef19 \
	--hash=sha256:5435c5ce14a56431208ca0996416d310f1598e8c2c8ba707688985a16bb82dbe
UV_DIR := $(VENV)/uv
UV := $(UV_DIR)/bin/uv
export UV_PROJECT_ENVIRONMENT := $(abspath $(VENV))
export UV_PYTHON_DOWNLOADS := never
# Bytecode compiled once at install, and written for our own modules as they are first
# imported: the tests start hundreds of Python processes, and compiling every module
# anew in each of them (as PYTHONDONTWRITEBYTECODE makes Python do) doubles their CPU.
export UV_COMPILE_BYTECODE := 1
unexport PYTHONDONTWRITEBYTECODE
# The stamp is older than pyproject.toml or uv.lock whenever dependencies changed.
STAMP := $(VENV)/.installed
# Test processes at once: the integration tests mostly wait on servers and processes,
# so more than cores; work stealing keeps every process busy to the end. Not many more:
# each process runs a stack of its own (Temporal, broker, S3), and the suite is bound by
# CPU. On a machine busy with other work, four took 5 min 13 s and 5 min 35 s where six,
# run between them, took 6 min 10 s.
TEST_WORKERS ?= 4
PYTEST_PARALLEL := -n $(TEST_WORKERS) --dist worksteal

.PHONY: demo test lint unit install lock upgrade clean bench screenshots histories

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(UV): | $(BIN)/python
	echo "uv==$(UV_VERSION) $(UV_HASHES)" > $(VENV)/uv-requirements.txt
	$(BIN)/python -m pip install --quiet --no-deps --require-hashes \
		--target $(UV_DIR) -r $(VENV)/uv-requirements.txt

$(STAMP): pyproject.toml uv.lock | $(UV)
	@$(UV) lock --check --offline --quiet 2>/dev/null || { \
		echo "uv.lock does not match pyproject.toml: run 'make lock' and commit uv.lock"; \
		exit 1; }
	$(UV) sync --frozen --quiet --extra dev --python $(BIN)/python
	touch $(STAMP)

install: $(STAMP)

# After changing dependencies in pyproject.toml: the smallest change to uv.lock that fits.
lock: | $(UV)
	$(UV) lock

# Every dependency to the newest version pyproject.toml allows, then the whole suite.
upgrade: | $(UV)
	$(UV) lock --upgrade
	$(MAKE) test

demo: $(STAMP)
	$(BIN)/docpipe demo

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

# The suite, with lint: ruff first (a second), mypy beside the tests (its time is then not
# added to theirs); both must pass.
test: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	@($(BIN)/mypy > $(VENV)/mypy.log 2>&1; echo $$? > $(VENV)/mypy.status) & \
	$(BIN)/pytest -q $(PYTEST_PARALLEL) --durations=10; tests=$$?; wait; \
	echo "mypy:"; cat $(VENV)/mypy.log; \
	[ "$$(cat $(VENV)/mypy.status)" = 0 ] && exit $$tests || exit 1

# The quick loop: everything but the integration tests (no servers).
unit: $(STAMP)
	$(BIN)/pytest -q $(PYTEST_PARALLEL) --ignore=tests/integration

# Benchmarks, one script per line; each ends its output with a JSON line of its figures.
BENCH_SCRIPTS += bench/intake.py
BENCH_SCRIPTS += bench/pages.py
BENCH_SCRIPTS += bench/small.py
BENCH_SCRIPTS += bench/crash.py
BENCH_SCRIPTS += bench/repair.py
BENCH_SCRIPTS += bench/ocr.py

bench: $(STAMP)
	@set -e; for script in $(BENCH_SCRIPTS); do echo "== $$script"; $(BIN)/python $$script; done

# Re-record the workflow histories that `make test` replays (docs/ARCHITECTURE.md says
# when: only after making a workflow change replay-safe for the old ones).
histories: $(STAMP)
	$(BIN)/python -m tests.support.histories

# Pictures of the Temporal UI and the review page for the docs (needs Debian's chromium).
screenshots: $(STAMP)
	$(BIN)/python -m app.screenshots --out docs

clean:
	rm -rf $(VENV) .docpipe .pytest_cache .mypy_cache .ruff_cache
