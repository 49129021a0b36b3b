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

# The browser tests drive Debian's Chromium and its driver: installed here when missing
# (as root, with apt); elsewhere those tests say how to install them, and fail under CI=true.
test: lint
	@command -v chromium >/dev/null && command -v chromedriver >/dev/null || \
	if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
		echo "installing chromium and chromium-driver for the browser tests"; \
		{ apt-get update -qq && DEBIAN_FRONTEND=noninteractive \
			apt-get install -y -qq --no-install-recommends chromium chromium-driver >/dev/null; } || \
		echo "could not install chromium and chromium-driver: the browser tests will say so"; \
	fi
	$(PY) -m pytest

# One line per figure: its value, its bound, met or MISSED. Servers log to build/bench-logs/.
bench: $(STAMP)
	@status=0; for script in helpers runtime_adapters templates fastapi_template local observability instances grpc_proxy examples; do \
		$(PY) benchmarks/$$script.py || status=1; done; exit $$status

# The documentation site, into site/; strict: any warning fails the build.
docs: $(STAMP)
	NO_MKDOCS_2_WARNING=1 $(PY) -m mkdocs build --strict

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
