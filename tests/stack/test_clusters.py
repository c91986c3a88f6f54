"""The clusters of the whole program (infra.program.run) under the offline mocks, per stack."""

from __future__ import annotations

import copy
import ipaddress
from functools import cache
from typing import Any

import pulumi
import pulumi_aws as aws
import pytest

from infra import config as cfg
from infra import naming, offline, versions
from infra.subnets import subnet_layout
from tests import changes
from tests.conftest import stack_config_map
from tests.contracts import aws_rules

STACKS = ("staging", "prod")
CLUSTER = "platform:eks:RegionalCluster"
EKS = "eks:index:Cluster"


@cache
def plan(stack: str) -> offline.Plan:
    return offline.run(stack)


# A region neither stack runs yet, and an address range no region of either uses.
NEW_REGION = changes.fresh_region(*(stack_config_map(s) for s in STACKS))
NEW_CIDR = changes.fresh_cidr(*(stack_config_map(s) for s in STACKS))


def with_new_region(stack: str) -> dict[str, Any]:
    raw = stack_config_map(stack)
    changes.add_region(raw, NEW_REGION, NEW_CIDR)
    return raw


@cache
def new_region_plan(stack: str) -> offline.Plan:
    # The region's entry under platform:regions and nothing else.
    return offline.run(stack, flat_config=with_new_region(stack))


def cluster_ancestor(p: offline.Plan, r: offline.Resource) -> offline.Resource | None:
    index = p.by_urn()
    parent = r.parent
    while parent and parent in index:
        if index[parent].type == CLUSTER:
            return index[parent]
        parent = index[parent].parent
    return None


def provider_problems(p: offline.Plan) -> list[str]:
    """Custom resources without a provider, and cluster children on another region's provider."""
    index = p.by_urn()
    problems = []
    for r in p.resources:
        if r.is_provider:
            continue
        owner = cluster_ancestor(p, r)
        if r.custom:
            if not r.provider or r.provider not in index:
                problems.append(f"{r.type} {r.name}: no provider")
                continue
            if owner is not None and p.region_of(index[r.provider]) != owner.name:
                problems.append(
                    f"{r.type} {r.name}: provider of {p.region_of(index[r.provider])}, not {owner.name}"
                )
        elif r.type == EKS:
            aws_provider = r.providers.get("aws")
            if not aws_provider or aws_provider not in index:
                problems.append(f"{r.type} {r.name}: no aws provider")
            elif owner is None or index[aws_provider].inputs.get("region") != owner.name:
                problems.append(f"{r.type} {r.name}: aws provider of the wrong region")
    return problems


@pytest.mark.parametrize("stack", STACKS)
def test_exactly_one_cluster_per_configured_region(stack: str) -> None:
    p = plan(stack)
    regions = p.config.region_names
    assert sorted(r.name for r in p.of_type(CLUSTER)) == sorted(regions)
    eks = p.of_type(EKS)
    assert len(eks) == len(regions)
    assert {cluster_ancestor(p, e).name: e.inputs["name"] for e in eks} == {  # type: ignore[union-attr]
        region: naming.cluster_name(p.config.environment, region) for region in regions
    }


@pytest.mark.parametrize("stack", STACKS)
def test_every_custom_resource_has_a_provider_of_its_clusters_region(stack: str) -> None:
    p = plan(stack)
    assert provider_problems(p) == []
    under = [r for r in p.resources if cluster_ancestor(p, r) is not None]
    assert {cluster_ancestor(p, r).name for r in under} == set(p.config.region_names)  # type: ignore[union-attr]


def test_the_provider_check_catches_a_resource_without_one() -> None:
    def careless(config: cfg.StackConfig) -> dict[str, Any]:
        aws.ec2.Vpc("forgot-provider", cidr_block="10.200.0.0/16")
        return {}

    assert provider_problems(offline.run("staging", program=careless)) == [
        "aws:ec2/vpc:Vpc forgot-provider: no provider"
    ]


def test_the_provider_check_catches_a_child_on_another_regions_provider() -> None:
    from infra import providers
    from infra.components.cluster import TYPE

    home, other = plan("staging").config.region_names[:2]

    def crossed(config: cfg.StackConfig) -> dict[str, Any]:
        aws_providers = providers.aws_providers(config)
        parent = pulumi.ComponentResource(TYPE, home)
        aws.ec2.Vpc(
            "wrong-region",
            cidr_block="10.200.0.0/16",
            opts=pulumi.ResourceOptions(parent=parent, provider=aws_providers[other]),
        )
        return {}

    assert provider_problems(offline.run("staging", program=crossed)) == [
        f"aws:ec2/vpc:Vpc wrong-region: provider of {other}, not {home}"
    ]


@pytest.mark.parametrize("stack", STACKS)
def test_stack_outputs(stack: str) -> None:
    p = plan(stack)
    clusters = p.outputs[naming.OUTPUT_CLUSTERS]
    assert sorted(clusters) == sorted(p.config.region_names)
    for region, entry in clusters.items():
        assert set(entry) == {"name", "endpoint", "oidcIssuer"}
        assert entry["name"] == naming.cluster_name(p.config.environment, region)
        assert (
            entry["endpoint"].startswith("https://") and f".{region}.eks.amazonaws.com" in entry["endpoint"]
        )
        assert f"oidc.eks.{region}.amazonaws.com/id/" in entry["oidcIssuer"]
    assert p.outputs[naming.OUTPUT_KUBECONFIGS] == offline.SECRET_MARK


@pytest.mark.parametrize("stack", STACKS)
def test_a_new_region_is_one_more_cluster_with_its_own_network(stack: str) -> None:
    p = new_region_plan(stack)
    before = plan(stack).config.region_names
    assert sorted(r.name for r in p.of_type(CLUSTER)) == sorted([*before, NEW_REGION])
    assert len(p.of_type(EKS)) == len(before) + 1
    vpcs = {p.region_of(v): v.inputs["cidrBlock"] for v in p.of_type("aws:ec2/vpc:Vpc")}
    assert vpcs[NEW_REGION] == NEW_CIDR
    assert len(set(vpcs.values())) == len(vpcs) == len(before) + 1
    new = p.one(CLUSTER, NEW_REGION)
    children = [r for r in p.resources if cluster_ancestor(p, r) is new]
    assert {r.type for r in children} >= {
        "aws:ec2/vpc:Vpc",
        "aws:ec2/subnet:Subnet",
        "aws:ec2/natGateway:NatGateway",
        EKS,
        "aws:eks/nodeGroup:NodeGroup",
        "aws:eks/addon:Addon",
        "pulumi:providers:kubernetes",
    }
    assert provider_problems(p) == []
    assert NEW_REGION in p.outputs[naming.OUTPUT_CLUSTERS]


def control_plane_subnet_problems(p: offline.Plan) -> list[str]:
    """Each cluster's control-plane subnets (what pulumi-eks sends as vpcConfig.subnetIds, where
    EKS may put its network interfaces) that are not exactly its region's private subnets as the
    config carves them (infra.subnets.subnet_layout of vpcCidr and the zones)."""
    by_id = aws_rules.subnets_by_id(p)
    public = aws_rules.public_subnet_ids(p)
    problems = []
    for eks in p.of_type(EKS):
        region = p.region_of(eks)
        assert region is not None
        r = p.config.region(region)
        ids = aws_rules.eks_control_plane_eni_subnets(
            aws_rules.pulumi_eks_control_plane_subnet_ids(eks.inputs)
        )
        for sid in sorted(ids & public):
            problems.append(f"{region}: control plane in public subnet {by_id[sid].name}")
        cidrs = {str(by_id[sid].inputs["cidrBlock"]) for sid in ids if sid in by_id}
        expected = {plan_.private_cidr for plan_ in subnet_layout(r.vpc_cidr, r.availability_zones)}
        if cidrs != expected or len(cidrs) != len(ids):
            problems.append(f"{region}: control plane in {sorted(cidrs)}, expected {sorted(expected)}")
    return problems


@pytest.mark.parametrize("stack", STACKS)
def test_every_control_plane_is_in_its_private_subnets_only(stack: str) -> None:
    """EKS may put the control plane's network interfaces in any subnet the cluster is given, and
    the storefront's NetworkPolicy admits the public subnets (docs/traffic.md): each cluster is
    given its region's private subnets, one per configured zone, and no subnet that routes to an
    internet gateway."""
    p = plan(stack)
    assert len(p.of_type(EKS)) == len(p.config.region_names)
    assert control_plane_subnet_problems(p) == []


@pytest.mark.parametrize("stack", STACKS)
def test_the_control_plane_check_catches_a_cluster_given_its_public_subnets(stack: str) -> None:
    # The inputs the program passed before: public and private subnets, both to the control plane.
    p = copy.deepcopy(plan(stack))
    public = aws_rules.public_subnet_ids(p)
    by_id = aws_rules.subnets_by_id(p)
    for eks in p.of_type(EKS):
        region = p.region_of(eks)
        eks.inputs["publicSubnetIds"] = sorted(i for i in public if p.region_of(by_id[i]) == region)
    problems = control_plane_subnet_problems(p)
    assert len([x for x in problems if "public subnet" in x]) == len(public)


SOURCE_CIDRS = "platform.example.com/traffic-source-cidrs"


def admitted_cidrs(p: offline.Plan) -> dict[str, set[str]]:
    """Region -> the CIDRs the storefront's NetworkPolicy admits there, as the program writes them
    on that region's Argo CD cluster Secret (the chart reads them through the ApplicationSet)."""
    out: dict[str, set[str]] = {}
    for secret in p.of_type("kubernetes:core/v1:Secret"):
        metadata = secret.inputs.get("metadata") or {}
        cidrs = (metadata.get("annotations") or {}).get(SOURCE_CIDRS)
        if cidrs is not None:
            out[metadata["labels"][naming.LABEL_REGION]] = set(cidrs.split(","))
    return out


def subnets_in_use(p: offline.Plan) -> dict[str, set[str]]:
    """What else the plan puts in each region's subnets: subnet ID -> what (control plane, nodes,
    CI runners)."""
    users: dict[str, set[str]] = {}
    for eks in p.of_type(EKS):
        for sid in aws_rules.pulumi_eks_control_plane_subnet_ids(eks.inputs):
            users.setdefault(sid, set()).add("EKS control plane")
    for ng in p.of_type("aws:eks/nodeGroup:NodeGroup"):
        for sid in ng.inputs.get("subnetIds") or []:
            users.setdefault(sid, set()).add("nodes")
    for project in p.of_type("aws:codebuild/project:Project"):
        for sid in (project.inputs.get("vpcConfig") or {}).get("subnets") or []:
            users.setdefault(sid, set()).add("CI runners")
    return users


@pytest.mark.parametrize("stack", STACKS)
def test_the_storefront_admits_the_declared_public_subnets_and_nothing_the_program_runs(stack: str) -> None:
    """The NetworkPolicy's CIDRs (the cluster Secret's annotation, derived from the config) are
    exactly the subnets the plan routes to an internet gateway in that region, the ones the load
    balancer's nodes sit in; and no control plane, node or CI runner of the plan is in them."""
    p = plan(stack)
    admitted = admitted_cidrs(p)
    if p.config.traffic is None:
        assert admitted == {}
        return
    assert sorted(admitted) == sorted(p.config.region_names)
    by_id = aws_rules.subnets_by_id(p)
    public = aws_rules.public_subnet_ids(p)
    users = subnets_in_use(p)
    assert users
    for region, cidrs in admitted.items():
        in_region = {sid: s for sid, s in by_id.items() if p.region_of(s) == region}
        declared_public = {str(s.inputs["cidrBlock"]) for sid, s in in_region.items() if sid in public}
        assert cidrs == declared_public, region
        admitted_nets = [ipaddress.ip_network(c) for c in cidrs]
        for sid, what in users.items():
            net = ipaddress.ip_network(str(by_id[sid].inputs["cidrBlock"]))
            assert not any(net.overlaps(a) for a in admitted_nets), (region, by_id[sid].name, what)


def test_a_region_missing_from_the_deploy_order_deploys_after_the_listed_ones() -> None:
    order = new_region_plan("prod").config.deploy.region_order
    assert order[-1] == NEW_REGION and order[:-1] == plan("prod").config.deploy.region_order


def test_config_refuses_a_kubernetes_version_without_addon_versions() -> None:
    """A Kubernetes version without a row in infra/versions.py EKS_ADDONS (CreateAddon refuses
    an add-on version EKS does not list: tests/contracts/test_eks_lifecycle.py and
    infra/versions.py) is refused before anything is declared, naming the file's key, the value
    and the versions that work."""
    without = [v for v in versions.EKS_STANDARD_SUPPORT if v not in versions.EKS_ADDONS]
    usable = [v for v in versions.EKS_STANDARD_SUPPORT if v in versions.EKS_ADDONS]
    assert usable
    raw = cfg.read_stack_file(cfg.stack_file("staging"))
    region = next(iter(raw["platform:regions"]))
    for version in without or ["9.99"]:
        bad = {**raw, "platform:regions": {**raw["platform:regions"]}}
        bad["platform:regions"][region] = {**bad["platform:regions"][region], "kubernetesVersion": version}
        with pytest.raises(cfg.ConfigError) as err:
            offline.run("staging", bad)
        message = str(err.value)
        assert f"platform:regions.{region}.kubernetesVersion" in message
        assert version in message
        if version in versions.EKS_STANDARD_SUPPORT:
            assert "no pinned EKS add-on versions" in message
            assert ", ".join(usable) in message


@pytest.mark.parametrize("stack", STACKS)
def test_the_admins_access_is_replaced_create_first_and_managed_roles_delete_first(stack: str) -> None:
    """clusterAdminRoleArn's entries change only to another ARN: created before the old ones go,
    so the person running that `up` keeps access. Every other entry names a role the program
    manages and follows it delete-first (tests/contracts/test_eks_access.py has the EKS rules)."""
    p = plan(stack)
    admin = p.config.cluster_admin_role_arn
    kinds = ("aws:eks/accessEntry:AccessEntry", "aws:eks/accessPolicyAssociation:AccessPolicyAssociation")
    resources = [r for kind in kinds for r in p.of_type(kind)]
    admins = [r for r in resources if r.inputs["principalArn"] == admin]
    assert len(admins) == 2 * len(p.config.region_names)
    for r in resources:
        if r.inputs["principalArn"] == admin:
            assert (r.delete_before_replace, r.replace_with) == (False, []), r.name
        else:
            assert r.delete_before_replace and r.replace_with, r.name
