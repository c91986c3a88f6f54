"""Issue 15's true findings, fixed in what every stack declares: VPC flow logs, the default
security group of each VPC, and the key policy of the EKS Secrets keys (sources in
infra/documents/kms.py)."""

from __future__ import annotations

import json
from functools import cache
from typing import Any

import pytest

from infra import naming, offline
from infra.components import network
from infra.documents import kms as kms_docs
from infra.plan import available_stacks

STACKS = tuple(available_stacks())
VPC = "aws:ec2/vpc:Vpc"


@cache
def plan(stack: str) -> offline.Plan:
    return offline.run(stack)


def _deps(r: offline.Resource, key: str) -> set[str]:
    return set(r.property_dependencies.get(key, []))


@pytest.mark.parametrize("stack", STACKS)
def test_every_vpc_adopts_its_default_security_group_with_no_rules(stack: str) -> None:
    p = plan(stack)
    groups = p.of_type("aws:ec2/defaultSecurityGroup:DefaultSecurityGroup")
    for vpc in p.of_type(VPC):
        (group,) = [g for g in groups if vpc.urn in _deps(g, "vpcId")]
        assert not group.inputs.get("ingress") and not group.inputs.get("egress")
    assert len(groups) == len(p.of_type(VPC)) == len(p.config.region_names)


@pytest.mark.parametrize("stack", STACKS)
def test_every_vpc_logs_all_flows_to_an_encrypted_log_group_kept_a_year(stack: str) -> None:
    p = plan(stack)
    index = p.by_urn()
    logs = p.of_type("aws:ec2/flowLog:FlowLog")
    for vpc in p.of_type(VPC):
        region = p.region_of(vpc)
        (flow,) = [f for f in logs if vpc.urn in _deps(f, "vpcId")]
        assert flow.inputs["trafficType"] == "ALL"
        assert flow.inputs["logDestinationType"] == "cloud-watch-logs"
        (group_urn,) = _deps(flow, "logDestination")
        group = index[group_urn]
        assert group.type == "aws:cloudwatch/logGroup:LogGroup"
        assert group.inputs["retentionInDays"] >= 365
        (key_urn,) = _deps(group, "kmsKeyId")
        key = index[key_urn]
        assert key.inputs["enableKeyRotation"] is True
        policy = json.loads(key.inputs["policy"])
        assert policy == kms_docs.log_key_policy(p.config.account_id, str(region), group.inputs["name"])
        (role_urn,) = _deps(flow, "iamRoleArn")
        trust = json.loads(index[role_urn].inputs["assumeRolePolicy"])
        (statement,) = trust["Statement"]
        assert statement["Principal"] == {"Service": "vpc-flow-logs.amazonaws.com"}
        assert statement["Condition"]["StringEquals"] == {"aws:SourceAccount": p.config.account_id}
        # The delivery permission exists before the flow log (it is checked at creation).
        permissions = [r for r in p.of_type("aws:iam/rolePolicy:RolePolicy") if role_urn in _deps(r, "role")]
        assert len(permissions) == 1 and permissions[0].urn in flow.dependencies


def _denies(policy: dict[str, Any], action: str, principal_arn: str) -> bool:
    """Whether an explicit Deny of the policy applies to ``principal_arn`` doing ``action``
    (the two condition operators the document uses)."""
    for s in policy["Statement"]:
        if s["Effect"] != "Deny" or action not in s["Action"]:
            continue
        arn_not = s.get("Condition", {}).get("ArnNotEquals", {}).get("aws:PrincipalArn")
        if arn_not is None or principal_arn != arn_not:
            return True
    return False


@pytest.mark.parametrize("stack", STACKS)
def test_only_the_break_glass_admin_may_disable_or_delete_a_secrets_key(stack: str) -> None:
    p = plan(stack)
    cfg = p.config
    keys = [k for k in p.of_type("aws:kms/key:Key") if k.name.startswith("eks-secrets-")]
    assert len(keys) == len(cfg.region_names)
    up_role = f"arn:aws:iam::{cfg.account_id}:role/{naming.role_name(cfg.environment, 'github-up')}"
    for key in keys:
        policy = json.loads(key.inputs["policy"])
        assert key.inputs["bypassPolicyLockoutSafetyCheck"] is True
        # The account's IAM policies still govern use (EKS's grant is made through them).
        assert kms_docs.enable_iam_policies_statement(cfg.account_id) in policy["Statement"]
        for action in ("kms:DisableKey", "kms:ScheduleKeyDeletion", "kms:PutKeyPolicy"):
            assert not _denies(policy, action, cfg.cluster_admin_role_arn), action
            for other in (
                up_role,
                f"arn:aws:iam::{cfg.account_id}:root",
                f"arn:aws:iam::{cfg.account_id}:role/Admin",
            ):
                assert _denies(policy, action, other), (action, other)
        for use in ("kms:Encrypt", "kms:Decrypt", "kms:DescribeKey", "kms:CreateGrant"):
            assert not _denies(policy, use, up_role), use


def test_flow_log_retention_is_at_least_a_year() -> None:
    assert network.FLOW_LOG_RETENTION_DAYS >= 365
