"""RegionalCluster under the offline mocks: every setting of issue 3, per environment.

The program here builds only the providers and the clusters (the same ``build_clusters`` and
``cluster_outputs`` infra/program.py calls), so these checks do not depend on other sections.
"""

from __future__ import annotations

import ipaddress
import json
from collections.abc import Iterable, Mapping
from functools import cache
from typing import Any

import pulumi
import pytest

from infra import config as cfg
from infra import naming, offline, providers, stackset, versions
from infra.components import cluster as cl
from infra.documents import access
from infra.documents import eks as eks_docs
from tests.conftest import stack_config_map

STACKS = ("staging", "prod")
CLUSTER = "platform:eks:RegionalCluster"
NETWORK = "platform:network:RegionalNetwork"
EKS = "eks:index:Cluster"
NODE_GROUP = "aws:eks/nodeGroup:NodeGroup"
ADDON = "aws:eks/addon:Addon"
NAT = "aws:ec2/natGateway:NatGateway"
EIP = "aws:ec2/eip:Eip"
SUBNET = "aws:ec2/subnet:Subnet"
ROUTE = "aws:ec2/route:Route"
RTA = "aws:ec2/routeTableAssociation:RouteTableAssociation"
VPC = "aws:ec2/vpc:Vpc"
KMS = "aws:kms/key:Key"
LT = "aws:ec2/launchTemplate:LaunchTemplate"
ROLE = "aws:iam/role:Role"
K8S_PROVIDER = "pulumi:providers:kubernetes"
ACCESS_ENTRY = "aws:eks/accessEntry:AccessEntry"
ACCESS_POLICY = "aws:eks/accessPolicyAssociation:AccessPolicyAssociation"
TAGGABLE = {VPC, SUBNET, "aws:ec2/internetGateway:InternetGateway", EIP, NAT, "aws:ec2/routeTable:RouteTable"}
TAGGABLE |= {KMS, ROLE, LT, NODE_GROUP, ADDON, EKS}


def clusters_only(config: cfg.StackConfig) -> dict[str, Any]:
    clusters = cl.build_clusters(config, providers.aws_providers(config))
    out = cl.cluster_outputs(clusters)
    # Unsecreted here only so the test can read what the provider is given.
    out["plainKubeconfigs"] = {r: pulumi.Output.unsecret(c.kubeconfig) for r, c in clusters.items()}
    out["certificateAuthorities"] = {r: c.certificate_authority for r, c in clusters.items()}
    return out


# Staging with each region's NAT mode, capacity type and CPU architecture the other way round
# from its stack file, so a cluster that followed the environment (or the example's values)
# rather than the config fails the tests that take it.
FLIPPED = "staging, settings flipped"


def flipped_config() -> dict[str, Any]:
    raw = stack_config_map("staging")
    for settings in raw["platform:regions"].values():
        nat = settings.get("natGateways", "single")
        settings["natGateways"] = "single" if nat == "perAz" else "perAz"
        group = settings["nodeGroup"]
        group["capacityType"] = "ON_DEMAND" if group.get("capacityType", "ON_DEMAND") == "SPOT" else "SPOT"
        arm = eks_docs.instance_architecture(group["instanceTypes"][0]) == "arm64"
        group["instanceTypes"] = ["m6i.large", "m6a.large"] if arm else ["m7g.large", "m6g.large"]
    return raw


@cache
def plan(stack: str) -> offline.Plan:
    if stack == FLIPPED:
        return offline.run("staging", flat_config=flipped_config(), program=clusters_only)
    return offline.run(stack, program=clusters_only)


def regions(stack: str) -> tuple[str, ...]:
    return plan(stack).config.region_names


def subtree(p: offline.Plan, root: offline.Resource) -> list[offline.Resource]:
    index = p.by_urn()

    def under(r: offline.Resource) -> bool:
        parent = r.parent
        while parent:
            if parent == root.urn:
                return True
            parent = index[parent].parent if parent in index else None
        return False

    return [r for r in p.resources if under(r)]


def regional(stack: str, region: str, type_: str | None = None) -> list[offline.Resource]:
    p = plan(stack)
    found = subtree(p, p.one(CLUSTER, region))
    return [r for r in found if type_ is None or r.type == type_]


def one(stack: str, region: str, type_: str, prefix: str = "") -> offline.Resource:
    (found,) = [r for r in regional(stack, region, type_) if r.name.startswith(prefix)]
    return found


def names(urns: Iterable[str], p: offline.Plan) -> set[str]:
    index = p.by_urn()
    return {index[u].name for u in urns}


def closure(p: offline.Plan, r: offline.Resource) -> list[offline.Resource]:
    """Everything ``r`` waits for, transitively."""
    index = p.by_urn()
    seen: dict[str, offline.Resource] = {}
    todo = list(r.dependencies)
    while todo:
        urn = todo.pop()
        if urn in seen or urn not in index:
            continue
        seen[urn] = index[urn]
        todo.extend(index[urn].dependencies)
    return list(seen.values())


def cases() -> list[tuple[str, str]]:
    return [(s, r) for s in STACKS for r in cfg.load_stack_file(s).region_names]


def cases_and_flipped() -> list[tuple[str, str]]:
    return [*cases(), *((FLIPPED, r) for r in cfg.load_stack_file("staging").region_names)]


# ---------------------------------------------------------------------------------------------
# Structure and providers
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("stack", STACKS)
def test_one_regional_cluster_per_region_named_after_it(stack: str) -> None:
    p = plan(stack)
    # The SDK registers from a thread pool: the order of registrations is not part of the contract.
    assert sorted(r.name for r in p.of_type(CLUSTER)) == sorted(regions(stack))
    assert sorted(r.inputs["name"] for r in p.of_type(EKS)) == sorted(
        naming.cluster_name(p.config.environment, region) for region in regions(stack)
    )


@pytest.mark.parametrize(("stack", "region"), cases())
def test_every_child_is_bound_to_the_provider_of_its_region(stack: str, region: str) -> None:
    p = plan(stack)
    index = p.by_urn()
    children = regional(stack, region)
    assert children
    for r in children:
        if r.is_provider:
            continue
        if r.custom:
            assert r.provider, f"{r.type} {r.name} has no provider"
            assert index[r.provider].type == "pulumi:providers:aws"
            assert index[r.provider].inputs["region"] == region, (r.type, r.name)
        elif r.type == EKS:
            assert index[r.providers["aws"]].inputs["region"] == region
    # And nothing made with the mocks' no-provider fallback.
    assert not any("no-provider" in json.dumps(r.outputs) for r in children)


@pytest.mark.parametrize(("stack", "region"), cases())
def test_the_kubernetes_provider_belongs_to_the_cluster(stack: str, region: str) -> None:
    k8s = one(stack, region, K8S_PROVIDER)
    assert k8s.name == f"k8s-{region}"
    assert k8s.parent == plan(stack).one(CLUSTER, region).urn
    assert k8s.inputs["kubeconfig"] == offline.SECRET_MARK
    assert k8s.inputs.get("enableServerSideApply") in (True, "true")


# ---------------------------------------------------------------------------------------------
# Network
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("stack", "region"), cases())
def test_vpc_and_subnets(stack: str, region: str) -> None:
    rc = plan(stack).config.region(region)
    vpc = one(stack, region, VPC)
    assert vpc.inputs["cidrBlock"] == rc.vpc_cidr
    assert vpc.inputs["enableDnsSupport"] is True and vpc.inputs["enableDnsHostnames"] is True
    cluster = naming.cluster_name(plan(stack).config.environment, region)
    subnets = regional(stack, region, SUBNET)
    assert len(subnets) == 2 * len(rc.availability_zones)
    for kind, role_tag in (
        ("public", "kubernetes.io/role/elb"),
        ("private", "kubernetes.io/role/internal-elb"),
    ):
        group = [s for s in subnets if s.name.startswith(f"{kind}-")]
        assert sorted(s.inputs["availabilityZone"] for s in group) == sorted(rc.availability_zones)
        for s in group:
            assert s.inputs["mapPublicIpOnLaunch"] is False
            assert ipaddress.IPv4Network(s.inputs["cidrBlock"]).subnet_of(ipaddress.IPv4Network(rc.vpc_cidr))
            assert s.inputs["tags"][role_tag] == "1"
            assert s.inputs["tags"][f"kubernetes.io/cluster/{cluster}"] == "shared"
            other = "kubernetes.io/role/internal-elb" if kind == "public" else "kubernetes.io/role/elb"
            assert other not in s.inputs["tags"]


@pytest.mark.parametrize(("stack", "region"), cases_and_flipped())
def test_nat_gateways_one_per_zone_or_a_single_one_as_configured(stack: str, region: str) -> None:
    p = plan(stack)
    rc = p.config.region(region)
    nats = regional(stack, region, NAT)
    expected = len(rc.availability_zones) if rc.nat_gateways == "perAz" else 1
    assert len(nats) == expected
    assert len(regional(stack, region, EIP)) == expected
    for nat in nats:
        assert all(n.startswith("public-") for n in names(nat.property_dependencies["subnetId"], p))
    # Each zone's private default route goes to a NAT: its own zone's (perAz) or the single one.
    routes = [r for r in regional(stack, region, ROUTE) if r.name.startswith("private-default-")]
    assert len(routes) == len(rc.availability_zones)
    for route in routes:
        zone = route.name.removeprefix("private-default-")
        assert route.inputs["destinationCidrBlock"] == "0.0.0.0/0"
        (target,) = names(route.property_dependencies["natGatewayId"], p)
        assert target == (f"nat-{zone}" if rc.nat_gateways == "perAz" else f"nat-{rc.availability_zones[0]}")


# ---------------------------------------------------------------------------------------------
# Control plane
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("stack", "region"), cases())
def test_control_plane_settings(stack: str, region: str) -> None:
    p = plan(stack)
    rc = p.config.region(region)
    eks = one(stack, region, EKS)
    i = eks.inputs
    assert i["name"] == naming.cluster_name(p.config.environment, region)
    assert i["version"] == rc.kubernetes_version
    assert i["authenticationMode"] == "API"
    # Access entries are the program's own resources (test_operator_access), not pulumi-eks's.
    assert not i.get("accessEntries")
    assert not i.get("roleMappings") and not i.get("userMappings")  # nothing through aws-auth
    assert i["endpointPrivateAccess"] is True
    assert sorted(i["enabledClusterLogTypes"]) == sorted(
        ["api", "audit", "authenticator", "controllerManager", "scheduler"]
    )
    assert i["skipDefaultNodeGroup"] is True
    assert i["skipDefaultSecurityGroups"] is True
    assert i["useDefaultVpcCni"] is True
    assert i["corednsAddonOptions"]["enabled"] is False
    assert i["kubeProxyAddonOptions"]["enabled"] is False
    assert i["createOidcProvider"] is False
    # EXTENDED: EKS never upgrades the control plane behind the program (docs/clusters.md).
    assert i["upgradePolicy"] == {"supportType": "EXTENDED"}
    assert names(eks.property_dependencies["privateSubnetIds"], p) == {
        f"private-{z}" for z in rc.availability_zones
    }
    # The control plane gets no public subnet: EKS may place its interfaces in any subnet it is
    # given, and the storefront admits the public ones (docs/clusters.md, control-plane subnets).
    assert "publicSubnetIds" not in eks.property_dependencies
    assert i.get("publicSubnetIds") is None and i.get("subnetIds") is None


@pytest.mark.parametrize(("stack", "region"), cases())
def test_operator_access(stack: str, region: str) -> None:
    """Each principal that runs `pulumi up` has cluster-admin where it uses Kubernetes, the
    Kubernetes provider waits for those entries, and nothing else is granted here."""
    p = plan(stack)
    expected = {o.name: o.principal_arn for o in access.cluster_operators(p.config) if region in o.regions}
    assert access.ADMIN_OPERATOR in expected  # people reach every cluster
    assert (access.UP_OPERATOR in expected) == (region == p.config.hub_region)
    entries = {r.name.removesuffix(f"-{region}"): r for r in regional(stack, region, ACCESS_ENTRY)}
    policies = {r.name.removesuffix(f"-{region}"): r for r in regional(stack, region, ACCESS_POLICY)}
    assert set(entries) == set(policies) == set(expected)
    cluster_name = naming.cluster_name(p.config.environment, region)
    for name, arn in expected.items():
        assert entries[name].inputs["principalArn"] == arn
        assert entries[name].inputs["clusterName"] == cluster_name
        assert entries[name].inputs["type"] == "STANDARD"
        assert policies[name].inputs["policyArn"] == eks_docs.CLUSTER_ADMIN_ACCESS_POLICY_ARN
        assert policies[name].inputs["accessScope"] == {"type": "cluster"}
        assert entries[name].urn in policies[name].dependencies
    (provider,) = regional(stack, region, K8S_PROVIDER)
    assert {e.urn for e in entries.values()} | {a.urn for a in policies.values()} <= set(
        provider.dependencies
    )


@pytest.mark.parametrize(("stack", "region"), cases_and_flipped())
def test_environment_differences(stack: str, region: str) -> None:
    prod = plan(stack).config.is_prod
    rc = plan(stack).config.region(region)
    eks = one(stack, region, EKS)
    key = one(stack, region, KMS, "eks-secrets-")
    assert eks.inputs["deletionProtection"] is prod
    assert eks.protect is prod
    # Retained in every stack: its policy denies ScheduleKeyDeletion to CI's up role, so a region
    # removed by up.yml must leave the key in the account rather than fail at it.
    assert key.protect is prod and key.retain_on_delete is True
    assert "kms:ScheduleKeyDeletion" in json.dumps(key.inputs["policy"])
    hub = plan(stack).config.hub_region
    hub_egress = sorted(f"{e.outputs['publicIp']}/32" for e in regional(stack, hub, "aws:ec2/eip:Eip"))
    assert hub_egress, "the hub has NAT addresses"
    configured = list(rc.public_access_cidrs)
    if region == hub:
        # Nothing outside the hub's own VPC and the configured CIDRs reaches the hub's API (the
        # readers' addresses are the full program's: test_a_hub_that_a_deploy_reads_admits_...).
        assert eks.inputs["endpointPublicAccess"] is bool(configured)
        assert eks.inputs.get("publicAccessCidrs") == (configured or None)
    else:
        # A spoke admits the configured CIDRs and the hub's NAT addresses (Argo CD), nothing else.
        assert eks.inputs["endpointPublicAccess"] is True
        assert eks.inputs["publicAccessCidrs"] == sorted({*configured, *hub_egress})
        assert "0.0.0.0/0" not in eks.inputs["publicAccessCidrs"]
    ng = one(stack, region, NODE_GROUP)
    assert ng.inputs["capacityType"] == rc.node_group.capacity_type
    if prod:  # spot capacity can vanish: the config refuses it in prod
        assert ng.inputs["capacityType"] == "ON_DEMAND"


@pytest.mark.parametrize(("stack", "region"), cases())
def test_secrets_are_encrypted_with_a_rotating_key_of_the_region(stack: str, region: str) -> None:
    key = one(stack, region, KMS, "eks-secrets-")
    eks = one(stack, region, EKS)
    assert key.inputs["enableKeyRotation"] is True
    assert eks.inputs["encryptionConfigKeyArn"] == key.outputs["arn"]
    assert f":kms:{region}:{plan(stack).config.account_id}:" in key.outputs["arn"]


# ---------------------------------------------------------------------------------------------
# Nodes
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("stack", "region"), cases_and_flipped())
def test_node_group_settings(stack: str, region: str) -> None:
    p = plan(stack)
    ng_cfg = p.config.region(region).node_group
    ng = one(stack, region, NODE_GROUP)
    i = ng.inputs
    assert i["clusterName"] == naming.cluster_name(p.config.environment, region)
    assert i["instanceTypes"] == list(ng_cfg.instance_types)
    assert i["scalingConfig"] == {
        "minSize": ng_cfg.min_size,
        "desiredSize": ng_cfg.desired_size,
        "maxSize": ng_cfg.max_size,
    }
    # The EKS-optimized AL2023 AMI of the instance types' one architecture (AMI types:
    # https://docs.aws.amazon.com/eks/latest/APIReference/API_Nodegroup.html#AmazonEKS-Type-Nodegroup-amiType).
    (architecture,) = {eks_docs.instance_architecture(t) for t in ng_cfg.instance_types}
    assert (
        i["amiType"] == {"x86_64": "AL2023_x86_64_STANDARD", "arm64": "AL2023_ARM_64_STANDARD"}[architecture]
    )
    # Nodes only in private subnets, with the region's launch template and node role.
    assert names(ng.property_dependencies["subnetIds"], p) == {
        f"private-{z}" for z in p.config.region(region).availability_zones
    }
    assert names(ng.property_dependencies["launchTemplate"], p) == {f"nodes-{region}"}
    assert names(ng.property_dependencies["nodeRoleArn"], p) == {f"nodes-{region}"}
    # The cluster name is read from the cluster, so the node group waits for the control plane.
    assert one(stack, region, EKS).urn in ng.property_dependencies["clusterName"]


@pytest.mark.parametrize(("stack", "region"), cases())
def test_nodes_wait_for_their_way_out(stack: str, region: str) -> None:
    ng = one(stack, region, NODE_GROUP)
    egress = {
        r.urn
        for r in regional(stack, region)
        if (r.type == ROUTE and r.name.startswith("private-default-"))
        or (r.type == RTA and r.name.startswith("private-rta-"))
    }
    assert len(egress) == 2 * len(plan(stack).config.region(region).availability_zones)
    assert egress <= set(ng.dependencies)


@pytest.mark.parametrize(("stack", "region"), cases())
def test_launch_template_requires_imdsv2_one_hop_and_encrypted_root(stack: str, region: str) -> None:
    lt = one(stack, region, LT)
    assert lt.inputs["metadataOptions"] == {
        "httpEndpoint": "enabled",
        "httpTokens": "required",
        "httpPutResponseHopLimit": 1,
        "instanceMetadataTags": "disabled",
    }
    (root,) = lt.inputs["blockDeviceMappings"]
    assert root["ebs"]["encrypted"] == "true"
    assert root["ebs"]["volumeSize"] == plan(stack).config.region(region).node_group.disk_size_gib
    # No security group in the template: EKS then applies the cluster security group.
    assert "vpcSecurityGroupIds" not in lt.inputs and "networkInterfaces" not in lt.inputs
    assert not lt.inputs.get("imageId")  # the EKS-optimized AMI of amiType, kept current by EKS


@pytest.mark.parametrize(("stack", "region"), cases())
def test_node_role_permissions(stack: str, region: str) -> None:
    p = plan(stack)
    role = next(r for r in regional(stack, region, ROLE) if r.name == f"nodes-{region}")
    assert json.loads(role.inputs["assumeRolePolicy"]) == eks_docs.node_assume_role_policy()
    attached = {
        r.inputs["policyArn"]
        for r in regional(stack, region, "aws:iam/rolePolicyAttachment:RolePolicyAttachment")
    }
    assert attached == {
        "arn:aws:iam::aws:policy/AmazonEKSWorkerNodePolicy",
        "arn:aws:iam::aws:policy/AmazonEKS_CNI_Policy",
    }
    (inline,) = [
        r for r in regional(stack, region, "aws:iam/rolePolicy:RolePolicy") if r.name.startswith("nodes-")
    ]
    doc = json.loads(inline.inputs["policy"])
    own = f"arn:aws:ecr:{region}:{p.config.account_id}:repository/{p.config.ecr.prefix}/*"
    assert [s["Resource"] for s in doc["Statement"] if s["Sid"] == "PullPlatformImages"] == [[own]]


# ---------------------------------------------------------------------------------------------
# Add-ons and the critical path
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("stack", "region"), cases())
def test_addons_pinned_and_adopting(stack: str, region: str) -> None:
    k8s = plan(stack).config.region(region).kubernetes_version
    addons = {a.inputs["addonName"]: a for a in regional(stack, region, ADDON)}
    assert set(addons) == {"vpc-cni", "kube-proxy", "coredns", "eks-pod-identity-agent"}
    for name, addon in addons.items():
        # A version without a source is not pinned: CreateAddon gets none (infra/versions.py).
        assert addon.inputs.get("addonVersion") == versions.EKS_ADDONS[k8s][name]
        assert addon.inputs["resolveConflictsOnCreate"] == "OVERWRITE"
        # Deleting the resource never removes the add-on's software from the cluster.
        assert addon.inputs["preserve"] is True
        assert one(stack, region, EKS).urn in addon.dependencies


@pytest.mark.parametrize(("stack", "region"), cases())
def test_node_group_follows_the_cluster_version(stack: str, region: str) -> None:
    # A version bump in the stack file moves the control plane, then the nodes (they wait for it).
    ng = one(stack, region, NODE_GROUP)
    assert ng.inputs["version"] == one(stack, region, EKS).inputs["version"]
    assert ng.inputs["version"] == plan(stack).config.region(region).kubernetes_version
    assert one(stack, region, EKS).urn in ng.dependencies


@pytest.mark.parametrize(("stack", "region"), cases())
def test_critical_path_is_control_plane_then_nodes(stack: str, region: str) -> None:
    p = plan(stack)
    ng = one(stack, region, NODE_GROUP)
    eks = one(stack, region, EKS)
    addons = {a.inputs["addonName"]: a for a in regional(stack, region, ADDON)}
    # coredns needs nodes; nothing else waits for them, and nodes wait for no add-on.
    assert ng.urn in addons["coredns"].dependencies
    for name in ("vpc-cni", "kube-proxy", "eks-pod-identity-agent"):
        assert ng.urn not in {r.urn for r in closure(p, addons[name])}, name
    assert not [r for r in closure(p, ng) if r.type == ADDON]
    # The control plane waits for neither NAT nor anything of the nodes. A spoke's waits for
    # the hub's NAT addresses (seconds after the hub's network starts): it admits them to its
    # API endpoint so Argo CD can reach it. Its own region's addresses it never waits for.
    waits = closure(p, eks)
    assert not {r.type for r in waits} & {NAT, ROUTE, NODE_GROUP, LT, ADDON, ROLE}
    eips = {p.region_of(r) for r in waits if r.type == EIP}
    assert eips == (set() if region == p.config.hub_region else {p.config.hub_region})


# ---------------------------------------------------------------------------------------------
# Tags, attributes and outputs
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("stack", "region"), cases())
def test_every_taggable_resource_carries_the_base_tags(stack: str, region: str) -> None:
    base = naming.base_tags(plan(stack).config.environment, plan(stack).config.tags)
    tagged = [r for r in regional(stack, region) if r.type in TAGGABLE]
    assert {r.type for r in tagged} == TAGGABLE
    for r in tagged:
        tags: Mapping[str, str] = r.inputs.get("tags") or {}
        assert base.items() <= tags.items(), (r.type, r.name)


@pytest.mark.parametrize("stack", STACKS)
def test_outputs(stack: str) -> None:
    p = plan(stack)
    assert p.outputs[naming.OUTPUT_KUBECONFIGS] == offline.SECRET_MARK
    clusters = p.outputs[naming.OUTPUT_CLUSTERS]
    assert sorted(clusters) == sorted(regions(stack))
    for region, entry in clusters.items():
        eks = one(stack, region, EKS)
        assert entry == {
            "name": naming.cluster_name(p.config.environment, region),
            "endpoint": eks.outputs["mockEndpoint"],
            "oidcIssuer": eks.outputs["oidcIssuer"],
        }
        assert p.outputs["certificateAuthorities"][region] == eks.outputs["mockCertificateAuthority"]


@pytest.mark.parametrize(("stack", "region"), cases())
def test_kubeconfig_reaches_the_cluster_with_exec_auth(stack: str, region: str) -> None:
    p = plan(stack)
    eks = one(stack, region, EKS)
    doc = json.loads(p.outputs["plainKubeconfigs"][region])
    (cluster,) = doc["clusters"]
    assert cluster["cluster"] == {
        "server": eks.outputs["mockEndpoint"],
        "certificate-authority-data": eks.outputs["mockCertificateAuthority"],
    }
    exec_ = doc["users"][0]["user"]["exec"]
    assert exec_["apiVersion"] == "client.authentication.k8s.io/v1beta1"
    assert [exec_["command"], *exec_["args"]] == [
        "aws",
        "eks",
        "get-token",
        "--cluster-name",
        naming.cluster_name(p.config.environment, region),
        "--region",
        region,
    ]


def test_a_cluster_is_named_after_its_region() -> None:
    c = cfg.load_stack_file("staging")
    region, other = c.region_names[:2]
    args = cl.RegionalClusterArgs.from_config(c, region)

    def wrong(config: cfg.StackConfig) -> dict[str, Any]:
        cl.RegionalCluster(other, args, providers.aws_providers(config)[region])
        return {}

    with pytest.raises(Exception, match="named after its region"):
        offline.run("staging", program=wrong)


@pytest.mark.parametrize("stack", ["staging", "prod"])
def test_each_stack_publishes_its_hub_nat_addresses(stack: str) -> None:
    """``hubEgressCidrs``: the hub's NAT Elastic IPs as /32s, what a stack whose hub another
    stack's deploy reads admits (infra.components.hub_readers)."""
    p = offline.run(stack)
    hub = p.config.hub_region
    eips = sorted(
        f"{e.outputs['publicIp']}/32" for e in p.of_type("aws:ec2/eip:Eip") if p.region_of(e) == hub
    )
    assert eips and p.outputs[naming.OUTPUT_HUB_EGRESS_CIDRS] == eips


def test_a_hub_that_a_deploy_reads_admits_the_readers_addresses_and_nothing_public_without_them() -> None:
    """The hub of a source stack admits its replicas' hub NAT addresses (read by StackReference);
    with no configured CIDR and no reader address, the endpoint stays private (a public endpoint
    without CIDRs would admit 0.0.0.0/0: https://docs.aws.amazon.com/eks/latest/userguide/cluster-endpoint.html)."""
    stacks = list(stackset.load().values())
    sources = [c for c in stacks if stackset.deploy_readers(c, stacks)]
    assert sources, "the example has a source stack read by a replica's deploy"
    for source in sources:
        raw = cfg.read_stack_file(cfg.stack_file(source.stack))
        hub = source.hub_region
        raw["platform:regions"][hub]["publicAccessCidrs"] = []
        p = offline.run(source.stack, raw)
        [eks] = [r for r in p.of_type(EKS) if p.region_of(r) == hub]
        readers = stackset.deploy_readers(source, stacks)
        expected = sorted(
            c for r in readers for c in offline.stack_reference_outputs(r)[naming.OUTPUT_HUB_EGRESS_CIDRS]
        )
        assert expected and eks.inputs["publicAccessCidrs"] == expected
        assert eks.inputs["endpointPublicAccess"] is True
        # And the full program's hub admits the configured CIDRs besides.
        full = offline.run(source.stack)
        [eks] = [r for r in full.of_type(EKS) if full.region_of(r) == hub]
        configured = list(source.region(hub).public_access_cidrs)
        assert eks.inputs["publicAccessCidrs"] == sorted({*configured, *expected})
    # A replica's hub admits no reader (prod's stays private in the example).
    for config in stacks:
        if not stackset.deploy_readers(config, stacks):
            full = offline.run(config.stack)
            [eks] = [r for r in full.of_type(EKS) if full.region_of(r) == config.hub_region]
            configured = list(config.region(config.hub_region).public_access_cidrs)
            assert eks.inputs.get("publicAccessCidrs") == (configured or None)


def test_the_offline_stack_reference_stands_in_one_address_per_nat_gateway() -> None:
    for stack in ("staging", "prod"):
        config = cfg.load_stack_file(stack)
        hub = config.region(config.hub_region)
        cidrs = offline.stack_reference_outputs(f"organization/platform/{stack}")[
            naming.OUTPUT_HUB_EGRESS_CIDRS
        ]
        assert len(cidrs) == (1 if hub.nat_gateways == "single" else len(hub.availability_zones))
        assert all(
            ipaddress.IPv4Network(c).subnet_of(ipaddress.IPv4Network("198.51.100.0/24")) for c in cidrs
        )
    assert offline.stack_reference_outputs("organization/platform/no-such-stack") == {}
