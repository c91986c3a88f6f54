"""Contracts: which subnets the EKS control plane lives in, and what changing them does.

The storefront's NetworkPolicy admits the public subnets' CIDRs (the load balancer's nodes,
docs/traffic.md). EKS may put the control plane's network interfaces in any subnet the cluster is
given, so the cluster is given the private subnets only (infra/components/cluster.py). Each test
names the upstream source it pins in its docstring.
"""

from __future__ import annotations

import copy
import ipaddress
from collections.abc import Mapping
from functools import cache
from typing import Any

import pytest

from infra import offline, plan_diff, traffic
from infra.components import network
from infra.subnets import subnet_layout
from tests.contracts import aws_rules
from tests.contracts import upstream_traffic as up

STACKS = ("staging", "prod")
EKS = "eks:index:Cluster"
CONTROL_PLANE = "aws:eks/cluster:Cluster"


@cache
def plan(stack: str) -> offline.Plan:
    return offline.run(stack)


def exposed(
    inputs: Mapping[str, Any], admitted: list[ipaddress.IPv4Network], by_id: Mapping[str, offline.Resource]
) -> list[str]:
    """The subnets EKS may put the control plane in (for these pulumi-eks inputs) that lie in an
    admitted CIDR."""
    ids = aws_rules.eks_control_plane_eni_subnets(aws_rules.pulumi_eks_control_plane_subnet_ids(inputs))
    return sorted(
        by_id[i].name
        for i in ids
        if any(ipaddress.IPv4Network(str(by_id[i].inputs["cidrBlock"])).overlaps(a) for a in admitted)
    )


def test_pulumi_eks_gives_the_control_plane_its_subnet_inputs() -> None:
    """pulumi/pulumi-eks nodejs/eks/cluster/cluster.ts ``createCore`` (v4.3.0; main 7bf0c1b1):
    ``vpcConfig.subnetIds`` is ``subnetIds`` when set, else ``publicSubnetIds`` followed by
    ``privateSubnetIds``; ``subnetIds`` with either of the others is refused."""
    rule = aws_rules.pulumi_eks_control_plane_subnet_ids
    assert rule({"vpcId": "v", "privateSubnetIds": ["a", "b"]}) == ["a", "b"]
    assert rule({"vpcId": "v", "publicSubnetIds": ["p"], "privateSubnetIds": ["a"]}) == ["p", "a"]
    assert rule({"vpcId": "v", "subnetIds": ["s"]}) == ["s"]
    with pytest.raises(ValueError, match="mutually exclusive"):
        rule({"vpcId": "v", "subnetIds": ["s"], "privateSubnetIds": ["a"]})


@pytest.mark.parametrize("stack", STACKS)
def test_the_control_plane_may_put_its_interfaces_only_where_the_storefront_admits_nothing(
    stack: str,
) -> None:
    """https://docs.aws.amazon.com/eks/latest/userguide/network-reqs.html (Subnet requirements):
    "Amazon EKS can create its network interfaces in any subnet that you specify when you create
    a cluster", and again after each version update. So no subnet the cluster is given may lie
    in a CIDR the storefront's NetworkPolicy admits (infra.traffic.load_balancer_source_cidrs);
    given its public subnets too, the control plane's addresses would be admitted."""
    p = plan(stack)
    by_id = aws_rules.subnets_by_id(p)
    for eks in p.of_type(EKS):
        region = p.region_of(eks)
        assert region is not None
        admitted = [ipaddress.IPv4Network(c) for c in traffic.load_balancer_source_cidrs(p.config, region)]
        assert admitted

        assert exposed(eks.inputs, admitted, by_id) == []
        # The inputs the program passed before: the public subnets too.
        before = dict(eks.inputs)
        before["publicSubnetIds"] = sorted(
            i for i in aws_rules.public_subnet_ids(p) if p.region_of(by_id[i]) == region
        )
        assert len(exposed(before, admitted, by_id)) == len(p.config.region(region).availability_zones)


@pytest.mark.parametrize("stack", STACKS)
def test_the_load_balancer_still_finds_the_public_subnets_the_cluster_is_not_given(stack: str) -> None:
    """kubernetes-sigs/aws-load-balancer-controller v3.5.0 docs/deploy/subnet_discovery.md and
    pkg/networking/subnet_resolver.go ``ResolveViaDiscovery``: candidates are the VPC's subnets
    with the role tag (``kubernetes.io/role/elb`` for internet-facing), filtered by the cluster
    tag; the cluster's own subnets play no part. Every public subnet of the plan keeps the tag,
    so the ALB goes where the NetworkPolicy expects it, and none of them is a control-plane
    subnet."""
    p = plan(stack)
    by_id = aws_rules.subnets_by_id(p)
    public = aws_rules.public_subnet_ids(p)
    for eks in p.of_type(EKS):
        region = p.region_of(eks)
        assert region is not None
        cluster = str(eks.inputs["name"])
        in_region = {i for i, s in by_id.items() if p.region_of(s) == region}
        found = {
            i
            for i in in_region
            if up.lbc_discovers_subnet(by_id[i].inputs["tags"], cluster, "internet-facing")
        }
        assert found == public & in_region
        assert {str(by_id[i].inputs["cidrBlock"]) for i in found} == set(
            traffic.load_balancer_source_cidrs(p.config, region)
        )
        assert not found & set(aws_rules.pulumi_eks_control_plane_subnet_ids(eks.inputs))
        assert all(network.ELB_ROLE_TAG in by_id[i].inputs["tags"] for i in found)


def test_changing_a_clusters_subnets_updates_it_in_place() -> None:
    """hashicorp/terraform-provider-aws internal/service/eks/cluster.go (the aws-sdk-go-v2 copy,
    pulumi-aws 7.x): ``vpc_config.subnet_ids`` has no ForceNew and ``resourceClusterUpdate`` sends
    it alone in ``UpdateClusterConfig`` ("API only allows one type of update at a time"); it is a
    TypeSet, so an order change is no change. The control plane is not replaced."""
    base: dict[str, Any] = {
        "urn": "urn:pulumi:s::platform::eks:index:Cluster$aws:eks/cluster:Cluster::eks-eksCluster",
        "type": CONTROL_PLANE,
        "name": "eks-eksCluster",
        "custom": True,
        "provider": "urn:pulumi:s::platform::pulumi:providers:aws::aws-a",
        "inputs": {"name": "c", "vpcConfig": {"subnetIds": ["pub-a", "pub-b", "priv-a", "priv-b"]}},
    }
    head = copy.deepcopy(base)
    head["inputs"]["vpcConfig"]["subnetIds"] = ["priv-a", "priv-b"]
    change = plan_diff.diff_resource(base, head)
    assert change is not None and change.op == "update" and change.replace_keys == ()
    head["inputs"]["name"] = "d"
    change = plan_diff.diff_resource(base, head)
    assert change is not None and change.op == "replace"


@pytest.mark.parametrize("stack", STACKS)
def test_eks_accepts_the_private_subnets_of_an_existing_cluster(stack: str) -> None:
    """https://docs.aws.amazon.com/eks/latest/APIReference/API_UpdateClusterConfig.html: new
    subnets in at least two Availability Zones, in the cluster's VPC; and
    https://docs.aws.amazon.com/eks/latest/userguide/network-reqs.html: "All subnets that you add
    must be in the same set of AZs as originally provided". A cluster created with a public and
    a private subnet per configured zone keeps every zone with the private subnets alone."""
    p = plan(stack)
    for region in p.config.region_names:
        r = p.config.region(region)
        layout = subnet_layout(r.vpc_cidr, r.availability_zones)
        created_with = [s.availability_zone for s in layout for _ in ("public", "private")]
        now = [s.availability_zone for s in layout]
        assert aws_rules.eks_update_cluster_subnets_accepted(created_with, now, same_vpc=True)
        # Dropping a zone would be refused, so the program never narrows the zones this way.
        assert not aws_rules.eks_update_cluster_subnets_accepted(created_with, now[:-1], same_vpc=True)
