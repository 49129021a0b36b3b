# Every target does its own set-up: a fresh clone needs only `make demo` or `make test`.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: demo test lint bench docs install clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[all,dev,docs]'
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(PY) -m nvcf_helpers.demo

lint: $(STAMP)
	$(PY) -m ruff check .
	$(PY) -m ruff format --check nvcf_helpers tests benchmarks
	$(PY) -m mypy

test: lint
	$(PY) -m pytest

# One line per figure: its value, its bound, met or MISSED. Servers log to build/bench-logs/.
bench: $(STAMP)
	@status=0; for script in helpers runtime_adapters templates local instances grpc_proxy examples; do \
		$(PY) benchmarks/$$script.py || status=1; done; exit $$status

# The documentation site, into site/; strict: any warning fails the build.
docs: $(STAMP)
	NO_MKDOCS_2_WARNING=1 $(PY) -m mkdocs build --strict

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
