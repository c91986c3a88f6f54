"""The CI runners that reach a hub's Kubernetes API: CodeBuild-hosted GitHub Actions runners in the
hub's VPC (issue 15). Pure functions: labels, webhook filters, IAM documents.

How it works (AWS CodeBuild, "Self-hosted GitHub Actions runners in AWS CodeBuild"):
https://docs.aws.amazon.com/codebuild/latest/userguide/action-runner-overview.html

* the project's webhook receives GitHub's ``workflow_job`` events, filtered to
  ``WORKFLOW_JOB_QUEUED`` (https://docs.aws.amazon.com/codebuild/latest/userguide/github-webhook.html);
* a job whose ``runs-on`` label is ``codebuild-<project>-${{ github.run_id }}-${{ github.run_attempt }}``
  is picked up by an ephemeral runner that CodeBuild starts for that one job, in the project's VPC
  configuration (https://docs.aws.amazon.com/codebuild/latest/userguide/action-runner.html), and gone
  when it ends;
* the runner's network interface carries the project's security group, which the hub's control
  plane admits on 443 (infra.components.runner).

Why CodeBuild rather than a runner controller (ARC) on a cluster, or a self-hosted VM: see
docs/github-actions.md, "Where the jobs run".
"""

from __future__ import annotations

from typing import Any

from infra import naming
from infra.documents.iam import PARTITION, POLICY_VERSION

LABEL_PREFIX = "codebuild-"
# GitHub's contexts in the label make it unique per run and attempt, so a runner started for one
# job never takes another's (the label CodeBuild's tutorial uses).
LABEL_SUFFIX = "-${{ github.run_id }}-${{ github.run_attempt }}"
QUEUED_EVENT = "WORKFLOW_JOB_QUEUED"

# The workflows whose jobs run here (their `name:`): the ones that talk to a hub's API.
RUNNER_WORKFLOWS: tuple[str, ...] = ("up", "deploy-prod")

# The build image and size of a runner: the standard Amazon Linux image has Python 3.11+, git,
# the AWS CLI and Docker's client; a medium instance (4 GiB) runs `pulumi up` of the program.
# https://docs.aws.amazon.com/codebuild/latest/userguide/ec2-compute-images.html
RUNNER_IMAGE = "aws/codebuild/amazonlinux-x86_64-standard:5.0"
RUNNER_COMPUTE = "BUILD_GENERAL1_MEDIUM"
# Minutes; the longest job is a first `pulumi up` (120 minutes in up.yml).
RUNNER_TIMEOUT_MINUTES = 150
HTTPS = 443


def runs_on_label(environment: str) -> str:
    """The ``runs-on`` label of a job that must run on ``environment``'s hub runner."""
    return f"{LABEL_PREFIX}{naming.runner_project_name(environment)}{LABEL_SUFFIX}"


def webhook_filter_groups() -> list[list[dict[str, str]]]:
    """Only queued workflow jobs of the hub workflows start a runner.

    The workflow-name filter narrows which jobs can start one; it is not a security boundary (a
    workflow's name is the workflow's to choose). The boundary is that a runner holds no AWS or
    Kubernetes identity of its own beyond the project's service role (logs and network
    interfaces): a job still needs a role whose trust names its workflow and environment.
    """
    names = "|".join(RUNNER_WORKFLOWS)
    return [
        [{"type": "EVENT", "pattern": QUEUED_EVENT}, {"type": "WORKFLOW_NAME", "pattern": f"^({names})$"}]
    ]


def service_role_trust(account_id: str, region: str, project_name: str) -> dict[str, Any]:
    """CodeBuild, for this account's project only (confused-deputy conditions).

    https://docs.aws.amazon.com/codebuild/latest/userguide/cross-service-confused-deputy-prevention.html
    """
    return {
        "Version": POLICY_VERSION,
        "Statement": [
            {
                "Effect": "Allow",
                "Principal": {"Service": "codebuild.amazonaws.com"},
                "Action": "sts:AssumeRole",
                "Condition": {
                    "StringEquals": {"aws:SourceAccount": account_id},
                    "ArnLike": {
                        "aws:SourceArn": f"arn:{PARTITION}:codebuild:{region}:{account_id}:project/{project_name}"
                    },
                },
            }
        ],
    }


def service_role_policy(
    account_id: str, region: str, project_name: str, subnet_arns: list[str], connection_arn: str
) -> dict[str, Any]:
    """What the project itself needs: its logs, its network interfaces in the VPC, its GitHub
    connection. Nothing else: a job's AWS access is the OIDC role its workflow assumes.

    VPC permissions: https://docs.aws.amazon.com/codebuild/latest/userguide/auth-and-access-control-iam-identity-based-access-control.html#customer-managed-policies-example-create-vpc-network-interface
    Connections: https://docs.aws.amazon.com/codebuild/latest/userguide/connections-github-app.html
    """
    log_group = f"arn:{PARTITION}:logs:{region}:{account_id}:log-group:/aws/codebuild/{project_name}"
    return {
        "Version": POLICY_VERSION,
        "Statement": [
            {
                "Sid": "Logs",
                "Effect": "Allow",
                "Action": ["logs:CreateLogGroup", "logs:CreateLogStream", "logs:PutLogEvents"],
                "Resource": [log_group, f"{log_group}:*"],
            },
            {
                # Describe* and the ENI calls have no resource-level permissions.
                "Sid": "VpcNetworkInterfaces",
                "Effect": "Allow",
                "Action": [
                    "ec2:CreateNetworkInterface",
                    "ec2:DeleteNetworkInterface",
                    "ec2:DescribeDhcpOptions",
                    "ec2:DescribeNetworkInterfaces",
                    "ec2:DescribeSecurityGroups",
                    "ec2:DescribeSubnets",
                    "ec2:DescribeVpcs",
                ],
                "Resource": "*",
            },
            {
                "Sid": "NetworkInterfacesInTheHubSubnetsOnly",
                "Effect": "Allow",
                "Action": ["ec2:CreateNetworkInterfacePermission"],
                "Resource": f"arn:{PARTITION}:ec2:{region}:{account_id}:network-interface/*",
                "Condition": {
                    "StringEquals": {"ec2:AuthorizedService": "codebuild.amazonaws.com"},
                    "ArnEquals": {"ec2:Subnet": sorted(subnet_arns)},
                },
            },
            {
                "Sid": "GitHubConnection",
                "Effect": "Allow",
                # CodeBuild's guide for GitHub App connections grants the project role exactly
                # GetConnectionToken and GetConnection on the connection ("Step 2: Grant CodeBuild
                # project IAM role access to use the connection",
                # https://docs.aws.amazon.com/codebuild/latest/userguide/connections-github-app.html);
                # UseConnection is kept for the source fetch through the connection.
                "Action": [
                    "codeconnections:UseConnection",
                    "codeconnections:GetConnectionToken",
                    "codeconnections:GetConnection",
                ],
                "Resource": connection_arn,
            },
        ],
    }


def subnet_arn(account_id: str, region: str, subnet_id: str) -> str:
    return f"arn:{PARTITION}:ec2:{region}:{account_id}:subnet/{subnet_id}"
