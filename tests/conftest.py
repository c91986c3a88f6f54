"""Shared fixtures: the stack files as editable config maps (the project's own and the synthetic
ones the validator's tests break), and ../shared."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest

from infra import config

ROOT = Path(__file__).resolve().parent.parent
SHARED = ROOT.parent / "shared"
# Synthetic stack files (a frozen copy of the example's): the config validator's tests break them
# and assert exact messages, which must not change when a user edits the project's stack files.
FIXTURE_STACKS = ROOT / "tests" / "fixtures" / "stacks"


def stack_names(root: Path = ROOT) -> tuple[str, ...]:
    """Every stack of the checkout: ``<stack>`` of each ``Pulumi.<stack>.yaml``, sorted."""
    return tuple(sorted(p.name[len("Pulumi.") : -len(".yaml")] for p in root.glob("Pulumi.*.yaml")))


def stack_config_map(stack: str, root: Path = ROOT) -> dict[str, Any]:
    """A deep copy of a stack file's ``config:`` map, safe to modify in a test."""
    return copy.deepcopy(config.read_stack_file(config.stack_file(stack, root)))


def fixture_config_map(stack: str) -> dict[str, Any]:
    """A deep copy of a synthetic stack file's ``config:`` map (``tests/fixtures/stacks``)."""
    return stack_config_map(stack, FIXTURE_STACKS)


def without_traffic(raw: dict[str, Any]) -> dict[str, Any]:
    """``raw`` (a stack file's ``config`` map) without platform:traffic and ExternalDNS, which
    the config refuses without a zone (infra/config.py); the load balancer controller stays."""
    raw.pop("platform:traffic", None)
    addons = raw.get("platform:addons")
    if isinstance(addons, dict):
        addons.pop("external-dns", None)
    return raw


def load_map(raw: dict[str, Any], stack: str = "staging") -> config.StackConfig:
    """The config of a stack file's ``config`` map (as the stack-file readers return it)."""
    return config.from_flat(config.as_pulumi_config(raw), stack)


def config_error(raw: dict[str, Any], stack: str = "staging") -> str:
    """The ConfigError message ``raw`` gives (the test fails when it loads)."""
    with pytest.raises(config.ConfigError) as info:
        load_map(raw, stack)
    return str(info.value)


@pytest.fixture
def staging_map() -> dict[str, Any]:
    return stack_config_map("staging")


@pytest.fixture
def prod_map() -> dict[str, Any]:
    return stack_config_map("prod")


@pytest.fixture
def shared_dir() -> Path:
    """../shared (CRDs, upstream chart values): CI always has it; a fresh clone may not."""
    if not (SHARED / "crds").is_dir() or not (SHARED / "upstream-charts").is_dir():
        pytest.skip(f"{SHARED} (CRDs and upstream chart values) is absent; these checks need it")
    return SHARED
