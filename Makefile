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

demo: $(STAMP)
	$(BIN)/sluicegate serve --emulator --port $${PORT:-8340} --database-url sqlite:///./sluicegate.db \
		--admin-key-file .sluicegate-admin-key

lint: $(STAMP)
	$(BIN)/ruff check sluicegate tests bench
	$(BIN)/ruff format --check sluicegate tests bench
	$(BIN)/mypy

test: lint
	$(BIN)/python -m pytest $(PYTEST_ARGS)

bench: $(STAMP)
	$(BIN)/python bench/run.py

clean:
	rm -rf $(VENV) sluicegate.db sluicegate.db-* sluicegate-spool .pytest_cache
