# Two commands set up a fresh machine: `make demo` (gateway + control room on the
# embedded default) and `make test` (the whole suite). Both create .venv when needed.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: install demo lint test bench clean

$(STAMP): pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -c constraints.txt -e '.[test]'
	touch $(STAMP)

install: $(STAMP)

# The gateway (serve --emulator) and the demo organisation's traffic together, with two
# weeks of history; Ctrl-C stops both. `sluicegate demo --help` for the knobs.
demo: $(STAMP)
	$(BIN)/sluicegate demo --serve --port $${PORT:-8340} --database-url sqlite:///./sluicegate.db \
		--admin-key-file .sluicegate-admin-key --keys-file .sluicegate-demo-keys.json \
		--backfill-days 14

lint: $(STAMP)
	$(BIN)/ruff check sluicegate tests bench
	$(BIN)/ruff format --check sluicegate tests bench
	$(BIN)/mypy

test: lint
	$(BIN)/python -m pytest $(PYTEST_ARGS)

bench: $(STAMP)
	$(BIN)/python bench/run.py

clean:
	rm -rf $(VENV) sluicegate.db sluicegate.db-* sluicegate-spool .pytest_cache \
		.sluicegate-demo-keys.json
