"""The hub's CI runners: a CodeBuild project whose ephemeral GitHub Actions runners start in the
hub's VPC for the jobs that talk to the hub's Kubernetes API (``up.yml``, ``deploy-prod.yml``),
and the one rule that admits them to the hub's control plane (issue 15).

Decisions, labels and IAM documents: :mod:`infra.documents.runner`; the comparison with a runner
controller on a cluster: docs/github-actions.md, "Where the jobs run".

Pieces, all in the hub region:

* a CodeConnections connection to GitHub (``PENDING`` until a person authorizes the AWS Connector
  GitHub App once, in the console: the one hand step; the API cannot complete the handshake)
  https://docs.aws.amazon.com/dtconsole/latest/userguide/connections-update.html
* the runners' security group: no ingress, egress HTTPS only (GitHub, Pulumi Cloud, AWS APIs,
  PyPI, the hub API);
* the project's service role: logs, network interfaces in the hub's private subnets, the
  connection; no other AWS permission (a job assumes its own role through OIDC);
* the project (VPC config: the hub's private subnets, the runners' security group) and its
  webhook (``WORKFLOW_JOB_QUEUED`` of the hub workflows);
* the ingress rule on the hub control plane's additional security group: TCP 443 from the
  runners' security group, nothing else.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

from infra import naming
from infra.components.cluster import RegionalCluster
from infra.config import StackConfig
from infra.documents import runner as docs

TYPE = "platform:ci:HubRunner"


@dataclass(frozen=True)
class HubRunnerArgs:
    config: StackConfig
    hub: RegionalCluster
    # The account's provider (infra.providers.account_provider) for the IAM objects with fixed
    # names: it never follows the hub, so a hub move updates them in place. None: the hub's.
    iam_provider: aws.Provider | None = None


class HubRunner(pulumi.ComponentResource):
    """The CodeBuild-hosted runners of one stack, in its hub's VPC."""

    connection: aws.codeconnections.Connection
    security_group: aws.ec2.SecurityGroup
    service_role: aws.iam.Role
    project: aws.codebuild.Project
    webhook: aws.codebuild.Webhook
    control_plane_ingress: aws.vpc.SecurityGroupIngressRule

    def __init__(self, name: str, args: HubRunnerArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__(TYPE, name, None, opts)
        config, hub = args.config, args.hub
        region = config.hub_region
        project_name = naming.runner_project_name(config.environment)
        tags = naming.base_tags(config.environment, config.tags)
        child = pulumi.ResourceOptions(parent=self, provider=hub.aws_provider)
        on_account = pulumi.ResourceOptions(parent=self, provider=args.iam_provider or hub.aws_provider)

        self.connection = aws.codeconnections.Connection(
            f"{name}-github",
            name=project_name,
            provider_type="GitHub",
            tags=tags,
            opts=child,
        )
        self.label = docs.runs_on_label(config.environment)
        # The project's role and its policy come with the connection, on day 0 too: CreateProject
        # checks the connection with this role at once, and a role policy attached in the same
        # update may not have propagated yet (aws/aws-cdk#38504); by the second `up` it has.
        self.service_role = aws.iam.Role(
            f"{name}-service",
            name=naming.role_name(config.environment, "ci-runner"),
            description=f"Service role of the CodeBuild project {project_name} (logs, VPC, GitHub connection)",
            assume_role_policy=json.dumps(docs.service_role_trust(config.account_id, region, project_name)),
            tags=tags,
            opts=on_account,
        )
        policy = pulumi.Output.all(hub.network.private_subnet_ids, self.connection.arn).apply(
            lambda v: json.dumps(
                docs.service_role_policy(
                    config.account_id,
                    region,
                    project_name,
                    [docs.subnet_arn(config.account_id, region, s) for s in v[0]],
                    v[1],
                )
            )
        )
        role_policy = aws.iam.RolePolicy(
            f"{name}-service",
            name=f"{project_name}-service",
            role=self.service_role.id,
            policy=policy,
            opts=on_account,
        )

        if not config.github.runner_connection_authorized:
            # Day 0: no project or webhook until a person authorizes the connection (see
            # infra.config, github.runnerConnectionAuthorized): CreateProject checks the
            # connection with the role and CreateWebhook creates GitHub's webhook through it
            # (aws/aws-cdk#38504, hashicorp/terraform-provider-aws#40656), which a PENDING
            # connection, not yet installed in GitHub, cannot serve.
            self.register_outputs(
                {
                    "connectionArn": self.connection.arn,
                    "runsOn": self.label,
                    "serviceRole": self.service_role.arn,
                }
            )
            return
        self.security_group = aws.ec2.SecurityGroup(
            f"{name}-runners",
            vpc_id=hub.network.vpc_id,
            description=f"GitHub Actions runners of {project_name}: HTTPS out, nothing in",
            tags={**tags, "Name": project_name},
            opts=child,
        )
        aws.vpc.SecurityGroupEgressRule(
            f"{name}-runners-https-out",
            security_group_id=self.security_group.id,
            description="HTTPS: GitHub, Pulumi Cloud, AWS APIs, PyPI, the hub's API",
            ip_protocol="tcp",
            from_port=docs.HTTPS,
            to_port=docs.HTTPS,
            cidr_ipv4="0.0.0.0/0",
            tags=tags,
            opts=child,
        )
        # The control plane admits the runners, and only them, on 443.
        self.control_plane_ingress = aws.vpc.SecurityGroupIngressRule(
            f"{name}-control-plane-https",
            security_group_id=hub.control_plane_security_group.id,
            description=f"{project_name} runners to the Kubernetes API",
            ip_protocol="tcp",
            from_port=docs.HTTPS,
            to_port=docs.HTTPS,
            referenced_security_group_id=self.security_group.id,
            tags=tags,
            opts=child,
        )

        gh = config.github
        self.project = aws.codebuild.Project(
            f"{name}-project",
            name=project_name,
            description=f"Ephemeral GitHub Actions runners for {gh.slug} in the {region} hub VPC",
            service_role=self.service_role.arn,
            source=aws.codebuild.ProjectSourceArgs(
                type="GITHUB",
                location=f"https://github.com/{gh.slug}.git",
                auth=aws.codebuild.ProjectSourceAuthArgs(
                    type="CODECONNECTIONS", resource=self.connection.arn
                ),
            ),
            artifacts=aws.codebuild.ProjectArtifactsArgs(type="NO_ARTIFACTS"),
            environment=aws.codebuild.ProjectEnvironmentArgs(
                type="LINUX_CONTAINER",
                image=docs.RUNNER_IMAGE,
                compute_type=docs.RUNNER_COMPUTE,
                image_pull_credentials_type="CODEBUILD",
                privileged_mode=False,
            ),
            vpc_config=aws.codebuild.ProjectVpcConfigArgs(
                vpc_id=hub.network.vpc_id,
                subnets=hub.network.private_subnet_ids,
                security_group_ids=[self.security_group.id],
            ),
            build_timeout=docs.RUNNER_TIMEOUT_MINUTES,
            logs_config=aws.codebuild.ProjectLogsConfigArgs(
                cloudwatch_logs=aws.codebuild.ProjectLogsConfigCloudwatchLogsArgs(status="ENABLED")
            ),
            tags=tags,
            # The role's permissions (VPC interfaces, the connection) are checked when the project
            # is created.
            opts=pulumi.ResourceOptions.merge(child, pulumi.ResourceOptions(depends_on=[role_policy])),
        )
        self.webhook = aws.codebuild.Webhook(
            f"{name}-webhook",
            project_name=self.project.name,
            build_type="BUILD",
            filter_groups=[
                aws.codebuild.WebhookFilterGroupArgs(
                    filters=[
                        aws.codebuild.WebhookFilterGroupFilterArgs(type=f["type"], pattern=f["pattern"])
                        for f in group
                    ]
                )
                for group in docs.webhook_filter_groups()
            ],
            opts=child,
        )
        self.register_outputs(
            {
                "project": self.project.name,
                "runsOn": self.label,
                "securityGroupId": self.security_group.id,
                "connectionArn": self.connection.arn,
            }
        )
