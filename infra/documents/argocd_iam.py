"""IAM documents of Argo CD and Image Updater on the hub, as pure functions.

Both roles are reached only through EKS Pod Identity (no OIDC provider, no static keys):
https://docs.aws.amazon.com/eks/latest/userguide/pod-id-role.html. Pod Identity tags the role
session with the cluster, namespace and service account, and the trust policies below require
exactly those tags, so no other pod (or cluster) in the account can use these roles.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from infra import naming

POD_IDENTITY_PRINCIPAL = "pods.eks.amazonaws.com"
VERSION = "2012-10-17"

ARGOCD_ROLE_PURPOSE = "argocd"
IMAGE_UPDATER_ROLE_PURPOSE = "image-updater"

# What Image Updater needs to list tags and read manifests (for the newest-build strategy) and
# nothing that writes. GetAuthorizationToken cannot be scoped to a repository.
ECR_READ_ACTIONS: tuple[str, ...] = (
    "ecr:BatchGetImage",
    "ecr:DescribeImages",
    "ecr:GetDownloadUrlForLayer",
    "ecr:ListImages",
)


def role_arn(account_id: str, role_name: str) -> str:
    return f"arn:aws:iam::{account_id}:role/{role_name}"


def pod_identity_trust_policy(
    account_id: str,
    cluster_name: str,
    namespace: str,
    service_accounts: Sequence[str],
) -> dict[str, Any]:
    """Trust for ``pods.eks.amazonaws.com`` (sts:AssumeRole + sts:TagSession), limited by the
    session tags Pod Identity sets to one cluster, one namespace and the given service accounts."""
    if not service_accounts:
        raise ValueError("a Pod Identity role needs at least one service account")
    return {
        "Version": VERSION,
        "Statement": [
            {
                "Sid": "EksPodIdentity",
                "Effect": "Allow",
                "Principal": {"Service": POD_IDENTITY_PRINCIPAL},
                "Action": ["sts:AssumeRole", "sts:TagSession"],
                "Condition": {
                    "StringEquals": {
                        "aws:SourceAccount": account_id,
                        "aws:RequestTag/eks-cluster-name": cluster_name,
                        "aws:RequestTag/kubernetes-namespace": namespace,
                        "aws:RequestTag/kubernetes-service-account": sorted(service_accounts),
                    }
                },
            }
        ],
    }


def argocd_trust_policy(account_id: str, environment: str, hub_region: str) -> dict[str, Any]:
    """The hub role: the three Argo CD controllers through Pod Identity, and nobody else.

    No statement lets the role assume itself: the cluster Secrets carry no ``roleARN``
    (:func:`infra.manifests.argocd.cluster_config`), so ``argocd-k8s-auth`` signs its token with
    the Pod Identity session of this very role and never calls ``sts:AssumeRole``. A
    self-assumption would need ``sts:TagSession`` too, because Pod Identity session tags are
    transitive (https://docs.aws.amazon.com/eks/latest/userguide/pod-id-abac.html); not having
    the hop at all is simpler than allowing it. tests/contracts/test_pod_identity_chain.py pins
    the upstream behaviour this relies on.
    """
    return pod_identity_trust_policy(
        account_id,
        naming.cluster_name(environment, hub_region),
        naming.ARGOCD_NAMESPACE,
        naming.ARGOCD_CONTROLLER_SERVICE_ACCOUNTS,
    )


def image_updater_trust_policy(account_id: str, environment: str, hub_region: str) -> dict[str, Any]:
    return pod_identity_trust_policy(
        account_id,
        naming.cluster_name(environment, hub_region),
        naming.ARGOCD_NAMESPACE,
        (naming.IMAGE_UPDATER_SERVICE_ACCOUNT,),
    )


def repository_arns(account_id: str, regions: Sequence[str], prefix: str) -> list[str]:
    return [f"arn:aws:ecr:{region}:{account_id}:repository/{prefix}/*" for region in regions]


def image_updater_ecr_policy(account_id: str, regions: Sequence[str], prefix: str) -> dict[str, Any]:
    """Read-only ECR: a token (account-wide by design) and reads of the prefix's repositories in
    the stack's regions."""
    return {
        "Version": VERSION,
        "Statement": [
            {"Sid": "EcrToken", "Effect": "Allow", "Action": "ecr:GetAuthorizationToken", "Resource": "*"},
            {
                "Sid": "EcrReadPrefixRepositories",
                "Effect": "Allow",
                "Action": list(ECR_READ_ACTIONS),
                "Resource": repository_arns(account_id, regions, prefix),
            },
        ],
    }
