"""Tagging rules, KMS rotation, and the list of untaggable types against the installed pulumi-aws."""

from __future__ import annotations

import re
from pathlib import Path

import pulumi_aws
import pytest

from infra import naming
from policies import tagging
from tests.policies.support import check, tags, view

VPC = "aws:ec2/vpc:Vpc"


def missing_message(label: str, missing: str) -> str:
    return (
        f"{label} lacks the required tags {missing}; pass tags=naming.base_tags(config.environment, "
        "config.tags) when declaring it."
    )


# --- required tags -----------------------------------------------------------------------------


def test_resource_with_the_base_tags_passes() -> None:
    assert check("tags-required", view(VPC, "vpc-us-west-2", {"tags": tags()})) == []


def test_resource_missing_some_required_tags_is_refused() -> None:
    partial = {naming.TAG_PROJECT: "platform", naming.TAG_ENVIRONMENT: "  "}
    assert check("tags-required", view(VPC, "vpc-us-west-2", {"tags": partial})) == [
        missing_message(f"{VPC}::vpc-us-west-2", f"{naming.TAG_ENVIRONMENT}, {naming.TAG_MANAGED_BY}")
    ]


def test_resource_without_tags_is_refused() -> None:
    assert check("tags-required", view(VPC, "vpc-us-west-2", {"cidrBlock": "10.0.0.0/16"})) == [
        missing_message(f"{VPC}::vpc-us-west-2", ", ".join(naming.REQUIRED_TAGS))
    ]


def test_pulumi_eks_cluster_component_is_held_to_the_tags() -> None:
    assert check("tags-required", view("eks:index:Cluster", "eks", {"tags": tags()})) == []
    assert check("tags-required", view("eks:index:Cluster", "eks", {})) != []


def test_untaggable_and_non_aws_types_are_not_judged() -> None:
    assert check("tags-required", view("aws:iam/rolePolicy:RolePolicy", "p", {})) == []
    assert check("tags-required", view("kubernetes:core/v1:Secret", "s", {})) == []
    assert check("tags-required", view("platform:eks:RegionalCluster", "c", {})) == []


def test_children_of_pulumi_eks_are_reported_not_blocked() -> None:
    child = view(
        "aws:iam/role:Role",
        "eks-us-west-2-eksRole",
        {"name": "x"},
        parents=("platform:eks:RegionalCluster", "eks:index:Cluster", "eks:index:ServiceRole"),
    )
    assert tagging.inside_third_party_component(child)
    assert check("tags-required", child) == []
    assert check("tags-required-in-third-party-components", child) == [
        missing_message("aws:iam/role:Role::eks-us-west-2-eksRole", ", ".join(naming.REQUIRED_TAGS))
    ]
    own = view("aws:iam/role:Role", "nodes", {"name": "x"}, parents=("platform:eks:RegionalCluster",))
    assert not tagging.inside_third_party_component(own)
    assert check("tags-required-in-third-party-components", own) == []


# --- environment tag matches the stack ---------------------------------------------------------


def test_environment_tag_of_the_stack_passes() -> None:
    assert check("tags-environment-matches-stack", view(VPC, "v", {"tags": tags("prod")})) == []


def test_environment_tag_of_another_stack_is_refused() -> None:
    assert check("tags-environment-matches-stack", view(VPC, "v", {"tags": tags("staging")})) == [
        f"{VPC}::v is tagged {naming.TAG_ENVIRONMENT}=staging in the prod stack; tag it with the stack's own "
        "environment (naming.base_tags(config.environment, ...))."
    ]


def test_missing_environment_tag_is_left_to_tags_required() -> None:
    assert check("tags-environment-matches-stack", view(VPC, "v", {})) == []
    assert (
        check("tags-environment-matches-stack", view(VPC, "v", {"tags": tags("staging")}, environment=None))
        == []
    )


# --- KMS rotation ------------------------------------------------------------------------------

KEY = "aws:kms/key:Key"


def test_rotating_key_passes() -> None:
    assert check("kms-key-rotation", view(KEY, "ecr-us-west-2", {"enableKeyRotation": True})) == []


@pytest.mark.parametrize("props", [{"enableKeyRotation": False}, {}])
def test_key_without_rotation_is_refused(props: dict[str, object]) -> None:
    assert check("kms-key-rotation", view(KEY, "ecr-us-west-2", props)) == [
        "KMS key ecr-us-west-2 does not rotate; set enableKeyRotation to true."
    ]


def test_asymmetric_keys_cannot_rotate_and_are_not_judged() -> None:
    assert (
        check(
            "kms-key-rotation",
            view(KEY, "signing", {"customerMasterKeySpec": "RSA_2048", "keyUsage": "SIGN_VERIFY"}),
        )
        == []
    )


# --- the untaggable list against the installed pulumi-aws SDK ----------------------------------

SDK = Path(pulumi_aws.__file__).parent


def sdk_takes_tags(type_token: str) -> bool:
    """Whether pulumi-aws's resource for ``type_token`` has a ``tags`` input (read from its source)."""
    module, cls = type_token.split(":")[1].split("/")
    path = SDK / module / (re.sub(r"(?<!^)(?=[A-Z])", "_", cls).lower() + ".py")
    source = path.read_text()
    args = source.split(f"class {type_token.rsplit(':', 1)[1]}Args", 1)[1].split("\nclass ", 1)[0]
    return "def tags(self)" in args


@pytest.mark.parametrize("type_token", sorted(tagging.UNTAGGABLE_TYPES))
def test_every_listed_untaggable_type_really_takes_no_tags(type_token: str) -> None:
    assert not sdk_takes_tags(type_token)


@pytest.mark.parametrize(
    "type_token",
    [
        "aws:ec2/vpc:Vpc",
        "aws:ec2/subnet:Subnet",
        "aws:ecr/repository:Repository",
        "aws:eks/cluster:Cluster",
        "aws:iam/role:Role",
        "aws:kms/key:Key",
    ],
)
def test_sdk_reader_sees_tags_where_they_exist(type_token: str) -> None:
    # Guards the reader above: it must not call everything untaggable.
    assert sdk_takes_tags(type_token)


def test_every_aws_type_the_program_declares_is_classified_as_the_sdk_says() -> None:
    from infra import offline

    declared = {
        r.type
        for name in ("staging", "prod")
        for r in offline.run(name).resources
        if r.type.startswith("aws:")
    }
    assert declared, "the program declares no AWS resources yet"
    wrong = {t for t in declared if (t in tagging.UNTAGGABLE_TYPES) == sdk_takes_tags(t)}
    assert wrong == set()
