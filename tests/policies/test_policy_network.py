"""VPC flow logs, default security groups and the EKS Secrets key policy (policies/network.py).

Each rule is shown to fail on a bad stack and to pass on the good one; the example stacks' plans
pass every rule (tests/policies/test_policy_stacks.py).
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from infra.documents import kms as kms_docs
from policies import network
from tests.policies.support import check_stack, stack, urn, view

ACCOUNT = "444455556666"
BREAK_GLASS = f"arn:aws:iam::{ACCOUNT}:role/platform-break-glass"
KEY_ARN = f"arn:aws:kms:us-west-2:{ACCOUNT}:key/0b3c0f3e-0000-4000-8000-000000000001"
VPC_URN = urn(network.VPC, "vpc-us-west-2")
KEY_URN = urn(network.KMS_KEY, "eks-secrets-us-west-2")


def vpc() -> Any:
    return view(
        network.VPC,
        "vpc-us-west-2",
        {"cidrBlock": "10.20.0.0/16", "tags": {"Name": "platform-prod-us-west-2"}},
    )


def flow_log(traffic: str = "ALL") -> Any:
    return view(
        network.FLOW_LOG,
        "flow-logs-us-west-2",
        {"vpcId": "vpc-1", "trafficType": traffic},
        deps={"vpcId": (VPC_URN,)},
    )


def default_group(**rules: Any) -> Any:
    return view(
        network.DEFAULT_SECURITY_GROUP,
        "default-sg-us-west-2",
        {"vpcId": "vpc-1", **rules},
        deps={"vpcId": (VPC_URN,)},
    )


# --- vpc-flow-logs -------------------------------------------------------------------------------


def test_a_vpc_with_a_flow_log_of_all_traffic_passes() -> None:
    assert check_stack("vpc-flow-logs", stack(vpc(), flow_log(), default_group())) == []


def test_a_vpc_without_a_flow_log_fails() -> None:
    [finding] = check_stack("vpc-flow-logs", stack(vpc(), default_group()))
    assert finding.urn == VPC_URN and "has no flow log" in finding.message


def test_a_flow_log_of_another_vpc_does_not_count() -> None:
    other = view(
        network.FLOW_LOG, "other", {"vpcId": "vpc-2", "trafficType": "ALL"}, deps={"vpcId": ("urn:other",)}
    )
    assert len(check_stack("vpc-flow-logs", stack(vpc(), other))) == 1


def test_a_flow_log_of_rejected_traffic_only_fails() -> None:
    [finding] = check_stack("vpc-flow-logs", stack(vpc(), flow_log("REJECT")))
    assert "trafficType to ALL" in finding.message


# --- vpc-default-security-group-closed -----------------------------------------------------------


def test_an_adopted_default_group_without_rules_passes() -> None:
    assert check_stack("vpc-default-security-group-closed", stack(vpc(), default_group())) == []
    assert (
        check_stack("vpc-default-security-group-closed", stack(vpc(), default_group(ingress=[], egress=[])))
        == []
    )


def test_a_vpc_whose_default_group_is_not_adopted_fails() -> None:
    [finding] = check_stack("vpc-default-security-group-closed", stack(vpc(), flow_log()))
    assert finding.urn == VPC_URN and "left as AWS creates it" in finding.message


@pytest.mark.parametrize("direction", ["ingress", "egress"])
def test_a_default_group_with_rules_fails(direction: str) -> None:
    rule = [{"protocol": "-1", "fromPort": 0, "toPort": 0, "self": True}]
    [finding] = check_stack(
        "vpc-default-security-group-closed", stack(vpc(), default_group(**{direction: rule}))
    )
    assert direction in finding.message


# --- eks-secrets-key-break-glass-only ------------------------------------------------------------


def cluster() -> Any:
    return view(
        "eks:index:Cluster",
        "platform-prod-us-west-2",
        {"name": "platform-prod-us-west-2", "encryptionConfigKeyArn": KEY_ARN},
        deps={"encryptionConfigKeyArn": (KEY_URN,)},
    )


def key(policy: Any) -> Any:
    props = {} if policy is None else {"policy": policy if isinstance(policy, str) else json.dumps(policy)}
    return view(network.KMS_KEY, "eks-secrets-us-west-2", props)


def good_policy() -> dict[str, Any]:
    return kms_docs.protected_key_policy(ACCOUNT, BREAK_GLASS)


def test_the_programs_key_policy_passes() -> None:
    assert check_stack("eks-secrets-key-break-glass-only", stack(cluster(), key(good_policy()))) == []


def test_the_default_key_policy_fails() -> None:
    [finding] = check_stack("eks-secrets-key-break-glass-only", stack(cluster(), key(None)))
    assert finding.urn == KEY_URN and "default key policy" in finding.message


def test_a_policy_without_the_deny_fails() -> None:
    policy = {"Version": "2012-10-17", "Statement": [kms_docs.enable_iam_policies_statement(ACCOUNT)]}
    [finding] = check_stack("eks-secrets-key-break-glass-only", stack(cluster(), key(policy)))
    assert "denies nobody" in finding.message


@pytest.mark.parametrize("dropped", network.REQUIRED_DENIED_ACTIONS)
def test_a_deny_missing_one_action_fails(dropped: str) -> None:
    policy = good_policy()
    policy["Statement"][1]["Action"] = [a for a in policy["Statement"][1]["Action"] if a != dropped]
    assert len(check_stack("eks-secrets-key-break-glass-only", stack(cluster(), key(policy)))) == 1


@pytest.mark.parametrize(
    "exempt",
    [
        f"arn:aws:iam::{ACCOUNT}:root",  # the whole account: every administrator
        f"arn:aws:iam::{ACCOUNT}:role/*",  # every role
        [BREAK_GLASS, f"arn:aws:iam::{ACCOUNT}:role/platform-prod-github-up"],  # two principals
    ],
)
def test_a_deny_exempting_more_than_one_role_fails(exempt: Any) -> None:
    policy = good_policy()
    policy["Statement"][1]["Condition"] = {"ArnNotEquals": {"aws:PrincipalArn": exempt}}
    assert len(check_stack("eks-secrets-key-break-glass-only", stack(cluster(), key(policy)))) == 1


def test_a_key_no_cluster_uses_is_not_judged() -> None:
    other = view(network.KMS_KEY, "flow-logs-us-west-2", {})
    assert check_stack("eks-secrets-key-break-glass-only", stack(cluster(), key(good_policy()), other)) == []


def test_an_unknown_policy_is_judged_later() -> None:
    from policies.engine import UNKNOWN

    unknown = view(network.KMS_KEY, "eks-secrets-us-west-2", {"policy": UNKNOWN})
    assert check_stack("eks-secrets-key-break-glass-only", stack(cluster(), unknown)) == []


def test_the_rule_requires_what_the_program_denies() -> None:
    # The pack cannot import infra.documents.kms; the two lists are held together here.
    assert set(network.REQUIRED_DENIED_ACTIONS) <= set(kms_docs.BREAK_GLASS_KEY_ACTIONS)
    assert set(kms_docs.BREAK_GLASS_KEY_ACTIONS) - set(network.REQUIRED_DENIED_ACTIONS) == {
        "kms:DeleteImportedKeyMaterial"
    }
