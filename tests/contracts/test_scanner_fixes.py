"""Contracts: the fixes of the scanners' true findings (issue 15) rely on AWS and Pulumi rules.

One test per behaviour; each docstring names the upstream source it transcribes. The small
evaluators below transcribe only the parts of IAM/KMS evaluation these documents reach and raise
on anything else, so a test cannot pass on a case they do not cover.
"""

from __future__ import annotations

import fnmatch
import json
from collections.abc import Mapping
from functools import cache
from typing import Any

import pytest

from infra import naming, offline
from infra.documents import kms as kms_docs
from infra.documents import runner as runner_docs

STACKS = ("staging", "prod")
KEY = "aws:kms/key:Key"
ROLE = "aws:iam/role:Role"


@cache
def plan(stack: str) -> offline.Plan:
    return offline.run(stack)


# --- transcriptions ------------------------------------------------------------------------------


def principal_arn(kind: str, account_id: str, name: str = "", path: str = "/") -> str:
    """``aws:PrincipalArn``: "For IAM roles, the request context returns the ARN of the role, not
    the ARN of the user that assumed the role" (the session); the root user's is
    ``arn:aws:iam::<account>:root``; an IAM user's is the user's ARN.
    https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_condition-keys.html#condition-keys-principalarn
    """
    if kind == "role-session":
        return f"arn:aws:iam::{account_id}:role{path}{name}"
    if kind == "root":
        return f"arn:aws:iam::{account_id}:root"
    if kind == "user":
        return f"arn:aws:iam::{account_id}:user{path}{name}"
    raise NotImplementedError(kind)


def _actions(statement: Mapping[str, Any]) -> list[str]:
    action = statement["Action"]
    return [action] if isinstance(action, str) else list(action)


def _condition_holds(condition: Mapping[str, Any], context: Mapping[str, str]) -> bool:
    for operator, pairs in condition.items():
        for key, value in pairs.items():
            values = [value] if isinstance(value, str) else list(value)
            if operator == "ArnNotEquals":
                # A negated operator is true when the key is absent (IAM condition operators).
                if key in context and any(fnmatch.fnmatchcase(context[key], v) for v in values):
                    return False
            elif operator == "ArnEquals":
                if key not in context or not any(fnmatch.fnmatchcase(context[key], v) for v in values):
                    return False
            else:
                raise NotImplementedError(operator)
    return True


def key_policy_allows(policy: Mapping[str, Any], action: str, caller: str, iam_allows: bool) -> bool:
    """KMS authorization of ``action`` by ``caller`` (its ``aws:PrincipalArn``) in the key's
    account: an explicit Deny in the key policy wins over every Allow; otherwise the key policy
    must allow it, and a statement whose principal is the account root delegates to the caller's
    IAM policies ("Allows access to the AWS account and enables IAM policies").
    https://docs.aws.amazon.com/kms/latest/developerguide/key-policy-default.html
    https://docs.aws.amazon.com/kms/latest/developerguide/determining-access.html
    https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_evaluation-logic.html
    """
    context = {"aws:PrincipalArn": caller}
    allowed = False
    for st in policy["Statement"]:
        if not any(fnmatch.fnmatchcase(action, a) for a in _actions(st)):
            continue
        principal = st["Principal"]["AWS"]
        if not _condition_holds(st.get("Condition", {}), context):
            continue
        if st["Effect"] == "Deny":
            if principal != "*":
                raise NotImplementedError(principal)
            return False
        if principal.endswith(":root"):
            allowed = allowed or iam_allows
        else:
            raise NotImplementedError(principal)
    return allowed


def create_key_passes_lockout_check(policy: Mapping[str, Any], caller: str, bypass: bool) -> bool:
    """CreateKey's policy lockout safety check: without ``BypassPolicyLockoutSafetyCheck``, "the
    key policy must allow the calling principal to make a subsequent PutKeyPolicy request on the
    KMS key"; the bypass is for exactly the case where "you intend to prevent the principal that
    is making the request from making a subsequent PutKeyPolicy request".
    https://docs.aws.amazon.com/kms/latest/APIReference/API_CreateKey.html#KMS-CreateKey-request-BypassPolicyLockoutSafetyCheck
    """
    return bypass or key_policy_allows(policy, "kms:PutKeyPolicy", caller, iam_allows=True)


# --- the EKS Secrets key -------------------------------------------------------------------------


def _secrets_keys(stack: str) -> list[offline.Resource]:
    return [k for k in plan(stack).of_type(KEY) if k.name.startswith("eks-secrets-")]


@pytest.mark.parametrize("stack", STACKS)
def test_only_the_break_glass_role_may_disable_delete_or_repolicy_the_secrets_key(stack: str) -> None:
    """The key policy's Deny names ``aws:PrincipalArn``, which for a role session is the role's
    ARN (IAM condition keys, ``aws:PrincipalArn``), and an explicit Deny wins over
    AdministratorAccess (IAM policy evaluation logic): CI's ``up`` role, any other administrator,
    an IAM user and the account root are refused DisableKey, ScheduleKeyDeletion and PutKeyPolicy,
    while the break-glass role (``clusterAdminRoleArn``), all of them holding IAM allows, is not."""
    p = plan(stack)
    cfg = p.config
    account = cfg.account_id
    keys = _secrets_keys(stack)
    assert len(keys) == len(cfg.region_names)
    break_glass = cfg.cluster_admin_role_arn
    others = [
        principal_arn("role-session", account, naming.role_name(cfg.environment, "github-up")),
        principal_arn(
            "role-session",
            account,
            "AWSReservedSSO_AdministratorAccess_0123",
            "/aws-reserved/sso.amazonaws.com/",
        ),
        principal_arn("user", account, "admin"),
        principal_arn("root", account),
    ]
    for key in keys:
        policy = json.loads(key.inputs["policy"])
        for action in kms_docs.BREAK_GLASS_KEY_ACTIONS:
            assert key_policy_allows(policy, action, break_glass, iam_allows=True), (key.name, action)
            for caller in others:
                assert not key_policy_allows(policy, action, caller, iam_allows=True), (
                    key.name,
                    action,
                    caller,
                )


@pytest.mark.parametrize("stack", STACKS)
def test_the_cluster_keeps_using_the_secrets_key(stack: str) -> None:
    """EKS envelope encryption uses the key through the cluster creator's IAM permissions and a
    grant (kms:Encrypt, kms:Decrypt, kms:DescribeKey, kms:CreateGrant;
    https://docs.aws.amazon.com/eks/latest/userguide/envelope-encryption.html): the Deny touches
    none of them, so CI's ``up`` role (which creates the clusters) keeps them through the default
    statement."""
    p = plan(stack)
    up = principal_arn(
        "role-session", p.config.account_id, naming.role_name(p.config.environment, "github-up")
    )
    for key in _secrets_keys(stack):
        policy = json.loads(key.inputs["policy"])
        for action in (
            "kms:Encrypt",
            "kms:Decrypt",
            "kms:DescribeKey",
            "kms:CreateGrant",
            "kms:GenerateDataKey",
        ):
            assert key_policy_allows(policy, action, up, iam_allows=True), (key.name, action)
            assert not key_policy_allows(policy, action, up, iam_allows=False), (key.name, action)


@pytest.mark.parametrize("stack", STACKS)
def test_ci_can_create_the_secrets_key_only_by_bypassing_the_lockout_check(stack: str) -> None:
    """CreateKey's lockout safety check (API_CreateKey, BypassPolicyLockoutSafetyCheck): CI's
    ``up`` role, which creates a new region's key, is denied PutKeyPolicy by the policy, so
    CreateKey would be refused without the bypass; the bypass is safe because the break-glass
    role keeps PutKeyPolicy (the key stays manageable), and the break-glass role itself would pass
    the check anyway."""
    p = plan(stack)
    up = principal_arn(
        "role-session", p.config.account_id, naming.role_name(p.config.environment, "github-up")
    )
    for key in _secrets_keys(stack):
        policy = json.loads(key.inputs["policy"])
        assert not create_key_passes_lockout_check(policy, up, bypass=False)
        assert key.inputs["bypassPolicyLockoutSafetyCheck"] is True
        assert create_key_passes_lockout_check(policy, up, bypass=True)
        assert create_key_passes_lockout_check(policy, p.config.cluster_admin_role_arn, bypass=False)


# --- VPC flow logs -------------------------------------------------------------------------------


def _role_by_name_suffix(stack: str, infix: str) -> list[offline.Resource]:
    return [r for r in plan(stack).of_type(ROLE) if infix in str(r.inputs.get("name", ""))]


@pytest.mark.parametrize("stack", STACKS)
def test_only_vpc_flow_logs_of_this_account_and_region_assume_the_delivery_role(stack: str) -> None:
    """VPC user guide, "IAM role for publishing flow logs to CloudWatch Logs": the trust names the
    service principal ``vpc-flow-logs.amazonaws.com`` and, against the confused deputy,
    ``aws:SourceAccount`` and ``aws:SourceArn`` ``arn:aws:ec2:<region>:<account>:vpc-flow-log/*``.
    https://docs.aws.amazon.com/vpc/latest/userguide/flow-logs-iam-role.html"""
    p = plan(stack)
    roles = _role_by_name_suffix(stack, "-flow-logs-")
    assert len(roles) == len(p.config.region_names)
    for role in roles:
        region = p.region_of(role)
        [st] = json.loads(role.inputs["assumeRolePolicy"])["Statement"]
        assert st["Principal"] == {"Service": "vpc-flow-logs.amazonaws.com"}
        assert st["Action"] == "sts:AssumeRole"
        assert st["Condition"]["StringEquals"] == {"aws:SourceAccount": p.config.account_id}
        assert st["Condition"]["ArnLike"] == {
            "aws:SourceArn": f"arn:aws:ec2:{region}:{p.config.account_id}:vpc-flow-log/*"
        }


def test_the_delivery_role_has_the_guides_actions_but_creating_the_group() -> None:
    """VPC user guide, flow-logs-iam-role.html: the role may CreateLogGroup, CreateLogStream,
    PutLogEvents, DescribeLogGroups and DescribeLogStreams. The group exists (declared before the
    flow log), so CreateLogGroup is left out; the writes are scoped to the one group and its
    streams; DescribeLogGroups lists names and keeps the guide's ``*``."""
    guide = {
        "logs:CreateLogGroup",
        "logs:CreateLogStream",
        "logs:PutLogEvents",
        "logs:DescribeLogGroups",
        "logs:DescribeLogStreams",
    }
    doc = kms_docs.flow_logs_delivery_policy("111122223333", "us-west-2", "/platform/vpc-flow-logs/x")
    granted = {a for st in doc["Statement"] for a in _actions(st)}
    assert granted == guide - {"logs:CreateLogGroup"}
    group = "arn:aws:logs:us-west-2:111122223333:log-group:/platform/vpc-flow-logs/x"
    for st in doc["Statement"]:
        if "logs:PutLogEvents" in _actions(st):
            assert st["Resource"] == [group, f"{group}:*"]
        else:
            assert _actions(st) == ["logs:DescribeLogGroups"] and st["Resource"] == "*"


@pytest.mark.parametrize("stack", STACKS)
def test_cloudwatch_logs_may_use_the_flow_log_key_for_its_group_only(stack: str) -> None:
    """CloudWatch Logs, "Encrypt log data using AWS KMS": the key policy allows the regional
    service principal ``logs.<region>.amazonaws.com`` kms:Encrypt*, Decrypt*, ReEncrypt*,
    GenerateDataKey*, Describe*, with ``ArnEquals`` on ``kms:EncryptionContext:aws:logs:arn`` (the
    log group's ARN) so the key serves that group only.
    https://docs.aws.amazon.com/AmazonCloudWatch/latest/logs/encrypt-log-data-kms.html"""
    p = plan(stack)
    keys = [k for k in p.of_type(KEY) if k.name.startswith("flow-logs-")]
    assert len(keys) == len(p.config.region_names)
    for key in keys:
        region = p.region_of(key)
        policy = json.loads(key.inputs["policy"])
        [logs] = [st for st in policy["Statement"] if "Service" in st["Principal"]]
        assert logs["Principal"] == {"Service": f"logs.{region}.amazonaws.com"}
        assert sorted(_actions(logs)) == sorted(
            ["kms:Encrypt*", "kms:Decrypt*", "kms:ReEncrypt*", "kms:GenerateDataKey*", "kms:Describe*"]
        )
        [(key_name, group_arn)] = logs["Condition"]["ArnEquals"].items()
        assert key_name == "kms:EncryptionContext:aws:logs:arn"
        assert group_arn.startswith(
            f"arn:aws:logs:{region}:{p.config.account_id}:log-group:/platform/vpc-flow-logs/"
        )


# --- Argo CD's default AppProject ----------------------------------------------------------------


@pytest.mark.parametrize("stack", STACKS)
def test_the_default_project_is_upserted_with_patch_force(stack: str) -> None:
    """pulumi-kubernetes "Managing Resources with Server-Side Apply" (pulumi/docs,
    registry/packages/kubernetes/how-to-guides/managing-resources-with-server-side-apply.md):
    with ``enableServerSideApply`` a resource is upserted ("update a resource if it already
    exists, or create it"), and the ``pulumi.com/patchForce: "true"`` annotation forces an
    override of conflicts with another field manager. Argo CD's server creates ``default`` at
    start-up, so the program's AppProject ``default`` must be a regular resource on an SSA
    provider, with that annotation."""
    p = plan(stack)
    defaults = [
        r
        for r in p.resources
        if r.inputs.get("kind") == "AppProject" and (r.inputs.get("metadata") or {}).get("name") == "default"
    ]
    assert len(defaults) == 1
    [project] = defaults
    assert project.inputs["metadata"]["annotations"] == {"pulumi.com/patchForce": "true"}
    provider = next(r for r in p.resources if r.urn == project.provider)
    assert provider.inputs.get("enableServerSideApply") in (True, "true")


# --- CodeBuild in the VPC ------------------------------------------------------------------------


def test_the_runner_role_has_the_vpc_permissions_codebuild_lists() -> None:
    """CodeBuild user guide, "Allow CodeBuild to access AWS services required to create a VPC
    network interface" (auth-and-access-control-iam-identity-based-access-control.html#customer-managed-policies-example-create-vpc-network-interface):
    ec2:CreateNetworkInterface, DescribeDhcpOptions, DescribeNetworkInterfaces,
    DeleteNetworkInterface, DescribeSubnets, DescribeSecurityGroups, DescribeVpcs on ``*``, and
    ec2:CreateNetworkInterfacePermission on ``network-interface/*`` with ``ec2:AuthorizedService``
    ``codebuild.amazonaws.com`` and ``ec2:Subnet`` naming the project's subnets."""
    subnets = [
        "arn:aws:ec2:us-west-2:111122223333:subnet/subnet-a",
        "arn:aws:ec2:us-west-2:111122223333:subnet/subnet-b",
    ]
    doc = runner_docs.service_role_policy(
        "111122223333",
        "us-west-2",
        "platform-x-runner",
        subnets,
        "arn:aws:codeconnections:us-west-2:111122223333:connection/x",
    )
    by_sid = {st["Sid"]: st for st in doc["Statement"]}
    vpc = by_sid["VpcNetworkInterfaces"]
    assert set(_actions(vpc)) == {
        "ec2:CreateNetworkInterface",
        "ec2:DescribeDhcpOptions",
        "ec2:DescribeNetworkInterfaces",
        "ec2:DeleteNetworkInterface",
        "ec2:DescribeSubnets",
        "ec2:DescribeSecurityGroups",
        "ec2:DescribeVpcs",
    }
    assert vpc["Resource"] == "*"
    permission = by_sid["NetworkInterfacesInTheHubSubnetsOnly"]
    assert _actions(permission) == ["ec2:CreateNetworkInterfacePermission"]
    assert permission["Resource"] == "arn:aws:ec2:us-west-2:111122223333:network-interface/*"
    assert permission["Condition"] == {
        "StringEquals": {"ec2:AuthorizedService": "codebuild.amazonaws.com"},
        "ArnEquals": {"ec2:Subnet": sorted(subnets)},
    }
    # Nothing else in the VPC statements, and no EC2 action anywhere else.
    ec2_elsewhere = [
        a
        for sid, st in by_sid.items()
        if sid not in {"VpcNetworkInterfaces", "NetworkInterfacesInTheHubSubnetsOnly"}
        for a in _actions(st)
        if a.startswith("ec2:")
    ]
    assert ec2_elsewhere == []
