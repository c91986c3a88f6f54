"""IAM documents and fixed AWS facts for the EKS clusters, as pure functions.

Nothing here touches Pulumi: the cluster component wraps these values, the tests and the policy
pack read them directly.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

IAM_VERSION = "2012-10-17"

# AWS-managed policies of the node role. The CNI policy stays on the node role rather than on a
# Pod Identity association of the vpc-cni add-on: aws-node needs it to give pods (CoreDNS first)
# their addresses as soon as the first node boots, and moving it to Pod Identity would put the
# pod-identity-agent add-on on the path between "node group created" and "nodes Ready".
# https://docs.aws.amazon.com/eks/latest/userguide/create-node-role.html
WORKER_NODE_POLICY_ARN = "arn:aws:iam::aws:policy/AmazonEKSWorkerNodePolicy"
CNI_POLICY_ARN = "arn:aws:iam::aws:policy/AmazonEKS_CNI_Policy"
NODE_MANAGED_POLICY_ARNS: tuple[str, ...] = (WORKER_NODE_POLICY_ARN, CNI_POLICY_ARN)

# EKS access policy (not an IAM policy) granting cluster-admin through an access entry.
# https://docs.aws.amazon.com/eks/latest/userguide/access-policy-permissions.html
CLUSTER_ADMIN_ACCESS_POLICY_ARN = "arn:aws:eks::aws:cluster-access-policy/AmazonEKSClusterAdminPolicy"

# Every control-plane log type EKS can ship to CloudWatch Logs.
# https://docs.aws.amazon.com/eks/latest/userguide/control-plane-logs.html
CONTROL_PLANE_LOG_TYPES: tuple[str, ...] = ("api", "audit", "authenticator", "controllerManager", "scheduler")

# What pulling an image needs (the actions of AmazonEC2ContainerRegistryPullOnly), and the
# registry-wide token call that cannot be scoped to a repository.
ECR_PULL_ACTIONS: tuple[str, ...] = ("ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer")
ECR_TOKEN_ACTION = "ecr:GetAuthorizationToken"

# The AWS account whose regional registry serves the images of the EKS add-ons (vpc-cni,
# kube-proxy, coredns, eks-pod-identity-agent). Nodes pull them with the node role, so a node
# role scoped to our own repositories must also be allowed to pull from this one, or the add-ons
# never start. Source: the EKS user guide, "View Amazon container image registries for Amazon
# EKS add-ons" (https://docs.aws.amazon.com/eks/latest/userguide/add-ons-images.html; its source
# awsdocs/amazon-eks-user-guide latest/ug/workloads/add-ons-images.adoc), checked against eksctl
# v0.230.0 pkg/apis/eksctl.io/v1alpha5/types.go (EKSResourceAccountID, the same accounts).
# mx-central-1 is from eksctl only (the guide's table read here does not list it yet). A region
# of botocore's aws partition with EKS and ECR but no entry here is refused by the config,
# naming the file, key and region (infra/config.py _region_rule), never given a wrong account.
EKS_ADDON_REGISTRY_ACCOUNTS: dict[str, str] = {
    "af-south-1": "877085696533",
    "ap-east-1": "800184023465",
    "ap-east-2": "533267051163",
    "ap-northeast-1": "602401143452",
    "ap-northeast-2": "602401143452",
    "ap-northeast-3": "602401143452",
    "ap-south-1": "602401143452",
    "ap-south-2": "900889452093",
    "ap-southeast-1": "602401143452",
    "ap-southeast-2": "602401143452",
    "ap-southeast-3": "296578399912",
    "ap-southeast-4": "491585149902",
    "ap-southeast-5": "151610086707",
    "ap-southeast-6": "333609536671",
    "ap-southeast-7": "121268973566",
    "ca-central-1": "602401143452",
    "ca-west-1": "761377655185",
    "eu-central-1": "602401143452",
    "eu-central-2": "900612956339",
    "eu-north-1": "602401143452",
    "eu-south-1": "590381155156",
    "eu-south-2": "455263428931",
    "eu-west-1": "602401143452",
    "eu-west-2": "602401143452",
    "eu-west-3": "602401143452",
    "il-central-1": "066635153087",
    "me-central-1": "759879836304",
    "me-south-1": "558608220178",
    "mx-central-1": "730335286997",
    "sa-east-1": "602401143452",
    "us-east-1": "602401143452",
    "us-east-2": "602401143452",
    "us-west-1": "602401143452",
    "us-west-2": "602401143452",
}

AMI_X86_64 = "AL2023_x86_64_STANDARD"
AMI_ARM_64 = "AL2023_ARM_64_STANDARD"
AMI_BY_ARCHITECTURE = {"x86_64": AMI_X86_64, "arm64": AMI_ARM_64}
# Which CPU an instance type has. botocore ships the shape of EC2 DescribeInstanceTypes
# (ProcessorInfo.SupportedArchitectures) but no per-type data, so the rule is the naming
# convention (https://docs.aws.amazon.com/ec2/latest/instancetypes/instance-type-names.html: the
# "g" attribute after the generation digit means AWS Graviton: m7g, c7gn, r8g, t4g, x2gd, g5g,
# im4gn, is4gen, i8ge), plus the families named before it or without it: a1 (the first
# Graviton) and p6e-gb200 (NVIDIA GB200: Grace, Arm CPUs). Checked against eksctl v0.230.0
# pkg/utils/instance/instance_types.go (generated from DescribeInstanceTypes by ec2geninfo): its
# arm64 families are exactly these (tests/contracts/test_config_contracts.py).
_GRAVITON_FAMILY = re.compile(r"^[a-z]+[0-9]+[a-z]*g[a-z]*$")
_ARM64_OTHER_FAMILIES = frozenset({"a1", "p6e-gb200"})
# EC2 Mac instances run only on Dedicated Hosts as macOS bare metal
# (https://docs.aws.amazon.com/AWSEC2/latest/UserGuide/ec2-mac-instances.html); an EKS managed
# node group launches EKS-optimized Linux AMIs on shared tenancy, so they cannot be its nodes.
_NOT_NODE_FAMILY = re.compile(r"^mac")


def node_assume_role_policy() -> dict[str, Any]:
    """Trust policy of the node role: only EC2 instances may assume it."""
    return {
        "Version": IAM_VERSION,
        "Statement": [
            {
                "Sid": "EC2NodesAssumeRole",
                "Effect": "Allow",
                "Principal": {"Service": "ec2.amazonaws.com"},
                "Action": "sts:AssumeRole",
            }
        ],
    }


def ecr_repositories_arn(account_id: str, region: str, prefix: str) -> str:
    """Every repository of the platform's prefix in one account and region."""
    return f"arn:aws:ecr:{region}:{account_id}:repository/{prefix}/*"


def eks_addon_registry_arn(region: str) -> str:
    try:
        account = EKS_ADDON_REGISTRY_ACCOUNTS[region]
    except KeyError:
        raise ValueError(
            f"no EKS add-on image registry is known for region {region}; add it to "
            "EKS_ADDON_REGISTRY_ACCOUNTS from https://docs.aws.amazon.com/eks/latest/userguide/add-ons-images.html"
        ) from None
    return f"arn:aws:ecr:{region}:{account}:repository/*"


def ecr_pull_policy(account_id: str, region: str, prefix: str) -> dict[str, Any]:
    """Pull-only access for the nodes of one region: the platform's repositories under ``prefix``
    in this account and region (replicas in prod, sources in staging) and the EKS add-on images.

    Nothing else: not other prefixes, not other regions, no push, no describe/list.
    """
    return {
        "Version": IAM_VERSION,
        "Statement": [
            {
                "Sid": "PullPlatformImages",
                "Effect": "Allow",
                "Action": list(ECR_PULL_ACTIONS),
                "Resource": [ecr_repositories_arn(account_id, region, prefix)],
            },
            {
                "Sid": "PullEksAddonImages",
                "Effect": "Allow",
                "Action": list(ECR_PULL_ACTIONS),
                "Resource": [eks_addon_registry_arn(region)],
            },
            {
                # GetAuthorizationToken has no resource-level permissions.
                # https://docs.aws.amazon.com/AmazonECR/latest/userguide/security_iam_id-based-policy-examples.html
                "Sid": "RegistryToken",
                "Effect": "Allow",
                "Action": [ECR_TOKEN_ACTION],
                "Resource": ["*"],
            },
        ],
    }


def family(instance_type: str) -> str:
    return instance_type.split(".", 1)[0]


def can_be_a_node(instance_type: str) -> bool:
    """Whether an EKS managed node group can launch ``instance_type`` (not an EC2 Mac type)."""
    return not _NOT_NODE_FAMILY.match(family(instance_type))


def instance_architecture(instance_type: str) -> str:
    """``arm64`` (AWS Graviton, NVIDIA Grace) or ``x86_64``: see ``_GRAVITON_FAMILY``."""
    name = family(instance_type)
    return "arm64" if name in _ARM64_OTHER_FAMILIES or _GRAVITON_FAMILY.match(name) else "x86_64"


def is_graviton(instance_type: str) -> bool:
    return instance_architecture(instance_type) == "arm64"


def ami_type(instance_types: Sequence[str]) -> str:
    """The EKS-optimized Amazon Linux 2023 AMI type for a node group's instance types.

    One managed node group runs one AMI, so x86_64 and arm64 types cannot be mixed: the config
    refuses that (infra/config.py, NodeGroupConfig) before anything is declared; this raises
    ValueError only for a caller that skipped it.
    """
    if not instance_types:
        raise ValueError("a node group needs at least one instance type")
    architectures = {instance_architecture(t) for t in instance_types}
    if len(architectures) != 1:
        raise ValueError(
            f"instance types {', '.join(instance_types)} mix Graviton (arm64) and x86_64; "
            "one node group runs one architecture"
        )
    return AMI_BY_ARCHITECTURE[architectures.pop()]


# ---------------------------------------------------------------------------------------------
# Who may use the Kubernetes API: the principals that run `pulumi up`
# ---------------------------------------------------------------------------------------------

# The resource type pulumi-eks creates the control plane with (a child of eks:index:Cluster).
EKS_CLUSTER_RESOURCE_TYPE = "aws:eks/cluster:Cluster"


def without_creator_admin(type_: str, props: Mapping[str, Any]) -> dict[str, Any] | None:
    """``props`` of pulumi-eks's control plane with the cluster creator's admin entry turned off,
    or None for any other resource (left as it is).

    pulumi-eks hard-codes ``accessConfig.bootstrapClusterCreatorAdminPermissions: true``
    (pulumi/pulumi-eks v4.3.0 and master of 2026-08-12, nodejs/eks/cluster/cluster.ts,
    ``createCore``; the installed 4.4.0 SDK still has no argument for it; open bug
    pulumi/pulumi-eks#2373), so EKS gives whoever creates
    the cluster a standing cluster-admin access entry that no program manages, and an access
    entry the program declares for that same principal fails with ResourceInUseException.
    With this off, the program's own entries (infra.documents.access.cluster_operators) are the
    only ones.
    EKS reads the flag at creation only, and pulumi-eks ignores later changes to it, so a
    cluster created before keeps its creator entry (docs/clusters.md: removing it).
    https://docs.aws.amazon.com/eks/latest/APIReference/API_CreateAccessConfigRequest.html
    """
    if type_ != EKS_CLUSTER_RESOURCE_TYPE:
        return None
    access = dict(props.get("accessConfig") or {})
    if access.get("bootstrapClusterCreatorAdminPermissions") is False:
        return None
    access["bootstrapClusterCreatorAdminPermissions"] = False
    return {**props, "accessConfig": access}
