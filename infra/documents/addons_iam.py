"""IAM documents of the cluster add-ons that call AWS, as pure functions.

Each such add-on gets one role per cluster, reached only through EKS Pod Identity and bound by
its trust policy to that cluster, the add-on's namespace and its service account
(:func:`infra.documents.argocd_iam.pod_identity_trust_policy`: Pod Identity tags the session with
``eks-cluster-name``, ``kubernetes-namespace`` and ``kubernetes-service-account``,
https://docs.aws.amazon.com/eks/latest/userguide/pod-id-abac.html). The permission policies are
scoped to that cluster's region and to the platform's own resources.
"""

from __future__ import annotations

from typing import Any

from infra import naming
from infra.documents.argocd_iam import VERSION, pod_identity_trust_policy

# What External Secrets Operator needs to read a secret: its value, and its metadata.
# ESO's AWS Secrets Manager provider reads with GetSecretValue (and DescribeSecret for
# metadata); its documentation's example policy also lists GetResourcePolicy and
# ListSecretVersionIds, which only PushSecret and version listing use (not used here).
# https://external-secrets.io/v2.8.0/provider/aws-secrets-manager/ ; AWS's own read-only example:
# https://docs.aws.amazon.com/secretsmanager/latest/userguide/auth-and-access_examples.html
SECRETS_READ_ACTIONS: tuple[str, ...] = ("secretsmanager:DescribeSecret", "secretsmanager:GetSecretValue")


def secrets_prefix(environment: str) -> str:
    """Every secret of an environment lives under this name prefix in Secrets Manager."""
    return f"{naming.PROJECT}/{environment}/"


def secret_arn_pattern(account_id: str, region: str, environment: str) -> str:
    """The ARNs of the environment's secrets in one region (Secrets Manager appends ``-XXXXXX``
    to each secret's name in its ARN, so the pattern ends in ``*``)."""
    return f"arn:aws:secretsmanager:{region}:{account_id}:secret:{secrets_prefix(environment)}*"


def external_secrets_policy(account_id: str, region: str, environment: str) -> dict[str, Any]:
    """Read-only access to this environment's secrets in this cluster's region, nothing else:
    no write, no list, no other prefix, no other region. A customer managed KMS key on a secret
    would also need ``kms:Decrypt`` on that key (the default ``aws/secretsmanager`` key does not)."""
    return {
        "Version": VERSION,
        "Statement": [
            {
                "Sid": "ReadPlatformSecrets",
                "Effect": "Allow",
                "Action": list(SECRETS_READ_ACTIONS),
                "Resource": secret_arn_pattern(account_id, region, environment),
            }
        ],
    }


def addon_trust_policy(
    account_id: str, environment: str, region: str, namespace: str, service_account: str
) -> dict[str, Any]:
    """Pod Identity trust for one add-on on one cluster: its namespace and service account only."""
    return pod_identity_trust_policy(
        account_id, naming.cluster_name(environment, region), namespace, (service_account,)
    )


# Cluster Autoscaler on AWS: kubernetes/autoscaler cluster-autoscaler/cloudprovider/aws/README.md
# ("Permissions", "Auto-Discovery Setup"): the reads it needs everywhere, and the two writes
# (SetDesiredCapacity, TerminateInstanceInAutoScalingGroup). EKS tags each managed node group's
# Auto Scaling group for the autoscaler's auto-discovery (EKS user guide, managed-node-groups.adoc:
# "Amazon EKS tags managed node group resources so that they are configured to use the Kubernetes
# Cluster Autoscaler"), with the keys `k8s.io/cluster-autoscaler/enabled` and
# `k8s.io/cluster-autoscaler/<cluster-name>`; the writes are limited to groups carrying this
# cluster's key (a Null condition: the key exists, whatever its value, as auto-discovery matches).
CLUSTER_AUTOSCALER_READ_ACTIONS: tuple[str, ...] = (
    "autoscaling:DescribeAutoScalingGroups",
    "autoscaling:DescribeAutoScalingInstances",
    "autoscaling:DescribeLaunchConfigurations",
    "autoscaling:DescribeScalingActivities",
    "autoscaling:DescribeTags",
    "ec2:DescribeImages",
    "ec2:DescribeInstanceTypes",
    "ec2:DescribeLaunchTemplateVersions",
    "ec2:GetInstanceTypesFromInstanceRequirements",
)
CLUSTER_AUTOSCALER_WRITE_ACTIONS: tuple[str, ...] = (
    "autoscaling:SetDesiredCapacity",
    "autoscaling:TerminateInstanceInAutoScalingGroup",
)


def cluster_autoscaler_tag_key(cluster_name: str) -> str:
    return f"k8s.io/cluster-autoscaler/{cluster_name}"


def cluster_autoscaler_policy(account_id: str, region: str, environment: str) -> dict[str, Any]:
    """Describe calls (which IAM cannot scope to a resource) and the two scaling writes on this
    cluster's node groups only, in this region."""
    cluster = naming.cluster_name(environment, region)
    return {
        "Version": VERSION,
        "Statement": [
            {
                "Sid": "Describe",
                "Effect": "Allow",
                "Action": list(CLUSTER_AUTOSCALER_READ_ACTIONS),
                "Resource": "*",
            },
            {
                # The one describe IAM scopes to a resource: this cluster's node groups.
                "Sid": "DescribeThisClustersNodeGroups",
                "Effect": "Allow",
                "Action": "eks:DescribeNodegroup",
                "Resource": f"arn:aws:eks:{region}:{account_id}:nodegroup/{cluster}/*/*",
            },
            {
                "Sid": "ScaleThisClustersNodeGroups",
                "Effect": "Allow",
                "Action": list(CLUSTER_AUTOSCALER_WRITE_ACTIONS),
                "Resource": f"arn:aws:autoscaling:{region}:{account_id}:autoScalingGroup:*:autoScalingGroupName/*",
                "Condition": {"Null": {f"aws:ResourceTag/{cluster_autoscaler_tag_key(cluster)}": "false"}},
            },
        ],
    }
