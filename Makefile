# One way to set up, run and test the workbench. Every target installs what it needs.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test lint bench clean system-deps mutation

$(STAMP): requirements.txt requirements-dev.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r requirements.txt -r requirements-dev.txt
	touch $(STAMP)

# Local Spark's server that stays up (Spark Connect, on 127.0.0.1): large local jobs are its clients and start
# no JVM of their own. `make run ORCHESTRATOR_SPARK_CONNECT=` runs each local Spark job in a JVM of its own.
run: export ORCHESTRATOR_SPARK_CONNECT ?= sc://127.0.0.1:15002

# The workbench and, beside it, the scheduler that cleans queued jobs on their schedules and the local Spark
# Connect server; all stop together.
run: $(STAMP)
	$(BIN)/python -m orchestrator.cleaning.spark.connect & spark=$$!; \
		$(BIN)/python -m orchestrator worker & worker=$$!; \
		trap 'kill $$worker $$spark 2>/dev/null' EXIT INT TERM; \
		$(BIN)/streamlit run app.py

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

# What the tests need from the system: Debian's chromium for the browser tests (node and npm, for Azurite,
# come with the machine; the tests install Azurite from package-lock.json and start MariaDB if it is down).
system-deps:
	@command -v chromium >/dev/null && command -v chromedriver >/dev/null || \
		(apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver)

test: $(STAMP) lint system-deps
	$(BIN)/python -m pytest

# Mutation testing of the correctness core (docs/testing.md); MODULE=orchestrator/cleaning/columns.py runs one,
# CHILDREN=1 runs one test process at a time (default: one per core).
mutation: $(STAMP)
	$(BIN)/python tools/mutation.py $(if $(CHILDREN),--max-children $(CHILDREN)) $(MODULE)

bench: $(STAMP)
	$(BIN)/python bench/generation.py

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache test-output mutants
