"""The hub's CI runners and the control plane's security group, as the real program declares them
(infra.components.runner, infra.components.cluster). Expectations come from the loaded config:
the hub region, its network, the workflows' labels."""

from __future__ import annotations

import functools
import json

import pytest

from infra import naming, offline
from infra.documents import runner as docs
from infra.offline import Plan, Resource

SG = "aws:ec2/securityGroup:SecurityGroup"
INGRESS = "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule"
EGRESS = "aws:vpc/securityGroupEgressRule:SecurityGroupEgressRule"
OLD_RULE = "aws:ec2/securityGroupRule:SecurityGroupRule"
PROJECT = "aws:codebuild/project:Project"
WEBHOOK = "aws:codebuild/webhook:Webhook"
CONNECTION = "aws:codeconnections/connection:Connection"
SUBNET = "aws:ec2/subnet:Subnet"
CLUSTER = "eks:index:Cluster"
ROLE = "aws:iam/role:Role"
ROLE_POLICY = "aws:iam/rolePolicy:RolePolicy"
STACKS = ("staging", "prod")


@functools.cache
def plan(stack: str) -> Plan:
    return offline.run(stack)


def depends(resource: Resource, prop: str) -> set[str]:
    return set(resource.property_dependencies.get(prop, []))


def control_plane_groups(p: Plan) -> dict[str, str]:
    """{region: URN of the security group each cluster's control plane carries}."""
    out = {}
    for cluster in p.of_type(CLUSTER):
        # A resource passed to pulumi-eks: recorded as its URN (infra.offline).
        urn = cluster.inputs["clusterSecurityGroup"]
        assert p.by_urn()[urn].type == SG
        out[str(p.region_of(cluster))] = urn
    return out


def runner_group(p: Plan) -> Resource:
    [project] = p.of_type(PROJECT)
    [urn] = depends(project, "vpcConfig") & {r.urn for r in p.of_type(SG)}
    return p.by_urn()[urn]


@pytest.mark.parametrize("stack", STACKS)
def test_one_runner_project_in_the_hub_region_inside_the_hubs_private_subnets(stack: str) -> None:
    p = plan(stack)
    cfg = p.config
    [project] = p.of_type(PROJECT)
    assert project.inputs["name"] == naming.runner_project_name(cfg.environment)
    assert p.region_of(project) == cfg.hub_region
    private = {
        r.urn for r in p.of_type(SUBNET) if r.name.startswith("private-") and p.region_of(r) == cfg.hub_region
    }
    assert len(private) == len(cfg.region(cfg.hub_region).availability_zones)
    assert private <= depends(project, "vpcConfig")
    others = {r.urn for r in p.of_type(SUBNET)} - private
    assert not others & depends(project, "vpcConfig"), "a runner outside the hub's private subnets"
    vpc = project.inputs["vpcConfig"]
    assert len(vpc["subnets"]) == len(private) and len(vpc["securityGroupIds"]) == 1
    assert project.inputs["source"]["auth"]["type"] == "CODECONNECTIONS"
    assert project.inputs["environment"]["privilegedMode"] is False
    [connection] = p.of_type(CONNECTION)
    assert connection.urn in depends(project, "source")


@pytest.mark.parametrize("stack", STACKS)
def test_the_webhook_starts_runners_for_queued_jobs_of_the_hub_workflows_only(stack: str) -> None:
    p = plan(stack)
    [webhook] = p.of_type(WEBHOOK)
    [project] = p.of_type(PROJECT)
    assert project.urn in depends(webhook, "projectName")
    groups = [
        [{"type": f["type"], "pattern": f["pattern"]} for f in g["filters"]]
        for g in webhook.inputs["filterGroups"]
    ]
    assert groups == docs.webhook_filter_groups()
    assert webhook.inputs["buildType"] == "BUILD"


@pytest.mark.parametrize("stack", STACKS)
def test_the_control_plane_admits_exactly_the_runners_on_443(stack: str) -> None:
    p = plan(stack)
    cfg = p.config
    groups = control_plane_groups(p)
    assert set(groups) == set(cfg.region_names)  # every cluster carries one, so a hub move finds it
    runners = runner_group(p)
    rules = [r for r in p.of_type(INGRESS) if depends(r, "securityGroupId") & set(groups.values())]
    [rule] = rules
    assert depends(rule, "securityGroupId") == {groups[cfg.hub_region]}
    assert depends(rule, "referencedSecurityGroupId") == {runners.urn}
    assert (rule.inputs["ipProtocol"], rule.inputs["fromPort"], rule.inputs["toPort"]) == ("tcp", 443, 443)
    assert not {"cidrIpv4", "cidrIpv6", "prefixListId"} & set(rule.inputs)
    # No other way in: no inline rules, no legacy rule resources on these groups.
    for urn in groups.values():
        group = p.by_urn()[urn]
        assert not group.inputs.get("ingress")
        assert not [r for r in p.of_type(OLD_RULE) if urn in depends(r, "securityGroupId")]


def test_nothing_public_reaches_prods_hub() -> None:
    p = plan("prod")
    cfg = p.config
    [hub] = [c for c in p.of_type(CLUSTER) if p.region_of(c) == cfg.hub_region]
    assert hub.inputs["endpointPublicAccess"] is False
    assert hub.inputs["endpointPrivateAccess"] is True


@pytest.mark.parametrize("stack", STACKS)
def test_the_runners_take_nothing_in_and_send_only_https_out(stack: str) -> None:
    p = plan(stack)
    runners = runner_group(p)
    assert not runners.inputs.get("ingress") and not runners.inputs.get("egress")
    assert not [r for r in p.of_type(INGRESS) if runners.urn in depends(r, "securityGroupId")]
    [egress] = [r for r in p.of_type(EGRESS) if runners.urn in depends(r, "securityGroupId")]
    assert (egress.inputs["ipProtocol"], egress.inputs["fromPort"], egress.inputs["toPort"]) == (
        "tcp",
        443,
        443,
    )


@pytest.mark.parametrize("stack", STACKS)
def test_the_project_role_holds_no_aws_access_beyond_logs_network_and_connection(stack: str) -> None:
    p = plan(stack)
    cfg = p.config
    [project] = p.of_type(PROJECT)
    [role] = [r for r in p.of_type(ROLE) if r.urn in depends(project, "serviceRole")]
    trust = json.loads(role.inputs["assumeRolePolicy"])
    [statement] = trust["Statement"]
    assert statement["Principal"] == {"Service": "codebuild.amazonaws.com"}
    assert statement["Condition"]["StringEquals"] == {"aws:SourceAccount": cfg.account_id}
    assert statement["Condition"]["ArnLike"]["aws:SourceArn"].endswith(f":project/{project.inputs['name']}")
    [policy] = [r for r in p.of_type(ROLE_POLICY) if role.urn in depends(r, "role")]
    doc = json.loads(policy.inputs["policy"])
    actions = {a for s in doc["Statement"] for a in s["Action"]}
    services = {a.split(":")[0] for a in actions}
    assert services == {"logs", "ec2", "codeconnections"}
    assert not any(a.endswith("*") for a in actions)
    assert "sts:AssumeRole" not in actions and "eks:DescribeCluster" not in actions


@pytest.mark.parametrize("stack", ["prod", "staging"])
def test_day_zero_declares_the_connection_and_the_role_until_it_is_authorized(stack: str) -> None:
    """CreateProject checks a CODECONNECTIONS source with the project role and CreateWebhook
    creates GitHub's webhook through the connection (aws/aws-cdk#38504,
    hashicorp/terraform-provider-aws#40656), which a PENDING connection cannot serve: with
    github.runnerConnectionAuthorized false the runner declares the connection and the project
    role with its policy (so the policy has propagated when the next `up` creates the project:
    the race of aws/aws-cdk#38504), no project, webhook or security group; with the default
    (true) the project and webhook on that connection, with the same role."""
    from tests.conftest import stack_config_map

    authorized = plan(stack)
    [conn] = authorized.of_type(CONNECTION)
    [project] = authorized.of_type(PROJECT)
    assert authorized.of_type(WEBHOOK)
    assert conn.urn in set(project.dependencies) | {
        u for deps in project.property_dependencies.values() for u in deps
    }

    flat = stack_config_map(stack)
    flat.setdefault("platform:github", {})["runnerConnectionAuthorized"] = False
    pending = offline.run(stack, flat)
    assert len(pending.of_type(CONNECTION)) == 1
    assert not pending.of_type(PROJECT) and not pending.of_type(WEBHOOK)
    [role] = [r for r in authorized.of_type(ROLE) if r.urn in depends(project, "serviceRole")]
    [day0_role] = [r for r in pending.of_type(ROLE) if r.urn == role.urn]
    assert day0_role.inputs["assumeRolePolicy"] == role.inputs["assumeRolePolicy"]
    [policy] = [r for r in pending.of_type(ROLE_POLICY) if role.urn in depends(r, "role")]
    assert pending.of_type(CONNECTION)[0].urn in depends(policy, "policy")
    runner_groups = [r for r in pending.of_type(SG) if "runner" in r.name]
    assert not runner_groups, [r.name for r in runner_groups]
