"""Rules for what each cluster's VPC and Secrets key must be (issue 15: the scanners' findings).

* ``vpc-flow-logs``: every VPC has a flow log of all its traffic (checkov CKV2_AWS_11's finding);
* ``vpc-default-security-group-closed``: every VPC's default security group is adopted with no
  rules (checkov CKV2_AWS_12). AWS creates each VPC's default group admitting all traffic between
  its members and all egress (https://docs.aws.amazon.com/vpc/latest/userguide/default-security-group.html);
  pulumi-aws's ``aws.ec2.DefaultSecurityGroup`` "immediately removes all ingress and egress rules"
  when it adopts the group and then creates only the rules it declares (pulumi-aws 7.51.1,
  ``pulumi_aws/ec2/default_security_group.py``);
* ``eks-secrets-key-break-glass-only``: the KMS key that envelope-encrypts an EKS cluster's
  Secrets explicitly denies disabling it, scheduling its deletion and rewriting its policy to
  every principal but one role (``aws:PrincipalArn``, which for a role session is the role's ARN:
  https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_condition-keys.html#condition-keys-principalarn).
  Losing that key loses every Secret of the cluster; with the default key policy any account
  administrator, CI's ``up`` role included, could.

Each is a stack rule: a VPC and its flow log, or a cluster and its key, are separate resources,
matched through the property the one takes from the other (``vpcId``, the cluster's key ARN), by
value or, while unknown in a preview, by the engine's property dependency.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Mapping
from typing import Any

from policies.eks import EKS_CLUSTER, EKS_COMPONENT, cluster_settings
from policies.engine import (
    Finding,
    ResourceView,
    Rule,
    StackView,
    as_list,
    is_unknown,
    parse_json,
    refers_to,
    stack_rule,
)

VPC = "aws:ec2/vpc:Vpc"
FLOW_LOG = "aws:ec2/flowLog:FlowLog"
DEFAULT_SECURITY_GROUP = "aws:ec2/defaultSecurityGroup:DefaultSecurityGroup"
KMS_KEY = "aws:kms/key:Key"

# What the Secrets key's Deny must cover: disabling, scheduling deletion, rewriting the policy.
# The program denies these and DeleteImportedKeyMaterial (infra.documents.kms.BREAK_GLASS_KEY_ACTIONS,
# which the pack cannot import: it ships infra.naming and infra.versions only; a test holds the
# two lists together). A key without imported material has nothing to delete, so the rule does
# not require that one.
REQUIRED_DENIED_ACTIONS: tuple[str, ...] = ("kms:DisableKey", "kms:ScheduleKeyDeletion", "kms:PutKeyPolicy")
_NEGATED_ARN_OPERATORS = ("ArnNotEquals", "ArnNotLike", "StringNotEquals", "StringNotLike")


def _vpc_name(vpc: ResourceView) -> str:
    name = vpc.tags.get("Name")
    return name if isinstance(name, str) and name else vpc.name


def _of_vpc(stack: StackView, vpc: ResourceView, type_: str) -> list[ResourceView]:
    return [r for r in stack.of_type(type_) if refers_to(r, "vpcId", vpc, "id")]


# --- vpc-flow-logs -------------------------------------------------------------------------------


def _flow_logs(stack: StackView) -> list[Finding]:
    out = []
    for vpc in stack.of_type(VPC):
        logs = _of_vpc(stack, vpc, FLOW_LOG)
        if not logs:
            out.append(
                Finding(
                    f"VPC {_vpc_name(vpc)} has no flow log; declare an aws.ec2.FlowLog with vpcId of "
                    "this VPC and trafficType ALL (infra/components/network.py does, per region).",
                    vpc.urn,
                )
            )
            continue
        traffic = [log.get("trafficType") for log in logs]
        if not any(is_unknown(t) or t == "ALL" for t in traffic):
            out.append(
                Finding(
                    f"VPC {_vpc_name(vpc)}'s flow logs capture only {sorted(map(str, traffic))} traffic; "
                    "set trafficType to ALL so accepted and rejected flows are both recorded.",
                    vpc.urn,
                )
            )
    return out


# --- vpc-default-security-group-closed -----------------------------------------------------------


def _rules_of(group: ResourceView) -> list[str]:
    present = []
    for direction in ("ingress", "egress"):
        value = group.get(direction)
        if is_unknown(value):
            continue
        if as_list(value):
            present.append(direction)
    return present


def _default_groups(stack: StackView) -> list[Finding]:
    out = []
    for vpc in stack.of_type(VPC):
        groups = _of_vpc(stack, vpc, DEFAULT_SECURITY_GROUP)
        if not groups:
            out.append(
                Finding(
                    f"VPC {_vpc_name(vpc)}'s default security group is left as AWS creates it (all "
                    "traffic between its members, all egress); adopt it with an "
                    "aws.ec2.DefaultSecurityGroup with vpcId of this VPC and no ingress or egress.",
                    vpc.urn,
                )
            )
    for group in stack.of_type(DEFAULT_SECURITY_GROUP):
        rules = _rules_of(group)
        if rules:
            out.append(
                Finding(
                    f"Default security group {group.name} declares {' and '.join(rules)} rules; remove "
                    "them (nothing may rely on a VPC's default group: give it its own security group).",
                    group.urn,
                )
            )
    return out


# --- eks-secrets-key-break-glass-only ------------------------------------------------------------


def _covers(statement_actions: list[Any], action: str) -> bool:
    return any(
        isinstance(a, str) and fnmatch.fnmatchcase(action.lower(), a.lower()) for a in statement_actions
    )


def _everyone(principal: Any) -> bool:
    if principal == "*":
        return True
    return isinstance(principal, Mapping) and as_list(principal.get("AWS")) == ["*"]


def _break_glass_principal(statement: Mapping[str, Any]) -> str | None:
    """The one principal a Deny to everyone exempts through ``aws:PrincipalArn``, else None."""
    condition = statement.get("Condition")
    if not isinstance(condition, Mapping) or len(condition) != 1:
        return None
    [(operator, pairs)] = condition.items()
    if operator not in _NEGATED_ARN_OPERATORS or not isinstance(pairs, Mapping) or len(pairs) != 1:
        return None
    [(key, value)] = pairs.items()
    values = as_list(value)
    if key.lower() != "aws:principalarn" or len(values) != 1 or not isinstance(values[0], str):
        return None
    arn = values[0]
    # A role (the break-glass administrator), not a wildcard and not the whole account.
    if ":role/" not in arn or "*" in arn or "?" in arn:
        return None
    return arn


def key_policy_problem(policy: Any) -> str | None:
    """Why a Secrets key policy lets more than one role disable, delete or re-policy the key;
    None when it does not (or cannot be known yet)."""
    doc = parse_json(policy)
    if is_unknown(doc):
        return None
    if doc is None:
        return "has the default key policy, so every account administrator may disable or delete it"
    exempt: set[str] = set()
    for st in as_list(doc.get("Statement")) if isinstance(doc, Mapping) else []:
        if not isinstance(st, Mapping) or st.get("Effect") != "Deny" or not _everyone(st.get("Principal")):
            continue
        if as_list(st.get("Resource")) != ["*"]:
            continue
        actions = as_list(st.get("Action"))
        if not all(_covers(actions, a) for a in REQUIRED_DENIED_ACTIONS):
            continue
        principal = _break_glass_principal(st)
        if principal is not None:
            exempt.add(principal)
    if len(exempt) == 1:
        return None
    return (
        "denies nobody "
        + ", ".join(REQUIRED_DENIED_ACTIONS)
        + " (no Deny to Principal * on Resource * exempting exactly one role through aws:PrincipalArn)"
        if not exempt
        else f"exempts several principals {sorted(exempt)} in separate statements"
    )


def _secrets_keys(stack: StackView) -> list[Finding]:
    out = []
    seen: set[str] = set()
    keys = stack.of_type(KMS_KEY)
    for cluster in stack.of_type(EKS_COMPONENT, EKS_CLUSTER):
        settings = cluster_settings(cluster)
        if settings is None or (not settings.secrets_key and not is_unknown(settings.secrets_key)):
            continue  # no secrets encryption: eks-secrets-encryption reports it
        # pulumi-eks takes the key ARN top-level; the aws:eks/cluster:Cluster it creates (seen in
        # a real preview) nests it in encryptionConfig. Either names the key by value or, while
        # unknown, through the engine's property dependency.
        prop = "encryptionConfigKeyArn" if cluster.type == EKS_COMPONENT else "encryptionConfig"
        matched = [
            k
            for k in keys
            if refers_to(cluster, prop, k, "arn")
            or (isinstance(settings.secrets_key, str) and k.props.get("arn") == settings.secrets_key)
        ]
        for key in matched:
            if key.urn in seen:
                continue
            seen.add(key.urn)
            problem = key_policy_problem(key.get("policy"))
            if problem:
                out.append(
                    Finding(
                        f"KMS key {key.name}, which encrypts the Secrets of EKS cluster "
                        f"{cluster.get('name') or cluster.name}, {problem}; use "
                        "infra.documents.kms.protected_key_policy (only clusterAdminRoleArn may disable it, "
                        "schedule its deletion or change its policy).",
                        key.urn,
                    )
                )
    return out


_DOC_DEFAULT_SG = "https://docs.aws.amazon.com/vpc/latest/userguide/default-security-group.html"

RULES: tuple[Rule, ...] = (
    stack_rule(
        "vpc-flow-logs",
        "network",
        "Every VPC has a flow log of ALL its traffic.",
        "mandatory",
        _flow_logs,
        resource_types=(VPC, FLOW_LOG),
        url="https://docs.aws.amazon.com/vpc/latest/userguide/flow-logs.html",
    ),
    stack_rule(
        "vpc-default-security-group-closed",
        "network",
        "Every VPC's default security group is adopted with no ingress or egress rules.",
        "mandatory",
        _default_groups,
        resource_types=(VPC, DEFAULT_SECURITY_GROUP),
        url=_DOC_DEFAULT_SG,
    ),
    stack_rule(
        "eks-secrets-key-break-glass-only",
        "network",
        "The KMS key of every EKS cluster's Secrets denies DisableKey, ScheduleKeyDeletion and "
        "PutKeyPolicy to every principal but one role.",
        "mandatory",
        _secrets_keys,
        resource_types=(EKS_COMPONENT, EKS_CLUSTER, KMS_KEY),
        url="https://docs.aws.amazon.com/kms/latest/developerguide/key-policy-default.html",
    ),
)
