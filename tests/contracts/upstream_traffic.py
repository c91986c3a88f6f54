"""Transcriptions of the upstream rules the traffic add-ons rely on (issue 18, cluster side).

One function or constant per rule, each naming the upstream file and tag it transcribes:
kubernetes-sigs/aws-load-balancer-controller at tag v3.5.0 (commit
11eb202c97e4ae2ee45e0658c4cde9a4b59f33d4, the app version of chart aws-load-balancer-controller
3.5.0) and kubernetes-sigs/external-dns at tag v0.21.0 (commit
066a11e2158f87689a01f0ff39493037da958171, the app version of chart external-dns 1.21.1).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

LBC_TAG = "v3.5.0"
EXTERNAL_DNS_TAG = "v0.21.0"

# kubernetes-sigs/aws-load-balancer-controller v3.5.0 docs/install/iam_policy.json, unchanged.
LBC_IAM_POLICY: dict[str, Any] = json.loads(
    r"""
{
    "Version": "2012-10-17",
    "Statement": [
        {
            "Effect": "Allow",
            "Action": [
                "iam:CreateServiceLinkedRole"
            ],
            "Resource": "*",
            "Condition": {
                "StringEquals": {
                    "iam:AWSServiceName": "elasticloadbalancing.amazonaws.com"
                }
            }
        },
        {
            "Effect": "Allow",
            "Action": [
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
                "elasticloadbalancing:DescribeCapacityReservation"
            ],
            "Resource": "*"
        },
        {
            "Effect": "Allow",
            "Action": [
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
                "shield:DeleteProtection"
            ],
            "Resource": "*"
        },
        {
            "Effect": "Allow",
            "Action": [
                "ec2:AuthorizeSecurityGroupIngress",
                "ec2:RevokeSecurityGroupIngress"
            ],
            "Resource": "*"
        },
        {
            "Effect": "Allow",
            "Action": [
                "ec2:CreateSecurityGroup"
            ],
            "Resource": "*"
        },
        {
            "Effect": "Allow",
            "Action": [
                "ec2:CreateTags"
            ],
            "Resource": "arn:aws:ec2:*:*:security-group/*",
            "Condition": {
                "StringEquals": {
                    "ec2:CreateAction": "CreateSecurityGroup"
                },
                "Null": {
                    "aws:RequestTag/elbv2.k8s.aws/cluster": "false"
                }
            }
        },
        {
            "Effect": "Allow",
            "Action": [
                "ec2:CreateTags",
                "ec2:DeleteTags"
            ],
            "Resource": "arn:aws:ec2:*:*:security-group/*",
            "Condition": {
                "Null": {
                    "aws:RequestTag/elbv2.k8s.aws/cluster": "true",
                    "aws:ResourceTag/elbv2.k8s.aws/cluster": "false"
                }
            }
        },
        {
            "Effect": "Allow",
            "Action": [
                "ec2:AuthorizeSecurityGroupIngress",
                "ec2:RevokeSecurityGroupIngress",
                "ec2:DeleteSecurityGroup"
            ],
            "Resource": "*",
            "Condition": {
                "Null": {
                    "aws:ResourceTag/elbv2.k8s.aws/cluster": "false"
                }
            }
        },
        {
            "Effect": "Allow",
            "Action": [
                "elasticloadbalancing:CreateLoadBalancer",
                "elasticloadbalancing:CreateTargetGroup"
            ],
            "Resource": "*",
            "Condition": {
                "Null": {
                    "aws:RequestTag/elbv2.k8s.aws/cluster": "false"
                }
            }
        },
        {
            "Effect": "Allow",
            "Action": [
                "elasticloadbalancing:CreateListener",
                "elasticloadbalancing:DeleteListener",
                "elasticloadbalancing:CreateRule",
                "elasticloadbalancing:DeleteRule"
            ],
            "Resource": "*"
        },
        {
            "Effect": "Allow",
            "Action": [
                "elasticloadbalancing:AddTags",
                "elasticloadbalancing:RemoveTags"
            ],
            "Resource": [
                "arn:aws:elasticloadbalancing:*:*:targetgroup/*/*",
                "arn:aws:elasticloadbalancing:*:*:loadbalancer/net/*/*",
                "arn:aws:elasticloadbalancing:*:*:loadbalancer/app/*/*"
            ],
            "Condition": {
                "Null": {
                    "aws:RequestTag/elbv2.k8s.aws/cluster": "true",
                    "aws:ResourceTag/elbv2.k8s.aws/cluster": "false"
                }
            }
        },
        {
            "Effect": "Allow",
            "Action": [
                "elasticloadbalancing:AddTags",
                "elasticloadbalancing:RemoveTags"
            ],
            "Resource": [
                "arn:aws:elasticloadbalancing:*:*:listener/net/*/*/*",
                "arn:aws:elasticloadbalancing:*:*:listener/app/*/*/*",
                "arn:aws:elasticloadbalancing:*:*:listener-rule/net/*/*/*",
                "arn:aws:elasticloadbalancing:*:*:listener-rule/app/*/*/*"
            ]
        },
        {
            "Effect": "Allow",
            "Action": [
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
                "elasticloadbalancing:ModifyIpPools"
            ],
            "Resource": "*",
            "Condition": {
                "Null": {
                    "aws:ResourceTag/elbv2.k8s.aws/cluster": "false"
                }
            }
        },
        {
            "Effect": "Allow",
            "Action": [
                "elasticloadbalancing:AddTags"
            ],
            "Resource": [
                "arn:aws:elasticloadbalancing:*:*:targetgroup/*/*",
                "arn:aws:elasticloadbalancing:*:*:loadbalancer/net/*/*",
                "arn:aws:elasticloadbalancing:*:*:loadbalancer/app/*/*"
            ],
            "Condition": {
                "StringEquals": {
                    "elasticloadbalancing:CreateAction": [
                        "CreateTargetGroup",
                        "CreateLoadBalancer"
                    ]
                },
                "Null": {
                    "aws:RequestTag/elbv2.k8s.aws/cluster": "false"
                }
            }
        },
        {
            "Effect": "Allow",
            "Action": [
                "elasticloadbalancing:RegisterTargets",
                "elasticloadbalancing:DeregisterTargets"
            ],
            "Resource": "arn:aws:elasticloadbalancing:*:*:targetgroup/*/*"
        },
        {
            "Effect": "Allow",
            "Action": [
                "elasticloadbalancing:SetWebAcl",
                "elasticloadbalancing:ModifyListener",
                "elasticloadbalancing:AddListenerCertificates",
                "elasticloadbalancing:RemoveListenerCertificates",
                "elasticloadbalancing:ModifyRule",
                "elasticloadbalancing:SetRulePriorities"
            ],
            "Resource": "*"
        }
    ]
}
"""
)


# --- AWS Load Balancer Controller: subnet discovery ----------------------------------------------

# pkg/networking/subnet_resolver.go (v3.5.0): TagKeySubnetInternalELB, TagKeySubnetPublicELB.
LBC_ROLE_TAG = {"internet-facing": "kubernetes.io/role/elb", "internal": "kubernetes.io/role/internal-elb"}
# Same file, ``computeSubnetsMinimalCount``: an ALB in availability zones needs two subnets (one per
# zone, ``chooseAndValidateSubnetsPerAZ``) unless single-subnet ALBs are allow-listed.
LBC_ALB_MIN_SUBNETS = 2


def lbc_discovers_subnet(tags: Mapping[str, str], cluster_name: str, scheme: str) -> bool:
    """Whether the controller's subnet discovery (no subnets annotation) may place a load balancer
    of ``scheme`` in a subnet with ``tags``.

    pkg/networking/subnet_resolver.go (v3.5.0), ``ResolveViaDiscovery``: it lists the VPC's subnets
    with the scheme's role tag (``tagFilters := map[string][]string{subnetRoleTagKey: {"", "1"}}``),
    then keeps those ``isSubnetContainsEligibleClusterTag`` accepts: with the cluster tag check on
    (feature gate ``SubnetsClusterTagCheck``, default true in pkg/config/feature_gates.go), a subnet
    with ``kubernetes.io/cluster/<this cluster>`` is eligible, one with only another cluster's
    ``kubernetes.io/cluster/...`` tag is not, one with no cluster tag is. (Discovery by
    reachability is a fallback only when no subnet has the role tag.)
    """
    role = LBC_ROLE_TAG[scheme]
    if tags.get(role) not in ("", "1"):
        return False
    own = f"kubernetes.io/cluster/{cluster_name}"
    if own in tags:
        return True
    return not any(key.startswith("kubernetes.io/cluster") for key in tags)


# --- AWS Load Balancer Controller: the Service mutating webhook ---------------------------------


def lbc_service_mutator_create(service: Mapping[str, Any], load_balancer_class: str) -> dict[str, Any]:
    """webhooks/core/service_mutator.go (v3.5.0) ``MutateCreate``: a Service that is not
    ``type: LoadBalancer`` is returned unchanged; a LoadBalancer Service without a
    ``loadBalancerClass`` gets the controller's (default ``service.k8s.aws/nlb``,
    pkg/config/service_config.go)."""
    out = json.loads(json.dumps(service))
    spec = out.setdefault("spec", {})
    if spec.get("type") != "LoadBalancer":
        return out
    if spec.get("loadBalancerClass"):
        return out
    spec["loadBalancerClass"] = load_balancer_class
    return out


# --- ExternalDNS ---------------------------------------------------------------------------------

# kubernetes-sigs/external-dns v0.21.0 docs/tutorials/aws.md, "IAM Policy" (the first policy).
EXTERNAL_DNS_TUTORIAL_POLICY: dict[str, Any] = {
    "Version": "2012-10-17",
    "Statement": [
        {
            "Effect": "Allow",
            "Action": [
                "route53:ChangeResourceRecordSets",
                "route53:ListResourceRecordSets",
                "route53:ListTagsForResources",
            ],
            "Resource": ["arn:aws:route53:::hostedzone/*"],
        },
        {"Effect": "Allow", "Action": ["route53:ListHostedZones"], "Resource": ["*"]},
    ],
}


def external_dns_route53_calls(*, zone_tag_filter: bool) -> set[str]:
    """The Route 53 API calls of ExternalDNS's AWS provider (provider/aws/aws.go, v0.21.0):
    ``zones`` pages ``ListHostedZones`` and calls ``ListTagsForResources`` (``tagsForZone``) only
    ``if !p.zoneTagFilter.IsEmpty()``; ``records`` pages ``ListResourceRecordSets``;
    ``submitChanges`` calls ``ChangeResourceRecordSets``."""
    calls = {"route53:ListHostedZones", "route53:ListResourceRecordSets", "route53:ChangeResourceRecordSets"}
    if zone_tag_filter:
        calls.add("route53:ListTagsForResources")
    return calls


# pkg/apis/externaldns/types.go (v0.21.0): the flags the platform passes, with their allowed values
# (None: any string). ``policy``: EnumVar "sync", "upsert-only", "create-only"; ``aws-zone-type``:
# EnumVar "", "public", "private"; ``zone-id-filter``, ``txt-owner-id``, ``domain-filter``: strings.
EXTERNAL_DNS_FLAGS: dict[str, tuple[str, ...] | None] = {
    "source": None,
    "policy": ("sync", "upsert-only", "create-only"),
    "registry": ("txt", "noop", "dynamodb", "aws-sd"),
    "txt-owner-id": None,
    "domain-filter": None,
    "provider": None,
    "zone-id-filter": None,
    "aws-zone-type": ("", "public", "private"),
}


def external_dns_changes_applied(
    owner_id: str, deletes: Sequence[Mapping[str, str]], updates: Sequence[Mapping[str, str]]
) -> tuple[list[Mapping[str, str]], list[Mapping[str, str]]]:
    """plan/plan.go (v0.21.0) ``Calculate``: ``if p.OwnerID != ""``, deletes and updates are
    filtered by ``endpoint.FilterEndpointsByOwnerID`` (records whose ``owner`` label, read from
    the TXT registry, is this owner); with an empty owner ID nothing is filtered. Records are
    ``{"name": ..., "owner": ...}``."""
    if owner_id == "":
        return list(deletes), list(updates)
    return (
        [r for r in deletes if r.get("owner") == owner_id],
        [r for r in updates if r.get("owner") == owner_id],
    )


# --- AWS Load Balancer Controller: the pod readiness gate ---------------------------------------

LBC_READINESS_GATE_PREFIX = "target-health.elbv2.k8s.aws"


def lbc_selector_matches(selector: Mapping[str, Any] | None, labels: Mapping[str, str]) -> bool:
    """A Kubernetes label selector (``matchLabels``, ``matchExpressions`` with In/NotIn/Exists/
    DoesNotExist) against ``labels``; an absent selector matches everything (admissionregistration
    v1 ``namespaceSelector``/``objectSelector``)."""
    if not selector:
        return True
    if any(labels.get(k) != v for k, v in (selector.get("matchLabels") or {}).items()):
        return False
    for expr in selector.get("matchExpressions") or []:
        key, op, values = expr["key"], expr["operator"], list(expr.get("values") or [])
        ok = {
            "In": key in labels and labels[key] in values,
            "NotIn": key not in labels or labels[key] not in values,
            "Exists": key in labels,
            "DoesNotExist": key not in labels,
        }[op]
        if not ok:
            return False
    return True


def lbc_pod_readiness_gates(
    *,
    inject_enabled: bool,
    pod_labels: Mapping[str, str],
    target_group_bindings: Sequence[Mapping[str, Any]],
    services: Mapping[str, Mapping[str, str]],
) -> list[str]:
    """The readiness gates the controller's pod webhook adds to a pod it is called for.

    pkg/inject/pod_readiness/pod_readiness_gate.go (v3.5.0) ``Mutate``: nothing when
    ``--enable-pod-readiness-gate-inject`` is false (default true, pod_readiness_gate_config.go);
    else one gate ``target-health.elbv2.k8s.aws/<binding>`` per TargetGroupBinding of the pod's
    namespace whose target type is ``ip`` and whose Service's selector (``services``: name ->
    selector) matches the pod's labels (an empty selector matches nothing). Whether the webhook is
    called at all is the MutatingWebhookConfiguration's ``namespaceSelector`` (the chart's
    ``mpod.elbv2.k8s.aws``: namespaces labelled ``elbv2.k8s.aws/pod-readiness-gate-inject:
    enabled``, docs/deploy/pod_readiness_gate.md), on pod CREATE only.
    """
    if not inject_enabled:
        return []
    gates = []
    for tgb in target_group_bindings:
        if tgb.get("targetType") != "ip":
            continue
        selector = services.get(str(tgb["serviceName"]))
        if selector is None or not selector:
            continue
        if all(pod_labels.get(k) == v for k, v in selector.items()):
            gates.append(f"{LBC_READINESS_GATE_PREFIX}/{tgb['name']}")
    return gates
