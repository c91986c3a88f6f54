"""Who may use each cluster's Kubernetes API: the principals that run ``pulumi up``, as pure data.

:func:`cluster_operators` decides which IAM principal gets which EKS access entry; the cluster
component declares them, the tests and the bootstrap scenario read them.
"""

from __future__ import annotations

from dataclasses import dataclass

from infra import naming
from infra.config import ConfigError, StackConfig
from infra.documents.eks import CLUSTER_ADMIN_ACCESS_POLICY_ARN

__all__ = ["ADMIN_OPERATOR", "CLUSTER_ADMIN_ACCESS_POLICY_ARN", "UP_OPERATOR", "ClusterOperator"]


@dataclass(frozen=True)
class ClusterOperator:
    """A principal that runs ``pulumi up`` and so uses the Kubernetes API of some clusters.

    ``name`` is the stem of its access entry's resource names; ``regions`` the clusters it gets
    AmazonEKSClusterAdminPolicy on (cluster scope); ``principal_arn`` its IAM role.
    """

    name: str
    principal_arn: str
    regions: tuple[str, ...]
    who: str


ADMIN_OPERATOR = "platform-admin"
UP_OPERATOR = "github-up"


def kubernetes_driven_regions(config: StackConfig) -> tuple[str, ...]:
    """The clusters whose Kubernetes API the program itself calls during ``pulumi up``.

    Only the hub's Kubernetes provider declares anything (Argo CD, Image Updater, the
    ApplicationSet, cluster Secrets, the deploy/verify Roles); spokes are reached by Argo CD,
    never by Pulumi. tests/contracts/test_eks_access.py holds the program to this.
    """
    return (config.hub_region,)


def cluster_operators(config: StackConfig) -> tuple[ClusterOperator, ...]:
    """Every principal that runs ``pulumi up`` for this stack, and where it needs Kubernetes.

    * ``clusterAdminRoleArn``: the person of the first ``up`` and of a DR rebuild (docs/iam.md),
      and anyone operating a cluster with kubectl: cluster-admin on every cluster.
    * the GitHub ``up`` role (``up.yml``, every later ``up``): cluster-admin on the clusters the
      program drives through Kubernetes (:func:`kubernetes_driven_regions`), nothing elsewhere.
      Installing the argo-cd chart creates CRDs, ClusterRoles and their bindings, which only a
      cluster-wide admin may do.

    The kubeconfig the program's Kubernetes providers use runs ``aws eks get-token`` with
    whatever AWS identity runs ``pulumi up`` (infra/manifests/kubeconfig.py), so these are the
    identities the hub sees. Raises ConfigError when ``clusterAdminRoleArn`` is the ``up`` role
    (one principal, two access entries: EKS refuses the second).
    """
    up_name = naming.role_name(config.environment, "github-up")
    up_arn = f"arn:aws:iam::{config.account_id}:role/{up_name}"
    if config.cluster_admin_role_arn == up_arn:
        raise ConfigError(
            "platform:clusterAdminRoleArn",
            config.cluster_admin_role_arn,
            "expected a role for people (first up, DR), not the GitHub up role the program creates",
        )
    return (
        ClusterOperator(
            ADMIN_OPERATOR,
            config.cluster_admin_role_arn,
            config.region_names,
            "platform:clusterAdminRoleArn (first pulumi up, DR, kubectl)",
        ),
        ClusterOperator(UP_OPERATOR, up_arn, kubernetes_driven_regions(config), "GitHub up role (up.yml)"),
    )
