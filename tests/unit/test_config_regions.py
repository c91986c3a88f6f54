"""The region rules of the stack config, each with its exact message.

Every case starts from a synthetic stack file (``tests/fixtures/stacks``), breaks one region setting, and asserts the whole
message: the key, the bad value as written, and what is allowed.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pydantic
import pytest

from infra import config, versions
from tests.conftest import fixture_config_map

R = "platform:regions"
SUPPORTED = ", ".join(versions.EKS_STANDARD_SUPPORT)


def message(stack: str, breakage: Callable[[dict[str, Any]], None]) -> str:
    raw = fixture_config_map(stack)
    breakage(raw[R])
    with pytest.raises(config.ConfigError) as info:
        config.from_flat(config.as_pulumi_config(raw), stack)
    return str(info.value)


CASES: list[tuple[str, str, Callable[[dict[str, Any]], None], str]] = [
    (
        "kubernetes version out of standard support",
        "staging",
        lambda r: r["us-west-2"].update(kubernetesVersion="1.29"),
        'platform:regions.us-west-2.kubernetesVersion: "1.29" is not allowed; '
        f"expected a Kubernetes version in EKS standard support: {SUPPORTED}",
    ),
    (
        # Unquoted in YAML, 1.35 is a number (and 1.30 would be 1.3): say to quote it.
        "kubernetes version as a YAML number",
        "prod",
        lambda r: r["eu-west-1"].update(kubernetesVersion=1.35),
        "platform:regions.eu-west-1.kubernetesVersion: 1.35 is not allowed; "
        'expected a quoted string such as "1.35": YAML reads an unquoted version as a number',
    ),
    (
        "minSize above desiredSize",
        "staging",
        lambda r: r["us-east-1"]["nodeGroup"].update(minSize=3, desiredSize=2, maxSize=4),
        'platform:regions.us-east-1.nodeGroup: {"desiredSize": 2, "maxSize": 4, "minSize": 3} is not allowed; '
        "expected minSize <= desiredSize <= maxSize",
    ),
    (
        "desiredSize above maxSize",
        "prod",
        lambda r: r["us-west-2"]["nodeGroup"].update(minSize=3, desiredSize=10, maxSize=9),
        'platform:regions.us-west-2.nodeGroup: {"desiredSize": 10, "maxSize": 9, "minSize": 3} is not allowed; '
        "expected minSize <= desiredSize <= maxSize",
    ),
    (
        "no instance types",
        "staging",
        lambda r: r["eu-west-1"]["nodeGroup"].update(instanceTypes=[]),
        "platform:regions.eu-west-1.nodeGroup.instanceTypes: [] is not allowed; "
        "expected at least 1 EC2 instance types",
    ),
    (
        "one availability zone",
        "prod",
        lambda r: r["us-east-1"].update(availabilityZones=["us-east-1a"]),
        'platform:regions.us-east-1.availabilityZones: ["us-east-1a"] is not allowed; '
        "expected at least 2 availability zones (EKS needs subnets in two zones)",
    ),
    (
        "availability zone of another region",
        "staging",
        lambda r: r["us-west-2"].update(availabilityZones=["us-west-2a", "eu-west-1b"]),
        'platform:regions.us-west-2.availabilityZones[1]: "eu-west-1b" is not allowed; '
        "expected an availability zone of us-west-2, such as us-west-2a",
    ),
    (
        "unknown NAT mode",
        "staging",
        lambda r: r["us-west-2"].update(natGateways="none"),
        'platform:regions.us-west-2.natGateways: "none" is not allowed; expected one of: single, perAz',
    ),
    (
        "public endpoint open to the internet in prod",
        "prod",
        lambda r: r["us-west-2"].update(publicAccessCidrs=["0.0.0.0/0"]),
        'platform:regions.us-west-2.publicAccessCidrs[0]: "0.0.0.0/0" is not allowed; '
        "prod's public API endpoint must never be open to the internet; list office/VPN CIDRs or leave "
        "publicAccessCidrs empty for a private-only endpoint",
    ),
    (
        "spot nodes in prod",
        "prod",
        lambda r: r["eu-west-1"]["nodeGroup"].update(capacityType="SPOT"),
        'platform:regions.eu-west-1.nodeGroup.capacityType: "SPOT" is not allowed; '
        "prod nodes must be ON_DEMAND (spot capacity can vanish)",
    ),
    (
        "VPC too small for the subnets",
        "staging",
        lambda r: r["us-west-2"].update(vpcCidr="10.10.0.0/24"),
        'platform:regions.us-west-2.vpcCidr: "10.10.0.0/24" is not allowed; '
        "expected a VPC network from /16 to /20 (room for six subnets)",
    ),
    (
        "overlapping VPCs",
        "staging",
        lambda r: r["us-east-1"].update(vpcCidr="10.10.128.0/17"),
        'platform:regions.us-east-1.vpcCidr: "10.10.128.0/17" is not allowed; '
        "overlaps regions.us-west-2.vpcCidr (10.10.0.0/16); every region needs its own address range so "
        "the networks can be peered or routed later",
    ),
]


@pytest.mark.parametrize(("stack", "breakage", "expected"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_region_rule_message(stack: str, breakage: Callable[[dict[str, Any]], None], expected: str) -> None:
    assert message(stack, breakage) == expected


@pytest.mark.parametrize("region", ["us-west-2", "us-east-1", "eu-west-1"])
def test_the_rules_hold_for_every_region_not_just_the_first(region: str) -> None:
    def breakage(r: dict[str, Any]) -> None:
        r[region]["nodeGroup"].update(instanceTypes=[])

    text = message("staging", breakage)
    assert text.startswith(f"platform:regions.{region}.nodeGroup.instanceTypes: [] is not allowed")


def test_staging_may_open_its_public_endpoint_and_use_spot() -> None:
    raw = fixture_config_map("staging")
    raw[R]["us-west-2"].update(publicAccessCidrs=["0.0.0.0/0"])
    c = config.from_flat(config.as_pulumi_config(raw), "staging")
    assert c.region("us-west-2").public_access_cidrs == ("0.0.0.0/0",)
    assert c.region("us-west-2").node_group.capacity_type == "SPOT"


def test_nat_mode_defaults_per_environment() -> None:
    for stack, expected in (("staging", "single"), ("prod", "perAz")):
        raw = fixture_config_map(stack)
        for region in raw[R].values():
            region.pop("natGateways")
        c = config.from_flat(config.as_pulumi_config(raw), stack)
        assert {r.nat_gateways for r in c.regions} == {expected}


def test_zone_letters_are_checked_by_form_only_and_the_docs_say_so() -> None:
    """No offline source lists an account's zone letters (botocore holds none; AWS maps zone names
    per account in its oldest regions, docs.aws.amazon.com/global-infrastructure/latest/regions/
    az-ids.html): a well-formed letter the region may lack passes, and the key's description and
    the README's per-region settings state that limit."""
    raw = fixture_config_map("staging")
    region = next(iter(raw[R]))
    zones = [*raw[R][region]["availabilityZones"][:1], f"{region}z"]
    raw[R][region].update(availabilityZones=zones)
    c = config.from_flat(config.as_pulumi_config(raw), "staging")
    assert c.region(region).availability_zones == tuple(zones)
    # The key's description, as the JSON Schema generated from the model carries it.
    schema = pydantic.TypeAdapter(config.RegionConfig).json_schema(by_alias=True)
    assert "Checked by form only" in schema["properties"]["availabilityZones"]["description"]
    readme = (config.PROJECT_ROOT / "README.md").read_text()
    assert "`availabilityZones` (2 to 6 of that region; checked by form only" in readme
