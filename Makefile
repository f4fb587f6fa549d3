# Voxdesk — two commands: `make run` and `make test`. Everything else here serves them.
SHELL := /bin/bash
PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip
VOXDESK := $(VENV)/bin/voxdesk
STAMP := $(VENV)/.voxdesk-installed
DEV_STAMP := $(VENV)/.voxdesk-dev-installed
# System packages (installed with apt-get when missing and running as root): what `voxdesk demo call` uses, and
# what the test suite drives.
RUN_SYSTEM_PACKAGES := baresip espeak-ng
TEST_SYSTEM_PACKAGES := $(RUN_SYSTEM_PACKAGES) chromium chromium-driver sip-tester kamailio sox fonts-wqy-microhei
export HF_HUB_OFFLINE := 1
export PYANNOTE_METRICS_ENABLED := 0
export VOXDESK_SHARED_DATA ?= $(abspath ../shared/data)

.PHONY: run test setup setup-dev system-packages provision lint typecheck imports unit integration clean help

help:
	@echo "make run   - set up and start voxdesk serve (SQLite, demo bank) on http://127.0.0.1:8000/"
	@echo "make test  - set up (incl. system packages) and run linters, type checks and the whole test suite"

run: setup provision
	@$(MAKE) --no-print-directory system-packages SYSTEM_PACKAGES="$(RUN_SYSTEM_PACKAGES)" SYSTEM_PACKAGES_OPTIONAL=1
	$(VOXDESK) serve

test: setup-dev system-packages provision lint typecheck imports
	$(PY) -m pytest -q

$(VENV)/bin/python:
	$(PYTHON) -m venv $(VENV)
	$(PIP) install -q --upgrade pip

# Reinstall when pyproject.toml changes.
# torch first and pinned: 2.13.0 is the CPU build (any other spec pulls a multi-GB CUDA build).
# face-recognition goes in with --no-deps: its dlib requirement would compile dlib (dlib-bin is used instead).
$(STAMP): pyproject.toml | $(VENV)/bin/python
	$(PIP) install -q torch==2.13.0
	$(PIP) install -q -e '.[runtime]'
	$(PIP) install -q --no-deps face-recognition==1.3.0
	touch $@

$(DEV_STAMP): pyproject.toml $(STAMP)
	$(PIP) install -q -e '.[runtime,dev]'
	touch $@

setup: $(STAMP)

setup-dev: $(DEV_STAMP)

SYSTEM_PACKAGES ?= $(TEST_SYSTEM_PACKAGES)
system-packages:
	@missing=""; for p in $(SYSTEM_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = 0 ]; then echo "installing:$$missing"; apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null; \
	  else echo "missing system packages:$$missing (run as root or install them: apt-get install$$missing)"; \
	    [ -n "$(SYSTEM_PACKAGES_OPTIONAL)" ] || exit 1; fi; \
	fi

provision: setup
	$(VOXDESK) models provision

lint:
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

typecheck:
	$(VENV)/bin/mypy

imports:
	$(VENV)/bin/lint-imports

unit: setup-dev
	$(PY) -m pytest -q -m unit

integration: setup-dev system-packages provision
	$(PY) -m pytest -q -m integration

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
