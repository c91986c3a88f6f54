# The two set-up commands of the README: `make plan` and `make test` create the virtual
# environment on first use, so a fresh clone needs nothing but Python 3.11+ and make.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STACK  ?= staging
STAMP  := $(VENV)/.installed

.PHONY: plan test lint typecheck unit preview up deploy-prod bench dr clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

## plan: the offline plan of both stacks (desired state under Pulumi's mock runtime; no cloud account)
plan: $(STAMP)
	$(BIN)/python -m infra.plan --stack all

## test: lint, type check and every test
test: lint typecheck
	$(BIN)/python -m pytest

lint: $(STAMP)
	$(BIN)/ruff check infra policies tests
	$(BIN)/ruff format --check infra policies tests

typecheck: $(STAMP)
	$(BIN)/mypy infra policies tests

## preview / up: the real Pulumi commands, for a user with the CLI and AWS credentials
preview: $(STAMP)
	pulumi preview --stack $(STACK) --policy-pack policies --diff

up: $(STAMP)
	pulumi up --stack $(STACK) --policy-pack policies

## deploy-prod: sync the prod Applications one region at a time (see README, "Deploying to prod")
deploy-prod: $(STAMP)
	$(BIN)/python -m infra.deploy prod $(ARGS)

## bench: the program's speed and the rebuild critical path, measured on this machine
bench: $(STAMP)
	$(BIN)/python -m infra.bench

## dr: the disaster-recovery runbook of one region, e.g. make dr STACK=prod REGION=eu-west-1
dr: $(STAMP)
	$(BIN)/python -m infra.dr plan --stack $(STACK) --region $(REGION)

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
