# The two commands of the README:  `make run`  and  `make test`.
VENV    ?= .venv
PYTHON  ?= python3
PY      := $(VENV)/bin/python
STAMP   := $(VENV)/.installed
# A second C2PA implementation (pure TypeScript) the tests validate studio outputs with.
READERS := tests/readers/node_modules/.installed

.PHONY: run test lint bench setup clean

run: $(STAMP)            ## set everything up and start the studio on its embedded defaults
	$(VENV)/bin/studio up

test: $(STAMP) $(READERS)  ## the whole test suite (SQLite and PostgreSQL)
	$(PY) -m pytest -q -n 2 --dist loadgroup

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/mypy

bench: $(STAMP)
	$(PY) bench/consent.py

setup: $(STAMP) $(READERS)

# torch is pinned to the CPU build that lies on this machine's disk: an unpinned torch
# would pull a multi-GB CUDA build.
$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet torch==2.13.0
	$(PY) -m pip install --quiet -e '.[dev]'
	$(PY) -m pip install --quiet --no-deps 'invisible-watermark==0.2.0'
	touch $(STAMP)

# The locked versions, no package install scripts and no optional native addon (cbor-x runs
# in plain JavaScript). `npm install`, not `npm ci`: npm 11's ci refuses this lockfile over
# the per-platform optional packages of cbor-extract it never records.
$(READERS): tests/readers/package.json tests/readers/package-lock.json
	cd tests/readers && npm install --ignore-scripts --omit=optional --no-audit --no-fund \
	  --loglevel=error
	touch $(READERS)

clean:
	rm -rf $(VENV) tests/readers/node_modules studio-data .pytest_cache .mypy_cache .ruff_cache
