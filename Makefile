# The two commands of the README: `make up` (the platform, locally) and `make test` (everything).
# Both install what they need; nothing here relies on what happened to be installed by hand.
SHELL := /bin/bash
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: node-build gateway-build chart-images system-packages runsc test-hf test-train test-slow up down status test lint unit integration crds tools cluster-build cluster-up cluster-down venv clean

venv: $(STAMP)

# Reinstall when a package's metadata changes. The development platform (hack/) and the runtime
# packages are installed in the same command so that their `vibeplane` dependency resolves to
# this checkout, never an index.
# The model server brings kserve (+260 MB); its huggingface extra (torch, +5.5 GB of CUDA
# wheels) is left to `make test-hf`.
$(STAMP): pyproject.toml hack/pyproject.toml runtime/modelserver/pyproject.toml runtime/sandbox/pyproject.toml runtime/trainer/pyproject.toml runtime/frontdoor/pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]' -e hack -e runtime/modelserver -e runtime/sandbox -e runtime/trainer -e runtime/frontdoor
	touch $(STAMP)

# Debian packages, installed once and only when missing (one apt-get update): runsc (gVisor)
# for the local preview node, and Chromium for the end-to-end test that loads the app.
define apt_install
	missing=""; for p in $(1); do command -v $$p >/dev/null || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing; fi
endef

runsc:
	$(call apt_install,runsc)

system-packages:
	$(call apt_install,runsc chromium)

# Which node runs previews: `real` (containerd, kubelet, gVisor, a pod network in its own
# namespace; the default) or `standin` (runtime/sandbox's vibeplane-node, runsc from Debian on
# the host's network), until the stand-in goes. The real node is built first: its Debian
# packages, its Go parts (cached by source under ~/.cache/vibeplane/node) and its images.
NODE ?= real
export VIBEPLANE_NODE := $(NODE)
NODE_BUILD := $(if $(filter real,$(NODE)),node-build,runsc)

node-build: venv
	$(BIN)/vibeplane cluster node-build

# The gateway (Traefik built from its Go module, cold: see README) in front of previews: part
# of `make up` on the real node, not of `make test`'s cold budget.
GATEWAY_BUILD := $(if $(filter real,$(NODE)),gateway-build)

gateway-build: venv
	$(BIN)/vibeplane cluster gateway-build

# The chart's images (operator, model server) from their Dockerfiles, cached on their inputs
# (cold about 3 minutes each on 2 cores): `up` on the real node installs the chart with them.
CHART_IMAGES := $(if $(filter real,$(NODE)),chart-images)

chart-images: venv
	$(BIN)/vibeplane cluster images

up: venv $(NODE_BUILD) $(GATEWAY_BUILD) $(CHART_IMAGES)
	VIBEPLANE_GATEWAY=$(if $(filter real,$(NODE)),traefik) $(BIN)/vibeplane up

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
	$(BIN)/lint-imports

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

integration: cluster-build system-packages $(NODE_BUILD)
	$(BIN)/pytest tests/integration

test: lint cluster-build system-packages $(NODE_BUILD) $(CHART_IMAGES)
	$(BIN)/pytest tests

# The tests marked slow (minutes each; pyproject's addopts leaves them out of `make test`),
# e.g. the rollout through real previews (tests/integration/test_rollout.py).
test-slow: cluster-build system-packages $(NODE_BUILD)
	$(BIN)/pytest -m slow tests

# Opt-in: the Hugging Face backend on a tiny model, in its own venv (about 6 GB, 3 minutes).
test-hf:
	test -x .venv-hf/bin/python || $(PYTHON) -m venv .venv-hf
	.venv-hf/bin/pip install --quiet -e '.[dev]' -e hack -e 'runtime/modelserver[huggingface]'
	.venv-hf/bin/pytest tests/runtime/modelserver/test_modelserver_huggingface.py

# A real LoRA SFT of a tiny model built in the test (TRL + PEFT on CPU), in its own env.
test-train:
	test -x .venv-train/bin/python || $(PYTHON) -m venv .venv-train
	.venv-train/bin/pip install --quiet -e '.[dev]' -e hack -e 'runtime/modelserver[huggingface]' -e 'runtime/trainer[train]'
	.venv-train/bin/pytest tests/runtime/trainer/test_sft.py

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache .import_linter_cache .grimp_cache
