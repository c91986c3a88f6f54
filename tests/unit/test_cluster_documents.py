"""Node IAM documents and EKS facts (infra/documents/eks.py), without Pulumi."""

from __future__ import annotations

import json
import re

import pytest

from infra import config
from infra.documents import eks as d


def statements(doc: dict) -> dict[str, dict]:
    return {s["Sid"]: s for s in doc["Statement"]}


def test_node_trust_policy_lets_only_ec2_assume_the_role() -> None:
    doc = d.node_assume_role_policy()
    assert doc["Version"] == "2012-10-17"
    (stmt,) = doc["Statement"]
    assert stmt["Effect"] == "Allow"
    assert stmt["Principal"] == {"Service": "ec2.amazonaws.com"}
    assert stmt["Action"] == "sts:AssumeRole"
    assert "Condition" not in stmt


def test_ecr_pull_is_scoped_to_the_regions_repositories_under_the_prefix() -> None:
    doc = d.ecr_pull_policy("444455556666", "eu-west-1", "shop")
    json.dumps(doc)  # a valid IAM document is plain JSON
    s = statements(doc)
    assert s["PullPlatformImages"]["Resource"] == ["arn:aws:ecr:eu-west-1:444455556666:repository/shop/*"]
    assert sorted(s["PullPlatformImages"]["Action"]) == ["ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer"]


def test_the_only_wildcard_resource_is_the_registry_token() -> None:
    doc = d.ecr_pull_policy("111122223333", "us-west-2", "shop")
    for stmt in doc["Statement"]:
        assert stmt["Effect"] == "Allow"
        if "*" in stmt["Resource"]:
            assert stmt["Action"] == ["ecr:GetAuthorizationToken"]
        for arn in stmt["Resource"]:
            assert arn == "*" or arn.startswith("arn:aws:ecr:us-west-2:"), arn


def test_nodes_can_neither_push_nor_read_other_prefixes_or_regions() -> None:
    doc = d.ecr_pull_policy("111122223333", "us-east-1", "shop")
    actions = {a for s in doc["Statement"] for a in s["Action"]}
    assert not actions & {"ecr:PutImage", "ecr:InitiateLayerUpload", "ecr:UploadLayerPart", "ecr:*"}
    own = statements(doc)["PullPlatformImages"]["Resource"]
    assert not any(
        re.fullmatch(arn.replace("*", ".*"), "arn:aws:ecr:us-east-1:111122223333:repository/other/x")
        for arn in own
    )
    assert not any("us-west-2" in arn or "eu-west-1" in arn for arn in own)


def test_nodes_may_pull_the_eks_addon_images_of_their_region() -> None:
    # EKS add-on images live in an AWS-owned registry per region; without this the add-ons on a
    # node with a scoped role never start.
    assert statements(d.ecr_pull_policy("111122223333", "us-west-2", "shop"))["PullEksAddonImages"][
        "Resource"
    ] == ["arn:aws:ecr:us-west-2:602401143452:repository/*"]
    assert statements(d.ecr_pull_policy("111122223333", "eu-south-1", "shop"))["PullEksAddonImages"][
        "Resource"
    ] == ["arn:aws:ecr:eu-south-1:590381155156:repository/*"]


def test_every_region_config_accepts_has_an_addon_registry() -> None:
    missing = [r for r in config.KNOWN_REGIONS if r not in d.EKS_ADDON_REGISTRY_ACCOUNTS]
    assert missing == []
    assert all(re.fullmatch(r"[0-9]{12}", a) for a in d.EKS_ADDON_REGISTRY_ACCOUNTS.values())


def test_an_unknown_region_is_an_error_not_a_guess() -> None:
    with pytest.raises(ValueError, match="no EKS add-on image registry is known for region xx-east-9"):
        d.ecr_pull_policy("111122223333", "xx-east-9", "shop")


def test_node_role_policies_and_admin_access_policy() -> None:
    assert set(d.NODE_MANAGED_POLICY_ARNS) == {
        "arn:aws:iam::aws:policy/AmazonEKSWorkerNodePolicy",
        "arn:aws:iam::aws:policy/AmazonEKS_CNI_Policy",
    }
    # Broad registry access would undo the scoped pull policy.
    assert not any("ContainerRegistry" in arn for arn in d.NODE_MANAGED_POLICY_ARNS)
    assert d.CLUSTER_ADMIN_ACCESS_POLICY_ARN.endswith(":cluster-access-policy/AmazonEKSClusterAdminPolicy")


def test_all_five_control_plane_log_types() -> None:
    assert sorted(d.CONTROL_PLANE_LOG_TYPES) == sorted(
        ["api", "audit", "authenticator", "controllerManager", "scheduler"]
    )


@pytest.mark.parametrize(
    ("types", "expected"),
    [
        (["m6i.large", "m6a.large"], "AL2023_x86_64_STANDARD"),
        (["m6i.xlarge"], "AL2023_x86_64_STANDARD"),
        (["g5.xlarge", "g4dn.xlarge", "c5n.large", "m7i-flex.large"], "AL2023_x86_64_STANDARD"),
        (
            ["m7g.large", "c7gn.large", "r8g.xlarge", "t4g.medium", "x2gd.large", "g5g.xlarge"],
            "AL2023_ARM_64_STANDARD",
        ),
        # a1: the first Graviton, named before the "g" attribute existed.
        (["a1.large", "a1.xlarge"], "AL2023_ARM_64_STANDARD"),
        (["im4gn.large", "is4gen.large", "i8ge.large"], "AL2023_ARM_64_STANDARD"),
    ],
)
def test_ami_type_follows_the_architecture(types: list[str], expected: str) -> None:
    assert d.ami_type(types) == expected


def test_mixing_architectures_in_one_node_group_is_refused() -> None:
    with pytest.raises(ValueError, match="mix Graviton"):
        d.ami_type(["m6i.large", "m7g.large"])
    with pytest.raises(ValueError):
        d.ami_type([])
