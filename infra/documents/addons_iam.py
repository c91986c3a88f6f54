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


def secret_name_arn(account_id: str, region: str, name: str) -> str:
    """The ARN of exactly the secret ``name``: "The ARN includes the name of the secret followed by
    six random characters" after a hyphen (Secrets Manager API reference, CreateSecret response
    ``ARN``), and ``?`` matches exactly one character in a policy's resource ARN (IAM user guide,
    "IAM JSON policy elements: Resource"), so ``-??????`` matches that secret and no other whose
    name merely starts with ``name``."""
    return f"arn:aws:secretsmanager:{region}:{account_id}:secret:{name}-??????"


def secret_prefix_arn(account_id: str, region: str, prefix: str) -> str:
    """The ARNs of every secret whose name starts with ``prefix`` (which ends in ``/``)."""
    return f"arn:aws:secretsmanager:{region}:{account_id}:secret:{prefix}*"


# External Secrets' controller assumes each store's role (the store's ``spec.provider.aws.role``:
# external-secrets v2.9.0 providers/v1/aws/auth/auth.go ``createConfiguration`` wraps the
# controller's own credentials in ``stscreds.NewAssumeRoleProvider``). Its own credentials are an
# EKS Pod Identity session, whose session tags are transitive, so assuming another role from it
# also needs sts:TagSession (https://docs.aws.amazon.com/eks/latest/userguide/pod-id-abac.html).
EXTERNAL_SECRETS_ASSUME_ACTIONS: tuple[str, ...] = ("sts:AssumeRole", "sts:TagSession")


def external_secrets_controller_policy(store_role_arns: list[str]) -> dict[str, Any]:
    """The controller's own role (Pod Identity): it reads no secret itself; it may only assume the
    roles of its cluster's stores, each of which reads one consumer's secrets."""
    return {
        "Version": VERSION,
        "Statement": [
            {
                "Sid": "AssumeTheStoresRoles",
                "Effect": "Allow",
                "Action": list(EXTERNAL_SECRETS_ASSUME_ACTIONS),
                "Resource": sorted(store_role_arns),
            }
        ],
    }


def external_secrets_store_trust_policy(controller_role_arn: str) -> dict[str, Any]:
    """A store's role trusts only the controller's role of the same cluster, named as the
    principal: a trust naming a role is enough on its own (IAM user guide, "IAM JSON policy
    elements: Principal", role principals), and no other principal of the account may assume it.
    IAM binds the principal to the role's unique ID, so the store's role is created after the
    controller's and replaced with it (infra/components/addons.py)."""
    return {
        "Version": VERSION,
        "Statement": [
            {
                "Sid": "ExternalSecretsController",
                "Effect": "Allow",
                "Principal": {"AWS": controller_role_arn},
                "Action": list(EXTERNAL_SECRETS_ASSUME_ACTIONS),
            }
        ],
    }


def external_secrets_read_policy(resources: list[str]) -> dict[str, Any]:
    """One store's role: read-only access to exactly ``resources`` (secret ARNs or ARN patterns of
    one consumer, in one region): no write, no list. A customer managed KMS key on a secret would
    also need ``kms:Decrypt`` on that key (the default ``aws/secretsmanager`` key does not)."""
    return {
        "Version": VERSION,
        "Statement": [
            {
                "Sid": "ReadThisConsumersSecrets",
                "Effect": "Allow",
                "Action": list(SECRETS_READ_ACTIONS),
                "Resource": sorted(resources),
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


# --- AWS Load Balancer Controller ----------------------------------------------------------------
#
# The controller's upstream policy for the pinned app version, statement by statement:
# kubernetes-sigs/aws-load-balancer-controller docs/install/iam_policy.json at tag v3.5.0
# (commit 11eb202c97e4ae2ee45e0658c4cde9a4b59f33d4). Every action and every condition is the
# upstream's (tests/contracts/test_traffic_addons.py compares them one by one). What keeps it least
# privilege is the upstream's tag conditions: the controller tags everything it creates with
# ``elbv2.k8s.aws/cluster`` (its ``--cluster-name``), creates only with that tag in the request,
# and modifies or deletes only resources that carry it. The one change: the ARNs the upstream
# writes with ``*:*`` for region and account name this cluster's region and this account (the
# controller works only there; IAM matches the narrower ARN the same way).
LBC_CLUSTER_TAG = "elbv2.k8s.aws/cluster"
LBC_REQUEST_TAGGED = {"Null": {f"aws:RequestTag/{LBC_CLUSTER_TAG}": "false"}}
LBC_RESOURCE_TAGGED = {"Null": {f"aws:ResourceTag/{LBC_CLUSTER_TAG}": "false"}}
# A tag change that does not touch the cluster tag, on a resource that has it.
LBC_TAGGED_NOT_RETAGGED = {
    "Null": {f"aws:RequestTag/{LBC_CLUSTER_TAG}": "true", f"aws:ResourceTag/{LBC_CLUSTER_TAG}": "false"}
}

LBC_DESCRIBE_ACTIONS: tuple[str, ...] = (
    "ec2:DescribeAccountAttributes",
    "ec2:DescribeAddresses",
    "ec2:DescribeAvailabilityZones",
    "ec2:DescribeInternetGateways",
    "ec2:DescribeVpcs",
    "ec2:DescribeVpcPeeringConnections",
    "ec2:DescribeSubnets",
    "ec2:DescribeSecurityGroups",
    "ec2:DescribeInstances",
    "ec2:DescribeNetworkInterfaces",
    "ec2:DescribeTags",
    "ec2:GetCoipPoolUsage",
    "ec2:DescribeCoipPools",
    "ec2:GetSecurityGroupsForVpc",
    "ec2:DescribeIpamPools",
    "ec2:DescribeRouteTables",
    "elasticloadbalancing:DescribeLoadBalancers",
    "elasticloadbalancing:DescribeLoadBalancerAttributes",
    "elasticloadbalancing:DescribeListeners",
    "elasticloadbalancing:DescribeListenerCertificates",
    "elasticloadbalancing:DescribeSSLPolicies",
    "elasticloadbalancing:DescribeRules",
    "elasticloadbalancing:DescribeTargetGroups",
    "elasticloadbalancing:DescribeTargetGroupAttributes",
    "elasticloadbalancing:DescribeTargetHealth",
    "elasticloadbalancing:DescribeTags",
    "elasticloadbalancing:DescribeTrustStores",
    "elasticloadbalancing:DescribeListenerAttributes",
    "elasticloadbalancing:DescribeCapacityReservation",
)
# Certificates (ACM), WAF and Shield the Ingress annotations name.
LBC_INTEGRATION_ACTIONS: tuple[str, ...] = (
    "cognito-idp:DescribeUserPoolClient",
    "acm:ListCertificates",
    "acm:DescribeCertificate",
    "iam:ListServerCertificates",
    "iam:GetServerCertificate",
    "waf-regional:GetWebACL",
    "waf-regional:GetWebACLForResource",
    "waf-regional:AssociateWebACL",
    "waf-regional:DisassociateWebACL",
    "wafv2:GetWebACL",
    "wafv2:GetWebACLForResource",
    "wafv2:AssociateWebACL",
    "wafv2:DisassociateWebACL",
    "shield:GetSubscriptionState",
    "shield:DescribeProtection",
    "shield:CreateProtection",
    "shield:DeleteProtection",
)
LBC_MODIFY_TAGGED_ACTIONS: tuple[str, ...] = (
    "elasticloadbalancing:ModifyLoadBalancerAttributes",
    "elasticloadbalancing:SetIpAddressType",
    "elasticloadbalancing:SetSecurityGroups",
    "elasticloadbalancing:SetSubnets",
    "elasticloadbalancing:DeleteLoadBalancer",
    "elasticloadbalancing:ModifyTargetGroup",
    "elasticloadbalancing:ModifyTargetGroupAttributes",
    "elasticloadbalancing:DeleteTargetGroup",
    "elasticloadbalancing:ModifyListenerAttributes",
    "elasticloadbalancing:ModifyCapacityReservation",
    "elasticloadbalancing:ModifyIpPools",
)
LBC_LISTENER_ACTIONS: tuple[str, ...] = (
    "elasticloadbalancing:SetWebAcl",
    "elasticloadbalancing:ModifyListener",
    "elasticloadbalancing:AddListenerCertificates",
    "elasticloadbalancing:RemoveListenerCertificates",
    "elasticloadbalancing:ModifyRule",
    "elasticloadbalancing:SetRulePriorities",
)


def load_balancer_controller_policy(account_id: str, region: str) -> dict[str, Any]:
    """The AWS Load Balancer Controller's permissions on one cluster: upstream v3.5.0's
    ``docs/install/iam_policy.json``, its statements in the same order, with this region and
    account in the ARNs. Shape: an IAM policy document (dict)."""
    ec2 = f"arn:aws:ec2:{region}:{account_id}"
    elb = f"arn:aws:elasticloadbalancing:{region}:{account_id}"
    balancers = [f"{elb}:targetgroup/*/*", f"{elb}:loadbalancer/net/*/*", f"{elb}:loadbalancer/app/*/*"]
    return {
        "Version": VERSION,
        "Statement": [
            {
                "Sid": "ElbServiceLinkedRole",
                "Effect": "Allow",
                "Action": ["iam:CreateServiceLinkedRole"],
                "Resource": "*",
                "Condition": {"StringEquals": {"iam:AWSServiceName": "elasticloadbalancing.amazonaws.com"}},
            },
            {"Sid": "Describe", "Effect": "Allow", "Action": list(LBC_DESCRIBE_ACTIONS), "Resource": "*"},
            {
                "Sid": "CertificatesWafShield",
                "Effect": "Allow",
                "Action": list(LBC_INTEGRATION_ACTIONS),
                "Resource": "*",
            },
            {
                "Sid": "SecurityGroupRules",
                "Effect": "Allow",
                "Action": ["ec2:AuthorizeSecurityGroupIngress", "ec2:RevokeSecurityGroupIngress"],
                "Resource": "*",
            },
            {
                "Sid": "CreateSecurityGroup",
                "Effect": "Allow",
                "Action": ["ec2:CreateSecurityGroup"],
                "Resource": "*",
            },
            {
                "Sid": "TagNewSecurityGroup",
                "Effect": "Allow",
                "Action": ["ec2:CreateTags"],
                "Resource": f"{ec2}:security-group/*",
                "Condition": {
                    "StringEquals": {"ec2:CreateAction": "CreateSecurityGroup"},
                    **LBC_REQUEST_TAGGED,
                },
            },
            {
                "Sid": "RetagOwnSecurityGroups",
                "Effect": "Allow",
                "Action": ["ec2:CreateTags", "ec2:DeleteTags"],
                "Resource": f"{ec2}:security-group/*",
                "Condition": LBC_TAGGED_NOT_RETAGGED,
            },
            {
                "Sid": "ChangeOwnSecurityGroups",
                "Effect": "Allow",
                "Action": [
                    "ec2:AuthorizeSecurityGroupIngress",
                    "ec2:RevokeSecurityGroupIngress",
                    "ec2:DeleteSecurityGroup",
                ],
                "Resource": "*",
                "Condition": LBC_RESOURCE_TAGGED,
            },
            {
                "Sid": "CreateTaggedBalancers",
                "Effect": "Allow",
                "Action": [
                    "elasticloadbalancing:CreateLoadBalancer",
                    "elasticloadbalancing:CreateTargetGroup",
                ],
                "Resource": "*",
                "Condition": LBC_REQUEST_TAGGED,
            },
            {
                "Sid": "ListenersAndRules",
                "Effect": "Allow",
                "Action": [
                    "elasticloadbalancing:CreateListener",
                    "elasticloadbalancing:DeleteListener",
                    "elasticloadbalancing:CreateRule",
                    "elasticloadbalancing:DeleteRule",
                ],
                "Resource": "*",
            },
            {
                "Sid": "RetagOwnBalancers",
                "Effect": "Allow",
                "Action": ["elasticloadbalancing:AddTags", "elasticloadbalancing:RemoveTags"],
                "Resource": balancers,
                "Condition": LBC_TAGGED_NOT_RETAGGED,
            },
            {
                "Sid": "TagListenersAndRules",
                "Effect": "Allow",
                "Action": ["elasticloadbalancing:AddTags", "elasticloadbalancing:RemoveTags"],
                "Resource": [
                    f"{elb}:listener/net/*/*/*",
                    f"{elb}:listener/app/*/*/*",
                    f"{elb}:listener-rule/net/*/*/*",
                    f"{elb}:listener-rule/app/*/*/*",
                ],
            },
            {
                "Sid": "ChangeOwnBalancers",
                "Effect": "Allow",
                "Action": list(LBC_MODIFY_TAGGED_ACTIONS),
                "Resource": "*",
                "Condition": LBC_RESOURCE_TAGGED,
            },
            {
                "Sid": "TagOnCreate",
                "Effect": "Allow",
                "Action": ["elasticloadbalancing:AddTags"],
                "Resource": balancers,
                "Condition": {
                    "StringEquals": {
                        "elasticloadbalancing:CreateAction": ["CreateTargetGroup", "CreateLoadBalancer"]
                    },
                    **LBC_REQUEST_TAGGED,
                },
            },
            {
                "Sid": "Targets",
                "Effect": "Allow",
                "Action": ["elasticloadbalancing:RegisterTargets", "elasticloadbalancing:DeregisterTargets"],
                "Resource": f"{elb}:targetgroup/*/*",
            },
            {"Sid": "Listeners", "Effect": "Allow", "Action": list(LBC_LISTENER_ACTIONS), "Resource": "*"},
        ],
    }


# --- ExternalDNS ---------------------------------------------------------------------------------
#
# kubernetes-sigs/external-dns docs/tutorials/aws.md at tag v0.21.0, "IAM Policy": ChangeResourceRecordSets,
# ListResourceRecordSets and ListTagsForResources on hosted zones, ListHostedZones on "*"; its
# "Further improvements" recommends naming the zones instead of ``hostedzone/*``. Here: the one
# zone of platform:traffic. ListTagsForResources is left out: provider/aws/aws.go (v0.21.0)
# ``zones`` calls it only with a zone tag filter (``--aws-zone-tags``), which the platform does
# not set. ListHostedZones accepts no resource ARN (Route 53's actions table:
# https://docs.aws.amazon.com/service-authorization/latest/reference/list_amazonroute53.html).
EXTERNAL_DNS_ZONE_ACTIONS: tuple[str, ...] = (
    "route53:ChangeResourceRecordSets",
    "route53:ListResourceRecordSets",
)
EXTERNAL_DNS_LIST_ACTIONS: tuple[str, ...] = ("route53:ListHostedZones",)


def hosted_zone_arn(hosted_zone_id: str) -> str:
    """A Route 53 hosted zone's ARN (global: no region, no account)."""
    return f"arn:aws:route53:::hostedzone/{hosted_zone_id}"


def external_dns_policy(hosted_zone_id: str) -> dict[str, Any]:
    """ExternalDNS's permissions: change and list the records of the stack's zone, and list the
    zones (to find that one). Shape: an IAM policy document (dict)."""
    return {
        "Version": VERSION,
        "Statement": [
            {
                "Sid": "ChangeTheStacksZone",
                "Effect": "Allow",
                "Action": list(EXTERNAL_DNS_ZONE_ACTIONS),
                "Resource": hosted_zone_arn(hosted_zone_id),
            },
            {
                "Sid": "ListZones",
                "Effect": "Allow",
                "Action": list(EXTERNAL_DNS_LIST_ACTIONS),
                "Resource": "*",
            },
        ],
    }


# Argo Rollouts v1.9.0 (argoproj/argo-rollouts @v1.9.0). Two AWS integrations call AWS with the
# controller's credentials (the AWS SDK's default chain, so Pod Identity: utils/aws/aws.go
# DefaultNewClientFunc and metricproviders/cloudwatch/cloudwatch.go NewCloudWatchAPIClient both call
# config.LoadDefaultConfig):
# * the cloudwatch metric provider calls only GetMetricData (cloudwatch.go CloudWatchClient.Query);
# * the ALB traffic router's weight verification (controller flag --aws-verify-target-group,
#   rollout/trafficrouting/alb/alb.go VerifyWeightPerIngress) and the target group IP verification
#   (rollout/service.go awsVerifyTargetGroups) call, through utils/aws/aws.go ClientAdapter:
#   DescribeLoadBalancers (FindLoadBalancerByDNSName), DescribeTargetGroups, DescribeTags,
#   DescribeListeners, DescribeRules (GetTargetGroupMetadata) and DescribeTargetHealth
#   (GetTargetGroupHealth): the six actions docs/features/traffic-management/alb.md lists.
# None of these actions supports resource-level permissions (Service Authorization Reference,
# "Actions defined by Amazon CloudWatch" / "Elastic Load Balancing V2": no resource type for
# GetMetricData and the Describe* calls), so the resource is "*"; the region condition keeps
# the role to its own cluster's region.
ARGO_ROLLOUTS_CLOUDWATCH_ACTIONS: tuple[str, ...] = ("cloudwatch:GetMetricData",)
ARGO_ROLLOUTS_ELB_ACTIONS: tuple[str, ...] = (
    "elasticloadbalancing:DescribeListeners",
    "elasticloadbalancing:DescribeLoadBalancers",
    "elasticloadbalancing:DescribeRules",
    "elasticloadbalancing:DescribeTags",
    "elasticloadbalancing:DescribeTargetGroups",
    "elasticloadbalancing:DescribeTargetHealth",
)


def argo_rollouts_policy(region: str) -> dict[str, Any]:
    """Read-only: the canary analysis's CloudWatch query and the ALB router's Describe calls, in
    the cluster's region only (``aws:RequestedRegion``). No write of any kind: Rollouts shifts
    traffic by annotating the Ingress, and the AWS Load Balancer Controller (its own role) applies
    it to the load balancer."""
    in_region = {"StringEquals": {"aws:RequestedRegion": region}}
    return {
        "Version": VERSION,
        "Statement": [
            {
                "Sid": "CanaryAnalysisMetrics",
                "Effect": "Allow",
                "Action": list(ARGO_ROLLOUTS_CLOUDWATCH_ACTIONS),
                "Resource": "*",
                "Condition": in_region,
            },
            {
                "Sid": "VerifyAlbWeights",
                "Effect": "Allow",
                "Action": list(ARGO_ROLLOUTS_ELB_ACTIONS),
                "Resource": "*",
                "Condition": in_region,
            },
        ],
    }
