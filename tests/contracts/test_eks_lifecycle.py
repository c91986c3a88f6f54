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
from tests.contracts import aws_rules

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
    (https://docs.aws.amazon.com/eks/latest/APIReference/API_DeleteAddon.html). A refactor that
    deletes an add-on resource of the plan (a rename, a re-parent) leaves vpc-cni, kube-proxy,
    coredns and the Pod Identity agent running; without ``preserve`` it would remove them."""
    addons = plan(stack).of_type(ADDON)
    assert addons
    for addon in addons:
        assert aws_rules.eks_delete_addon_keeps_software(bool(addon.inputs.get("preserve"))), addon.name
    assert not aws_rules.eks_delete_addon_keeps_software(False)  # the rule bites without preserve


def _bumped(stack: str, version: str) -> offline.Plan:
    raw = cfg.read_stack_file(cfg.stack_file(stack))
    regions = {name: {**r, "kubernetesVersion": version} for name, r in raw["platform:regions"].items()}
    return offline.run(stack, {**raw, "platform:regions": regions})


@pytest.mark.parametrize("stack", STACKS)
def test_a_version_change_moves_the_node_groups_too(stack: str) -> None:
    """EKS managed node groups keep the Kubernetes version they were created with until an
    update sets their ``version`` (https://docs.aws.amazon.com/eks/latest/userguide/update-managed-node-group.html).
    Change every region's kubernetesVersion in the stack file to another usable one: after the
    update each node group runs its cluster's new version; without the ``version`` input it
    would stay on the old one."""
    p = plan(stack)
    current = {p.region_of(ng): ng.inputs["version"] for ng in p.of_type(NODE_GROUP)}
    others = [v for v in versions.usable_kubernetes_versions() if v not in set(current.values())]
    if not others:
        pytest.skip("only one usable Kubernetes version: nothing to move to")
    moved = _bumped(stack, others[0])
    clusters = {moved.region_of(c): c.inputs["version"] for c in moved.of_type(EKS)}
    for ng in moved.of_type(NODE_GROUP):
        region = moved.region_of(ng)
        after = aws_rules.eks_node_group_version_after_update(current[region], ng.inputs.get("version"))
        assert after == clusters[region] == others[0], region
        assert aws_rules.eks_node_group_version_after_update(current[region], None) != clusters[region]


@pytest.mark.parametrize("stack", STACKS)
def test_eks_never_upgrades_a_cluster_behind_the_program(stack: str) -> None:
    """EKS cluster upgrade policy (https://docs.aws.amazon.com/eks/latest/userguide/view-upgrade-policy.html):
    "If your upgrade policy is EXTENDED, the cluster will not be automatically upgraded ... If
    your upgrade policy is STANDARD, it will be automatically upgraded." After standard support
    ends every cluster still runs the stack file's version (the next `up` would otherwise try to
    go back: EKS cannot downgrade); with STANDARD it would not."""
    for cluster in plan(stack).of_type(EKS):
        mine = cluster.inputs["version"]
        policy = cluster.inputs["upgradePolicy"]["supportType"]
        assert aws_rules.eks_version_after_standard_support(policy, mine, "next") == mine
        assert aws_rules.eks_version_after_standard_support("STANDARD", mine, "next") != mine


def _lower_bound(requirement: str) -> tuple[int, int, int]:
    match = re.search(r">=([0-9.]+)", requirement)
    assert match, requirement
    major, minor, patch = [*(int(x) for x in match.group(1).split(".")), 0, 0][:3]
    return major, minor, patch


def test_pulumi_eks_is_pinned_to_releases_with_every_argument_the_program_uses() -> None:
    """pulumi/pulumi-eks provider/cmd/pulumi-resource-eks/schema.json: ``deletionProtection`` is an
    input of ``eks:index:Cluster`` from tag v4.1.0 (absent at v4.0.1); the other inputs the
    program passes are there from v4.0.0 (aws_rules.PULUMI_EKS_CLUSTER_INPUT_SINCE). The oldest
    release pyproject admits has every input the plan's clusters use; 4.0 would lack one."""
    deps = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    (eks,) = [d for d in deps if d.startswith("pulumi-eks")]
    assert "<5" in eks
    oldest = _lower_bound(eks)
    for cluster in plan("prod").of_type(EKS):
        used = set(cluster.inputs)
        assert "deletionProtection" in used
        assert aws_rules.pulumi_eks_release_lacking(used, oldest) == []
        assert aws_rules.pulumi_eks_release_lacking(used, (4, 0, 1)) == ["deletionProtection"]
