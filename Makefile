# Two commands for a fresh machine: `make run` and `make test`.
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed-stamp
STORE  ?= sqlite:///arrears.db
ACCOUNTS ?= 300

.PHONY: run test lint bench clean

EXAMPLE := examples/arrears-plugin-holidays

$(STAMP): pyproject.toml $(EXAMPLE)/pyproject.toml
	python3 -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[test]'
	$(PY) -m pip install --quiet -e $(EXAMPLE)
	touch $(STAMP)

run: $(STAMP)
	$(VENV)/bin/arrears serve --demo --demo-accounts $(ACCOUNTS) --store $(STORE)

# The main suite, then the example plugin's (its own rootdir; it uses the test kit Arrears ships).
test: $(STAMP)
	$(VENV)/bin/pytest -q
	$(VENV)/bin/pytest -q $(EXAMPLE)/tests

lint: $(STAMP)
	$(VENV)/bin/ruff check ledger
	$(VENV)/bin/mypy

bench: $(STAMP)
	$(PY) -m bench

clean:
	rm -rf $(VENV) *.egg-info arrears.db arrears.db-wal arrears.db-shm
