"""Subnet carving and NAT placement (pure functions of infra/components/network.py)."""

from __future__ import annotations

import ipaddress
import itertools

import pytest
from hypothesis import given
from hypothesis import strategies as st

from infra.components.network import MAX_ZONES, nat_zones, subnet_layout

ZONES = tuple(f"us-west-2{c}" for c in "abcdef")


def nets(layout) -> list[ipaddress.IPv4Network]:  # type: ignore[no-untyped-def]
    return [ipaddress.IPv4Network(c) for p in layout for c in (p.public_cidr, p.private_cidr)]


@given(
    prefix=st.integers(min_value=16, max_value=20),
    second=st.integers(min_value=0, max_value=255),
    third=st.integers(min_value=0, max_value=255),
    zones=st.integers(min_value=2, max_value=MAX_ZONES),
)
def test_subnets_lie_in_the_vpc_and_never_overlap(prefix: int, second: int, third: int, zones: int) -> None:
    vpc = ipaddress.IPv4Network(f"10.{second}.{third}.0/{prefix}", strict=False)
    layout = subnet_layout(str(vpc), ZONES[:zones])
    subnets = nets(layout)
    assert all(s.subnet_of(vpc) for s in subnets)
    for a, b in itertools.combinations(subnets, 2):
        assert not a.overlaps(b), (a, b)


def test_one_public_and_one_private_subnet_per_zone_in_order() -> None:
    layout = subnet_layout("10.20.0.0/16", ZONES[:3])
    assert [p.availability_zone for p in layout] == list(ZONES[:3])


def test_private_subnets_are_the_big_ones() -> None:
    # Pods take their addresses from the private subnets (VPC CNI), so they get the room.
    for cidr, private, public in (("10.20.0.0/16", 19, 22), ("10.30.16.0/20", 23, 26)):
        for p in subnet_layout(cidr, ZONES):
            assert ipaddress.IPv4Network(p.private_cidr).prefixlen == private
            assert ipaddress.IPv4Network(p.public_cidr).prefixlen == public


def test_the_layout_is_deterministic() -> None:
    assert subnet_layout("10.11.0.0/16", ZONES[:3]) == subnet_layout("10.11.0.0/16", ZONES[:3])
    assert subnet_layout("10.11.0.0/16", ZONES[:3])[0].private_cidr == "10.11.0.0/19"
    assert subnet_layout("10.11.0.0/16", ZONES[:3])[0].public_cidr == "10.11.224.0/22"


def test_adding_a_zone_keeps_every_existing_subnet() -> None:
    # Renumbering would replace subnets, and with them the nodes and NAT gateways in them.
    three = subnet_layout("10.10.0.0/16", ZONES[:3])
    four = subnet_layout("10.10.0.0/16", ZONES[:4])
    assert four[:3] == three


@pytest.mark.parametrize("zones", [(), (*ZONES, "us-west-2g"), ("us-west-2a", "us-west-2a")])
def test_impossible_zone_lists_are_refused(zones: tuple[str, ...]) -> None:
    with pytest.raises(ValueError):
        subnet_layout("10.10.0.0/16", zones)


def test_nat_per_zone_or_a_single_one_in_the_first_zone() -> None:
    assert nat_zones(ZONES[:3], "perAz") == ZONES[:3]
    assert nat_zones(ZONES[:3], "single") == ("us-west-2a",)
