# Two commands for a fresh Linux machine: `make demo` and `make test`.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
# Debian packages the platform runs on: sandboxes (bubblewrap; prlimit and taskset from util-linux),
# notebook volumes encrypted at rest (gocryptfs over FUSE), team git, the HSM for tests, the
# browser for console/report tests, a one-connection load tool for benchmarks.
APT_PACKAGES := bubblewrap util-linux git gocryptfs fuse3 softhsm2 chromium chromium-driver wrk
PYTEST_ARGS ?=
# Two test processes: most integration tests wait on servers, sandboxes and jobs, so two keep both
# cores busy; a module's fixtures stay in one process (loadfile). PYTEST_WORKERS=0 runs in one.
PYTEST_WORKERS ?= 2

.PHONY: setup system-packages demo test lint bench clean

setup: system-packages $(VENV)/.installed

system-packages:
	@missing=""; for p in $(APT_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = "0" ]; then \
	    echo "installing Debian packages:$$missing"; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing; \
	  else \
	    echo "missing Debian packages:$$missing (run as root, or: sudo apt-get install$$missing)"; \
	  fi; \
	fi

$(VENV)/.installed: pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[dev]'
	touch $@

demo: setup
	$(BIN)/strongroom demo

test: setup
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/mypy
	$(BIN)/mypy tests/typing
	$(BIN)/python -m pytest -n $(PYTEST_WORKERS) --dist loadfile $(PYTEST_ARGS)

lint: setup
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/mypy
	$(BIN)/mypy tests/typing

# benchmarks/_*.py are helpers the benchmarks start (servers, the harness), not benchmarks.
bench: setup
	for b in benchmarks/[a-z]*.py; do $(BIN)/python $$b || exit 1; done

clean:
	rm -rf $(VENV) build *.egg-info strongroom-demo-report
