"""Contracts: the lifecycle of each cluster (add-ons, node group, upgrade policy, SDK pins).

Each test names the upstream source it pins in its docstring.
"""

from __future__ import annotations

import re
import tomllib
from functools import cache
from pathlib import Path

import pytest

from infra import config as cfg
from infra import offline, versions

ROOT = Path(__file__).resolve().parents[2]
STACKS = ("staging", "prod")
EKS = "eks:index:Cluster"
ADDON = "aws:eks/addon:Addon"
NODE_GROUP = "aws:eks/nodeGroup:NodeGroup"


@cache
def plan(stack: str) -> offline.Plan:
    return offline.run(stack)


@pytest.mark.parametrize("stack", STACKS)
def test_deleting_an_addon_resource_keeps_its_software(stack: str) -> None:
    """EKS DeleteAddon ``preserve``: "preserves the add-on software on your cluster but Amazon EKS
    stops managing any settings for the add-on"
    (https://docs.aws.amazon.com/eks/latest/APIReference/API_DeleteAddon.html). Without it, a
    refactor that renames an add-on resource deletes vpc-cni from a live cluster."""
    addons = plan(stack).of_type(ADDON)
    assert len(addons) == 4 * len(plan(stack).config.region_names)
    assert all(a.inputs.get("preserve") is True for a in addons)


@pytest.mark.parametrize("stack", STACKS)
def test_the_node_group_is_pinned_to_its_clusters_version(stack: str) -> None:
    """EKS managed node groups keep the Kubernetes version they were created with until their
    ``version`` changes (https://docs.aws.amazon.com/eks/latest/userguide/update-managed-node-group.html);
    the node group names its cluster's version and waits for the cluster, so a bump upgrades the
    control plane first, then the nodes."""
    p = plan(stack)
    for ng in p.of_type(NODE_GROUP):
        region = p.region_of(ng)
        assert region is not None
        assert ng.inputs["version"] == p.config.region(region).kubernetes_version
    for cluster in p.of_type(EKS):
        region = p.region_of(cluster)
        assert region is not None
        assert cluster.inputs["version"] == p.config.region(region).kubernetes_version


@pytest.mark.parametrize("stack", STACKS)
def test_eks_never_upgrades_a_cluster_behind_the_program(stack: str) -> None:
    """EKS cluster upgrade policy (https://docs.aws.amazon.com/eks/latest/userguide/view-upgrade-policy.html):
    "If your upgrade policy is EXTENDED, the cluster will not be automatically upgraded, and will
    enter extended support. If your upgrade policy is STANDARD, it will be automatically
    upgraded." An automatic upgrade leaves the stack file's version behind the live one, and
    the next `up` would try to go back (EKS cannot downgrade)."""
    for cluster in plan(stack).of_type(EKS):
        assert cluster.inputs["upgradePolicy"] == {"supportType": "EXTENDED"}


def test_config_refuses_a_kubernetes_version_without_cited_addon_versions() -> None:
    """EKS CreateAddon accepts only a version DescribeAddonVersions lists for the cluster's
    Kubernetes version (https://docs.aws.amazon.com/eks/latest/APIReference/API_CreateAddon.html):
    a version without pinned add-on versions is refused before anything is declared, naming the
    file's key, the value and the versions that work."""
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


def _lower_bound(requirement: str) -> tuple[int, ...]:
    match = re.search(r">=([0-9.]+)", requirement)
    assert match, requirement
    return tuple(int(x) for x in match.group(1).split("."))


def test_pulumi_eks_is_pinned_to_releases_with_every_argument_the_program_uses() -> None:
    """pulumi/pulumi-eks provider/cmd/pulumi-resource-eks/schema.json: ``deletionProtection`` is an
    input of ``eks:index:Cluster`` from tag v4.1.0 (absent at v4.0.1); every other input the
    program passes (upgradePolicy, skipDefaultSecurityGroups, bootstrapSelfManagedAddons,
    useDefaultVpcCni, corednsAddonOptions, kubeProxyAddonOptions, authenticationMode,
    createOidcProvider, encryptionConfigKeyArn) is there from v4.0.0. So pyproject admits
    pulumi-eks 4.1 and later within major 4."""
    deps = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    (eks,) = [d for d in deps if d.startswith("pulumi-eks")]
    assert _lower_bound(eks) >= (4, 1)
    assert "<5" in eks
    since_4_0 = {
        "upgradePolicy",
        "skipDefaultSecurityGroups",
        "bootstrapSelfManagedAddons",
        "useDefaultVpcCni",
        "corednsAddonOptions",
        "kubeProxyAddonOptions",
        "authenticationMode",
        "createOidcProvider",
        "encryptionConfigKeyArn",
    }
    for cluster in plan("prod").of_type(EKS):
        used = set(cluster.inputs)
        assert "deletionProtection" in used
        assert since_4_0 <= used
