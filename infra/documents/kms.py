"""KMS key policies and the VPC flow-log delivery role, as pure functions.

Sources:

* Default key policy (the statement that lets the account's IAM policies grant access to the key;
  without it, IAM allows have no effect on the key):
  https://docs.aws.amazon.com/kms/latest/developerguide/key-policy-default.html
* Explicit deny wins over any allow, whether the allow comes from the key policy, an IAM policy
  or ``AdministratorAccess``: https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_evaluation-logic.html
* ``aws:PrincipalArn`` of an assumed-role session is the role's ARN, not the session's:
  https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_condition-keys.html#condition-keys-principalarn
* CloudWatch Logs encrypting a log group with a customer managed key (service principal
  ``logs.<region>.amazonaws.com``, scoped by ``kms:EncryptionContext:aws:logs:arn``):
  https://docs.aws.amazon.com/AmazonCloudWatch/latest/logs/encrypt-log-data-kms.html
* Flow logs to CloudWatch Logs (trust of ``vpc-flow-logs.amazonaws.com`` with the
  confused-deputy conditions, and the actions the role needs):
  https://docs.aws.amazon.com/vpc/latest/userguide/flow-logs-iam-role.html
"""

from __future__ import annotations

from typing import Any

IAM_VERSION = "2012-10-17"

# What nobody but the break-glass principal may do to a key whose loss loses data: a disabled key
# stops every decrypt at once; a key pending deletion is gone after its window; deleting imported
# material is the same loss (our keys have none: denied anyway). PutKeyPolicy is in the list
# because whoever may rewrite the policy may first remove this very statement.
BREAK_GLASS_KEY_ACTIONS: tuple[str, ...] = (
    "kms:DisableKey",
    "kms:ScheduleKeyDeletion",
    "kms:DeleteImportedKeyMaterial",
    "kms:PutKeyPolicy",
)


def account_root(account_id: str) -> str:
    return f"arn:aws:iam::{account_id}:root"


def enable_iam_policies_statement(account_id: str) -> dict[str, Any]:
    """The default key policy's one statement: the account, and so its IAM policies, may use
    and manage the key (EKS uses it through a grant the cluster's creator makes)."""
    return {
        "Sid": "EnableIamPolicies",
        "Effect": "Allow",
        "Principal": {"AWS": account_root(account_id)},
        "Action": "kms:*",
        "Resource": "*",
    }


def protected_key_policy(account_id: str, break_glass_role_arn: str) -> dict[str, Any]:
    """Key policy of a key whose loss loses data (the EKS Secrets key).

    The default statement, plus an explicit Deny of :data:`BREAK_GLASS_KEY_ACTIONS` to every
    principal but ``break_glass_role_arn``: an account admin, CI's ``up`` role (AdministratorAccess
    under a boundary) and the root user lose the power to disable the key, schedule its deletion
    or rewrite this policy. Using the key (EKS's grant: Encrypt/Decrypt/DescribeKey/CreateGrant
    for the cluster, made by the cluster's creator through IAM) is unchanged.

    Because the creator of a key may not be allowed PutKeyPolicy by it, KMS's lockout safety
    check would refuse CreateKey by anyone but the break-glass role (a region added through CI):
    the key is created with ``bypass_policy_lockout_safety_check``, which is safe here because the
    break-glass role keeps PutKeyPolicy.
    https://docs.aws.amazon.com/kms/latest/APIReference/API_CreateKey.html#KMS-CreateKey-request-BypassPolicyLockoutSafetyCheck
    """
    return {
        "Version": IAM_VERSION,
        "Statement": [
            enable_iam_policies_statement(account_id),
            {
                "Sid": "OnlyBreakGlassDisablesOrDeletes",
                "Effect": "Deny",
                "Principal": {"AWS": "*"},
                "Action": list(BREAK_GLASS_KEY_ACTIONS),
                "Resource": "*",
                "Condition": {"ArnNotEquals": {"aws:PrincipalArn": break_glass_role_arn}},
            },
        ],
    }


def log_group_arn(account_id: str, region: str, log_group: str) -> str:
    return f"arn:aws:logs:{region}:{account_id}:log-group:{log_group}"


def log_key_policy(account_id: str, region: str, log_group: str) -> dict[str, Any]:
    """Key policy of the key that encrypts one log group: the default statement, plus CloudWatch
    Logs of this region using it for that log group only."""
    return {
        "Version": IAM_VERSION,
        "Statement": [
            enable_iam_policies_statement(account_id),
            {
                "Sid": "CloudWatchLogsEncryptsTheFlowLogGroup",
                "Effect": "Allow",
                "Principal": {"Service": f"logs.{region}.amazonaws.com"},
                "Action": [
                    "kms:Encrypt*",
                    "kms:Decrypt*",
                    "kms:ReEncrypt*",
                    "kms:GenerateDataKey*",
                    "kms:Describe*",
                ],
                "Resource": "*",
                "Condition": {
                    "ArnEquals": {
                        "kms:EncryptionContext:aws:logs:arn": log_group_arn(account_id, region, log_group)
                    }
                },
            },
        ],
    }


def flow_logs_assume_role_policy(account_id: str, region: str) -> dict[str, Any]:
    """Only the VPC Flow Logs service, delivering for this account's flow logs in this region."""
    return {
        "Version": IAM_VERSION,
        "Statement": [
            {
                "Effect": "Allow",
                "Principal": {"Service": "vpc-flow-logs.amazonaws.com"},
                "Action": "sts:AssumeRole",
                "Condition": {
                    "StringEquals": {"aws:SourceAccount": account_id},
                    "ArnLike": {"aws:SourceArn": f"arn:aws:ec2:{region}:{account_id}:vpc-flow-log/*"},
                },
            }
        ],
    }


FLOW_LOG_GROUP_ACTIONS: tuple[str, ...] = (
    "logs:CreateLogStream",
    "logs:PutLogEvents",
    "logs:DescribeLogStreams",
)
FLOW_LOG_LIST_ACTIONS: tuple[str, ...] = ("logs:DescribeLogGroups",)


def flow_logs_delivery_policy(account_id: str, region: str, log_group: str) -> dict[str, Any]:
    """What the delivery role does: write streams and events into the one flow-log group.

    The AWS guide's role policy (flow-logs-iam-role.html, "IAM role for publishing flow logs to
    CloudWatch Logs") allows CreateLogGroup, CreateLogStream, PutLogEvents, DescribeLogGroups and
    DescribeLogStreams on ``*``. Here: no CreateLogGroup (the program creates the group, encrypted,
    before the flow log); the stream and event actions on the one group; DescribeLogGroups, a
    listing of group names, on ``*`` as the guide has it, because a list call is not scoped to the
    group it may be looking for.
    """
    arn = log_group_arn(account_id, region, log_group)
    return {
        "Version": IAM_VERSION,
        "Statement": [
            {
                "Sid": "WriteTheFlowLogGroup",
                "Effect": "Allow",
                "Action": list(FLOW_LOG_GROUP_ACTIONS),
                "Resource": [arn, f"{arn}:*"],
            },
            {
                "Sid": "ListLogGroups",
                "Effect": "Allow",
                "Action": list(FLOW_LOG_LIST_ACTIONS),
                "Resource": "*",
            },
        ],
    }
