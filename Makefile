# The two commands of the README: `make up` (the platform, locally) and `make test` (everything).
# Both install what they need; nothing here relies on what happened to be installed by hand.
SHELL := /bin/bash
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: up down status test lint unit integration crds tools cluster-build cluster-up cluster-down venv clean

venv: $(STAMP)

# Reinstall when the package's metadata changes.
$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

up: venv
	$(BIN)/vibeplane up

down: venv
	$(BIN)/vibeplane down

status: venv
	$(BIN)/vibeplane status

# Generated from the code: crds/, charts/vibeplane/crds/, the workspace ClusterRoles.
crds: venv
	$(BIN)/vibeplane manifests

lint: venv
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

# The control plane is built before pytest starts (cached by source hash), so no test waits on
# a cold build; the session fixture starts the cluster (or reuses a running one).
cluster-build: venv
	$(BIN)/vibeplane cluster build

cluster-up: venv
	$(BIN)/vibeplane cluster up

cluster-down: venv
	$(BIN)/vibeplane cluster down

tools: venv
	$(BIN)/vibeplane cluster tools

unit: venv
	$(BIN)/pytest tests/unit

integration: cluster-build
	$(BIN)/pytest tests/integration

test: lint cluster-build
	$(BIN)/pytest tests

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
