"""The example's placeholders never reach AWS (infra.placeholders): refused in a real run before
anything is declared, listed by the offline plan. Expectations come from the stack files."""

from __future__ import annotations

import copy
import ipaddress
from collections.abc import Iterator
from typing import Any

import pulumi
import pytest

from infra import config, offline, placeholders
from infra import program as infra_program
from infra.config import StackConfig
from tests.conftest import stack_config_map


def load(flat: dict[str, Any], stack: str) -> StackConfig:
    return config.from_flat(config.as_pulumi_config(flat), stack)


def real_values(stack: str) -> dict[str, Any]:
    """The example stack file with every placeholder replaced by a plausible real value."""
    flat = copy.deepcopy(stack_config_map(stack))
    real = {"111122223333": "210987654321", "444455556666": "309876543210"}
    for key in ("platform:accountId", "platform:peerAccountId"):
        flat[key] = real[flat[key]]
    arn = flat["platform:clusterAdminRoleArn"]
    for old, new in real.items():
        arn = arn.replace(old, new)
    flat["platform:clusterAdminRoleArn"] = arn
    for region in flat["platform:regions"].values():
        region["publicAccessCidrs"] = ["198.18.0.0/24"] if region["publicAccessCidrs"] else []
    flat["platform:github"]["owner"] = "example-corp"
    flat["platform:application"]["repoUrl"] = flat["platform:application"]["repoUrl"].replace(
        "/acme/", "/example-corp/"
    )
    if "reviewers" in flat["platform:github"]:
        flat["platform:github"]["reviewers"] = {"teams": [7654321]}
    traffic = flat.get("platform:traffic")
    if traffic is not None:
        traffic.update(hostedZoneId="Z0123456789ABCDEFGHIJ", zoneName=f"{stack}.shop.example-corp.io")
        traffic.pop("host", None)
    return flat


@pytest.mark.parametrize("stack", ["staging", "prod"])
def test_the_example_stacks_are_all_placeholders_and_each_is_named(stack: str) -> None:
    cfg = config.load_stack_file(stack)
    found = {p.key for p in placeholders.find(cfg)}
    assert {"platform:accountId", "platform:peerAccountId", "platform:clusterAdminRoleArn"} <= found
    assert {"platform:github.owner", "platform:application.repoUrl"} <= found
    if cfg.traffic is not None:
        assert {"platform:traffic.zoneName", "platform:traffic.hostedZoneId"} <= found
    for region in cfg.regions:
        documentation = [
            c
            for c in region.public_access_cidrs
            if any(
                ipaddress.ip_network(c).version == d.version and ipaddress.ip_network(c).subnet_of(d)  # type: ignore[arg-type]
                for d in placeholders.DOCUMENTATION_NETWORKS
            )
        ]
        assert bool(documentation) == (f"platform:regions.{region.name}.publicAccessCidrs" in found)


@pytest.mark.parametrize("stack", ["staging", "prod"])
def test_real_values_pass(stack: str) -> None:
    assert placeholders.find(load(real_values(stack), stack)) == []


@pytest.mark.parametrize("cidr", ["0.0.0.0/0", "203.0.0.0/16", "192.0.0.0/8"])
def test_a_real_supernet_of_a_documentation_range_is_no_placeholder(cidr: str) -> None:
    """Staging may open its public endpoint to 0.0.0.0/0 (config refuses that in prod only): it
    contains 203.0.113.0/24 (RFC 5737) but is a real range, not the example's placeholder."""
    flat = real_values("staging")
    region = next(iter(flat["platform:regions"].values()))
    region["publicAccessCidrs"] = [cidr]
    assert placeholders.find(load(flat, "staging")) == []


def test_a_range_inside_a_documentation_block_is_a_placeholder() -> None:
    flat = real_values("staging")
    name, region = next(iter(flat["platform:regions"].items()))
    region["publicAccessCidrs"] = ["198.51.100.128/25"]
    found = placeholders.find(load(flat, "staging"))
    assert [p.key for p in found] == [f"platform:regions.{name}.publicAccessCidrs"]


@pytest.fixture
def real_runtime() -> Iterator[None]:
    """Outside the mock runtime, as under `pulumi up` (no monitor: nothing could be declared)."""
    saved = pulumi.runtime.settings.SETTINGS
    pulumi.runtime.settings.configure(pulumi.runtime.settings.Settings(project="platform", stack="prod"))
    try:
        yield
    finally:
        pulumi.runtime.settings.configure(saved)


@pytest.mark.usefixtures("real_runtime")
def test_a_real_run_refuses_them_naming_file_key_and_value() -> None:
    cfg = config.load_stack_file("prod")
    assert not placeholders.is_offline_run()
    with pytest.raises(placeholders.PlaceholderError) as error:
        placeholders.check(cfg)
    message = str(error.value)
    assert message.startswith("Pulumi.prod.yaml: ")
    for p in placeholders.find(cfg):
        assert p.key in message and p.value in message
    assert "placeholders" in message and "offline plan" in message


@pytest.mark.usefixtures("real_runtime")
def test_a_real_run_declares_nothing_before_refusing() -> None:
    with pytest.raises(placeholders.PlaceholderError):
        infra_program.run(config.load_stack_file("prod"))  # would fail on the first resource otherwise


def test_the_offline_plan_keeps_working_and_lists_them() -> None:
    from infra import plan as plan_module

    p = offline.run("prod")
    assert p.resources
    lines = [line for line in plan_module.highlights(p) if "placeholder" in line]
    assert len(lines) == len(placeholders.find(p.config)) > 0
    assert any("platform:accountId: 444455556666" in line for line in lines)
