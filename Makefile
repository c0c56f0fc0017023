# ocpp-proxy: build, test, run.
#
#   make test     Python venv (only when requirements changed), swift build, swift test, interop suite
#   make build    swift build
#   make run      run the proxy with Config/proxy.yaml (CONFIG=... to choose another file)
#   make interop  the Python interop suite only, against .build/debug/ocpp-proxy
#                 (OCPP_PROXY_BIN=... to test another binary, PYTEST_ARGS=... to pass options)
#   make clean    remove build products, the venv and test caches

SHELL := /bin/bash
.DEFAULT_GOAL := test

PYTHON ?= python3
VENV := .venv
VENV_PY := $(VENV)/bin/python
REQUIREMENTS := Tests/Interop/requirements.txt
# a copy of the requirements the venv was built from: reinstall only when they differ
VENV_STAMP := $(VENV)/.installed-requirements.txt
CONFIG ?= Config/proxy.yaml
PYTEST_ARGS ?=

.PHONY: test build run interop venv clean

venv:
	@if [ ! -x "$(VENV_PY)" ] || ! cmp -s "$(REQUIREMENTS)" "$(VENV_STAMP)"; then \
		echo "==> setting up $(VENV) from $(REQUIREMENTS)"; \
		$(PYTHON) -m venv "$(VENV)" \
		&& "$(VENV_PY)" -m pip install --disable-pip-version-check --quiet -r "$(REQUIREMENTS)" \
		&& cp "$(REQUIREMENTS)" "$(VENV_STAMP)"; \
	else \
		echo "==> $(VENV) is up to date"; \
	fi

build:
	swift build

test: venv
	swift build
	swift test
	"$(VENV_PY)" -m pytest Tests/Interop -q $(PYTEST_ARGS)

interop: venv
	"$(VENV_PY)" -m pytest Tests/Interop -q $(PYTEST_ARGS)

run:
	swift run ocpp-proxy serve --config "$(CONFIG)"

clean:
	rm -rf .build "$(VENV)" .pytest_cache Tests/Interop/.pytest_cache
	find Tests tools -name __pycache__ -type d -prune -exec rm -rf {} +
