# ocpp-proxy: build, test, run.
#
#   make test     Python venv (only when requirements changed), swift build, swift test, interop suite
#   make build    swift build
#   make run      run the proxy with Config/proxy.yaml (CONFIG=... to choose another file)
#   make interop  the Python interop suite only, against .build/debug/ocpp-proxy
#                 (OCPP_PROXY_BIN=... to test another binary, PYTEST_ARGS=... to pass options)
#   make fuzz     the long fuzz pass of the real binary: FRAMES (default 1000000) per mode and side, SEED
#   make libfuzzer  the libFuzzer targets in .build-fuzz, FUZZ_SECONDS (default 300) each
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

FRAMES ?= 1000000
SEED ?= 20261130
FUZZ_SECONDS ?= 300

.PHONY: syslibs test build run interop venv clean fuzz libfuzzer

venv:
	@if [ ! -x "$(VENV_PY)" ] || ! cmp -s "$(REQUIREMENTS)" "$(VENV_STAMP)"; then \
		echo "==> setting up $(VENV) from $(REQUIREMENTS)"; \
		$(PYTHON) -m venv "$(VENV)" \
		&& "$(VENV_PY)" -m pip install --disable-pip-version-check --quiet -r "$(REQUIREMENTS)" \
		&& cp "$(REQUIREMENTS)" "$(VENV_STAMP)"; \
	else \
		echo "==> $(VENV) is up to date"; \
	fi

# The system libraries the package links (SwiftPM's pkg-config lookups): libxml2 (OCPPSOAP) and zlib (request
# decompression). Debian's Swift machines have both; a machine without them gets them when it can install.
syslibs:
	@if ! pkg-config --exists libxml-2.0 zlib 2>/dev/null; then \
		echo "==> installing libxml2-dev zlib1g-dev pkg-config"; \
		apt-get update -qq && apt-get install -y -qq libxml2-dev zlib1g-dev pkg-config; \
	fi

build: syslibs
	swift build

test: venv syslibs
	swift build
	swift test
	"$(VENV_PY)" -m pytest Tests/Interop -q $(PYTEST_ARGS)

interop: venv
	"$(VENV_PY)" -m pytest Tests/Interop -q $(PYTEST_ARGS)

fuzz: venv
	swift build
	"$(VENV_PY)" Tests/Fuzz/fuzz_proxy.py --seed $(SEED) --frames $(FRAMES) --keep-going 20 --json fuzz-long.json

libfuzzer:
	Tests/Fuzz/run_libfuzzer.sh $(FUZZ_SECONDS)

run:
	swift run ocpp-proxy serve --config "$(CONFIG)"

clean:
	rm -rf .build "$(VENV)" .pytest_cache Tests/Interop/.pytest_cache
	find Tests tools -name __pycache__ -type d -prune -exec rm -rf {} +
