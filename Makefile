# The two commands of the README:  `make run`  and  `make test`.
VENV    ?= .venv
PYTHON  ?= python3
PY      := $(VENV)/bin/python
STAMP   := $(VENV)/.installed

.PHONY: run test lint bench setup clean

run: $(STAMP)            ## set everything up and start the studio on its embedded defaults
	$(VENV)/bin/studio up

test: $(STAMP)           ## the whole test suite (SQLite and PostgreSQL)
	$(PY) -m pytest -q -n 2

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/mypy

bench: $(STAMP)
	$(PY) bench/consent.py

setup: $(STAMP)

# torch is pinned to the CPU build that lies on this machine's disk: an unpinned torch
# would pull a multi-GB CUDA build.
$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet torch==2.13.0
	$(PY) -m pip install --quiet -e '.[dev]'
	$(PY) -m pip install --quiet --no-deps 'invisible-watermark==0.2.0'
	touch $(STAMP)

clean:
	rm -rf $(VENV) studio-data .pytest_cache .mypy_cache .ruff_cache
