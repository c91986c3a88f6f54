"""IAM documents of the hub role and the Image Updater role (pure functions)."""

from __future__ import annotations

import fnmatch
from typing import Any

import pytest

from infra import naming
from infra.documents import argocd_iam as iam

ACCOUNT = "444455556666"


def statements(doc: dict[str, Any]) -> list[dict[str, Any]]:
    assert doc["Version"] == "2012-10-17"
    return list(doc["Statement"])


def actions(statement: dict[str, Any]) -> set[str]:
    a = statement["Action"]
    return {a} if isinstance(a, str) else set(a)


def test_pod_identity_trust_is_the_service_with_assume_and_tag_session() -> None:
    doc = iam.argocd_trust_policy(ACCOUNT, "prod", "us-west-2")
    pod = [s for s in statements(doc) if s["Principal"] == {"Service": "pods.eks.amazonaws.com"}]
    assert len(pod) == 1
    assert actions(pod[0]) == {"sts:AssumeRole", "sts:TagSession"}
    cond = pod[0]["Condition"]["StringEquals"]
    assert cond["aws:RequestTag/eks-cluster-name"] == naming.cluster_name("prod", "us-west-2")
    assert cond["aws:RequestTag/kubernetes-namespace"] == naming.ARGOCD_NAMESPACE
    assert set(cond["aws:RequestTag/kubernetes-service-account"]) == set(
        naming.ARGOCD_CONTROLLER_SERVICE_ACCOUNTS
    )
    assert cond["aws:SourceAccount"] == ACCOUNT


def test_hub_role_is_trusted_by_pod_identity_only_and_never_assumes_itself() -> None:
    # The cluster Secrets carry no roleARN (tests/contracts/test_pod_identity_chain.py), so the
    # role is never assumed from its own session: no self-trust, no permission policy.
    (stmt,) = statements(iam.argocd_trust_policy(ACCOUNT, "prod", "us-west-2"))
    assert stmt["Principal"] == {"Service": "pods.eks.amazonaws.com"}
    assert not hasattr(iam, "argocd_permissions_policy")


def test_trust_follows_the_hub_region() -> None:
    doc = iam.argocd_trust_policy(ACCOUNT, "prod", "us-east-1")
    cond = statements(doc)[0]["Condition"]["StringEquals"]
    assert cond["aws:RequestTag/eks-cluster-name"] == naming.cluster_name("prod", "us-east-1")


def test_image_updater_trust_names_only_its_service_account() -> None:
    (stmt,) = statements(iam.image_updater_trust_policy(ACCOUNT, "staging", "us-west-2"))
    assert stmt["Principal"] == {"Service": "pods.eks.amazonaws.com"}
    assert stmt["Condition"]["StringEquals"]["aws:RequestTag/kubernetes-service-account"] == [
        naming.IMAGE_UPDATER_SERVICE_ACCOUNT
    ]


def test_a_trust_policy_needs_a_service_account() -> None:
    with pytest.raises(ValueError, match="at least one service account"):
        iam.pod_identity_trust_policy(ACCOUNT, "c", "ns", ())


def test_image_updater_reads_ecr_only_on_the_prefix_repositories() -> None:
    regions = ("us-west-2", "us-east-1", "eu-west-1")
    stmts = statements(iam.image_updater_ecr_policy(ACCOUNT, regions, "shop"))
    assert all(s["Effect"] == "Allow" for s in stmts)
    granted = set().union(*(actions(s) for s in stmts))
    assert granted == {
        "ecr:GetAuthorizationToken",
        "ecr:BatchGetImage",
        "ecr:DescribeImages",
        "ecr:ListImages",
        "ecr:GetDownloadUrlForLayer",
    }
    (token,) = [s for s in stmts if "ecr:GetAuthorizationToken" in actions(s)]
    assert actions(token) == {"ecr:GetAuthorizationToken"}  # the only action on "*"
    (reads,) = [s for s in stmts if s is not token]
    resources = reads["Resource"]
    assert resources == [f"arn:aws:ecr:{r}:{ACCOUNT}:repository/shop/*" for r in regions]

    # The patterns match the prefix's repositories in those regions, and nothing else.
    def allowed(arn: str) -> bool:
        return any(fnmatch.fnmatchcase(arn, p) for p in resources)

    assert allowed(f"arn:aws:ecr:eu-west-1:{ACCOUNT}:repository/shop/web")
    assert not allowed(f"arn:aws:ecr:eu-west-1:{ACCOUNT}:repository/other/web")
    assert not allowed(f"arn:aws:ecr:eu-central-1:{ACCOUNT}:repository/shop/web")
    assert not allowed("arn:aws:ecr:eu-west-1:111122223333:repository/shop/web")
