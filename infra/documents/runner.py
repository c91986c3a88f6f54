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

    This is all CodeBuild's webhook can filter a runner job by. Its WebhookFilter types (AWS
    CodeBuild API model, botocore 1.44.8 ``codebuild/2016-10-06``, ``WebhookFilter.type``;
    https://docs.aws.amazon.com/codebuild/latest/APIReference/API_WebhookFilter.html):
    ``WORKFLOW_NAME`` "Works with WORKFLOW_JOB_QUEUED events only"; ``HEAD_REF`` "Works with
    GitHub and GitHub Enterprise push, GitHub and GitHub Enterprise pull request, Bitbucket push,
    and Bitbucket pull request events", ``BASE_REF``, ``FILE_PATH`` and ``COMMIT_MESSAGE`` with
    push and pull request events only; ``ACTOR_ACCOUNT_ID`` matches the event's sender, a person.
    So no documented filter tells a queued job of a push to ``main`` from one of a pull request or
    another branch, and none is applied whose effect cannot be verified.

    The workflow-name filter narrows; it is no boundary (a workflow's name is the workflow's to
    choose, and anyone who can push a branch can add one named ``up``). What a job that reaches a
    runner anyway gets: :func:`service_role_policy` and docs/github-actions.md, "What a job on the
    hub runner gets".
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


# What the project role may do with the stack's GitHub connection. CodeBuild's guide for GitHub
# App connections grants the project role GetConnectionToken and GetConnection ("Step 2: Grant
# CodeBuild project IAM role access to use the connection",
# https://docs.aws.amazon.com/codebuild/latest/userguide/connections-github-app.html); CreateProject
# with CODECONNECTIONS auth also checks UseConnection on the role (aws/aws-cdk#38504, the
# maintainers' analysis: "role lacks UseConnection at create"; the CDK's Project grants it), so it
# stays. CodeBuild uses the connection with this role to register a runner for a queued job. A job
# on the runner runs with the role's credentials (CodeBuild gives the build container the
# project's service role), but GetConnectionToken and UseConnection are permissions only:
# CodeConnections has no API operation of either name (the codeconnections 2023-12-01 and
# codestar-connections 2019-12-01 models of botocore 1.44.8 list none), so no holder of the
# credentials can ask for the GitHub App token; GetConnection returns the connection's name, ARN,
# provider, owner account, status, host and endpoint URL, no credential.
# tests/contracts/test_ci_guards.py pins both against the installed botocore models.
CONNECTION_ACTIONS: tuple[str, ...] = (
    "codeconnections:UseConnection",
    "codeconnections:GetConnectionToken",
    "codeconnections:GetConnection",
)


def service_role_policy(
    account_id: str, region: str, project_name: str, subnet_arns: list[str], connection_arn: str
) -> dict[str, Any]:
    """What the project itself needs: its logs, its network interfaces in the VPC, its GitHub
    connection (:data:`CONNECTION_ACTIONS`). Nothing else: a job's AWS access is the OIDC role its
    workflow assumes. Every job on the runner, whichever workflow queued it, holds these too.

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
                "Action": list(CONNECTION_ACTIONS),
                "Resource": connection_arn,
            },
        ],
    }


def subnet_arn(account_id: str, region: str, subnet_id: str) -> str:
    return f"arn:{PARTITION}:ec2:{region}:{account_id}:subnet/{subnet_id}"
