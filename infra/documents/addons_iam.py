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

# What External Secrets Operator calls to read the platform's secrets: GetSecretValue, once per
# ``remoteRef`` or ``dataFrom.extract`` (external-secrets v2.9.0
# providers/v1/aws/secretsmanager/secretsmanager.go ``fetch``/``constructSecretValue``).
# DescribeSecret serves only ``metadataPolicy: Fetch`` (a secret's tags), ListSecrets and
# BatchGetSecretValue only ``dataFrom.find``, the rest PushSecret: the platform's ExternalSecrets
# use none of them (tests/contracts/test_addon_contracts.py derives the set from what they
# render). https://external-secrets.io/v2.8.0/provider/aws-secrets-manager/ ; AWS's own
# read-only example: https://docs.aws.amazon.com/secretsmanager/latest/userguide/auth-and-access_examples.html
SECRETS_READ_ACTIONS: tuple[str, ...] = ("secretsmanager:GetSecretValue",)


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
# ("IAM Policy", "Auto-Discovery Setup") at cluster-autoscaler-1.35.0: the reads it needs
# everywhere, and the two writes (SetDesiredCapacity, TerminateInstanceInAutoScalingGroup); only
# the calls the AWS cloud provider of that tag makes (aws_wrapper.go, aws_util.go), so neither
# DescribeTags nor the README's DescribeAutoScalingInstances, which no code of the tag calls.
# EKS itself tags each managed node group's Auto Scaling group for the autoscaler's
# auto-discovery (EKS user guide, managed-node-groups.adoc: "Amazon EKS tags managed node group
# resources so that they are configured to use the Kubernetes Cluster Autoscaler"); the tags the
# program gives the node group never reach the group ("These tags don't propagate to other
# resources in the node group, such as Auto Scaling groups", create-managed-node-group.adoc).
# The keys are the README's `k8s.io/cluster-autoscaler/enabled` and
# `k8s.io/cluster-autoscaler/<cluster-name>`; the writes are limited to groups carrying this
# cluster's key (a Null condition: the key exists, whatever its value, as auto-discovery matches
# keys only). Pinned in tests/contracts/test_addon_contracts.py.
CLUSTER_AUTOSCALER_READ_ACTIONS: tuple[str, ...] = (
    "autoscaling:DescribeAutoScalingGroups",
    "autoscaling:DescribeLaunchConfigurations",
    "autoscaling:DescribeScalingActivities",
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
