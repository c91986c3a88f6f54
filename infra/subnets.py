"""How a region's VPC is cut into subnets: a pure function of its CIDR and zones.

Used by the network component (infra/components/network.py), which creates the subnets, and by
the traffic values (infra/traffic.py), which admit the public subnets (where the load balancer's
nodes live) to the storefront's pods.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence
from dataclasses import dataclass

# The layout cuts the VPC into eighths: the first six are the private subnets (one per zone, up
# to six zones), the seventh is kept free, the last is cut again into eighths for the public
# subnets. A /16 gives /19 private and /22 public subnets, a /20 gives /23 and /26.
_PRIVATE_SPLIT = 3
_PUBLIC_SPLIT = 3
MAX_ZONES = 6


@dataclass(frozen=True)
class SubnetPlan:
    availability_zone: str
    public_cidr: str
    private_cidr: str


def subnet_layout(vpc_cidr: str, availability_zones: Sequence[str]) -> tuple[SubnetPlan, ...]:
    """The subnets of each zone, carved from ``vpc_cidr`` by zone position.

    A zone's subnets depend only on its position, never on how many zones there are, so adding a
    zone at the end never renumbers (and so never replaces) the subnets of the others.
    """
    if not 1 <= len(availability_zones) <= MAX_ZONES:
        raise ValueError(f"expected 1 to {MAX_ZONES} availability zones, got {len(availability_zones)}")
    if len(set(availability_zones)) != len(availability_zones):
        raise ValueError(f"availability zones must be unique: {', '.join(availability_zones)}")
    vpc = ipaddress.IPv4Network(vpc_cidr)
    eighths = list(vpc.subnets(prefixlen_diff=_PRIVATE_SPLIT))
    public_block = eighths[-1]
    publics = list(public_block.subnets(prefixlen_diff=_PUBLIC_SPLIT))
    return tuple(
        SubnetPlan(zone, str(publics[i]), str(eighths[i])) for i, zone in enumerate(availability_zones)
    )
