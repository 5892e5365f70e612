# strata: `make test` and `make demo` set everything up on a fresh machine, then run.
#
#   make test       install (once), then the test suite (slow model checks excluded)
#   make demo       install (once), then a short CNN training on MNIST with the default stack
#   make bench      benchmarks vs raw NumPy and PyTorch (BENCH_ARGS="--only overhead")
#   make validate   the slow model-training checks (pytest -m slow)
#   make clean      remove caches and benchmark output (keeps .venv); distclean also .venv
#
# Variables: PYTHON (interpreter that creates .venv), VENV, STRATA_DATA (datasets folder,
# default ../shared/data when it exists), TESTS (files or folders, default tests),
# PYTEST_ARGS (default -n 2: two worker processes; -rs: why tests skipped), BENCH_ARGS,
# DEMO_ARGS (e.g. DEMO_ARGS="--epochs 3 --backend 'Fusion(Autodiff(OpenCL()))'").

SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
# Re-install when the project's metadata changes; a second `make test` installs nothing.
STAMP := $(VENV)/.installed-test
TESTS ?= tests
PYTEST_ARGS ?= -n 2
# one BLAS thread per process: pytest workers and benchmark rows must not fight over 2 cores
export OPENBLAS_NUM_THREADS ?= 1

ifndef STRATA_DATA
ifneq ($(wildcard ../shared/data/.),)
export STRATA_DATA := $(abspath ../shared/data)
endif
endif

# wgpu's Vulkan driver (lavapipe) warns without a valid XDG_RUNTIME_DIR; give each run a
# private one that is removed afterwards.
WITH_RUNTIME_DIR = xdg=$$(mktemp -d); trap 'rm -rf "$$xdg"' EXIT; export XDG_RUNTIME_DIR=$$xdg;

.PHONY: help install system-deps test demo conformance bench validate clean distclean

help:
	@sed -n '1,/^$$/p' $(MAKEFILE_LIST) | sed -n 's/^# \{0,1\}//p'

$(PY):
	$(PYTHON) -m venv $(VENV)

$(STAMP): pyproject.toml | $(PY)
	$(PY) -m pip install --quiet -e '.[test]'
	touch $@

# Mesa's lavapipe is the Vulkan driver the WGPU backend's CI tests run on (no GPU needed).
system-deps:
	@if compgen -G '/usr/share/vulkan/icd.d/lvp_icd*.json' >/dev/null; then \
	  :; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	  echo "installing Mesa lavapipe (mesa-vulkan-drivers) for the WGPU backend"; \
	  { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
	      mesa-vulkan-drivers >/dev/null; } \
	  || echo "warning: could not install mesa-vulkan-drivers; WGPU tests will skip"; \
	else \
	  echo "note: Mesa lavapipe is not installed and this is not root, so WGPU tests will skip;"; \
	  echo "      install it with: sudo apt-get install mesa-vulkan-drivers"; \
	fi

install: $(STAMP) system-deps

test: install
	@$(WITH_RUNTIME_DIR) \
	echo "STRATA_DATA=$${STRATA_DATA:-<unset: tests that need MNIST skip>}"; \
	rc=0; $(PY) -m pytest --tb=short $(PYTEST_ARGS) $(TESTS) || rc=$$?; \
	if [ $$rc = 5 ]; then echo "error: pytest collected no tests" >&2; fi; \
	[ $$rc = 0 ] || echo "pytest exited with status $$rc" >&2; \
	exit $$rc

# The main job: a short CNN training on MNIST with the default stack (Autodiff(NumPy())),
# printing per-epoch loss, test accuracy and time. MNIST comes from STRATA_DATA, else the
# cache directory, else a download. DEMO_ARGS adds or overrides CLI options.
DEMO_ARGS ?=
demo: install
	@$(WITH_RUNTIME_DIR) $(PY) -m strata train --model cnn --epochs 1 --out runs/demo $(DEMO_ARGS)

# The conformance table of every stack this machine can build (slow: ~20 stacks).
conformance: install
	@$(WITH_RUNTIME_DIR) $(PY) -m strata.testing --all

bench: install
	@$(WITH_RUNTIME_DIR) $(PY) -m bench $(BENCH_ARGS)

validate: install
	@$(WITH_RUNTIME_DIR) $(PY) -m pytest -m slow $(PYTEST_ARGS) $(TESTS)

clean:
	rm -rf bench/out .pytest_cache .hypothesis build dist
	find . -path ./$(VENV) -prune -o -name __pycache__ -type d -prune -exec rm -rf {} +

distclean: clean
	rm -rf $(VENV)
