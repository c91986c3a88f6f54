"""Contracts of the traffic add-ons (issue 18, cluster side): what the AWS Load Balancer
Controller v3.5.0 and ExternalDNS v0.21.0 do, transcribed in tests/contracts/upstream_traffic.py,
against what the program declares. Derived from the stack files that switch them on."""

from __future__ import annotations

from typing import Any

import pytest

from infra import addons, naming
from infra import config as cfg
from infra.components import network
from infra.config import StackConfig
from infra.documents import addons_iam
from tests.conftest import stack_names
from tests.contracts import upstream_traffic as up

STACKS = stack_names()
LBC = addons.LOAD_BALANCER_CONTROLLER
DNS = addons.EXTERNAL_DNS


def load(stack: str) -> StackConfig:
    return cfg.load_stack_file(stack)


def _actions(statement: dict[str, Any]) -> list[str]:
    action = statement["Action"]
    return sorted([action] if isinstance(action, str) else action)


def _resources(statement: dict[str, Any]) -> list[str]:
    resource = statement["Resource"]
    return sorted([resource] if isinstance(resource, str) else resource)


def _stacks_running(addon: str) -> list[str]:
    return [s for s in STACKS if load(s).addon_regions(addon)]


# --- AWS Load Balancer Controller: IAM -----------------------------------------------------------


@pytest.mark.parametrize("stack", _stacks_running(LBC))
def test_lb_controller_policy_is_the_upstream_policy_statement_by_statement(stack: str) -> None:
    """kubernetes-sigs/aws-load-balancer-controller v3.5.0 docs/install/iam_policy.json: same
    statements in the same order, same effect, same actions, same conditions (the
    ``elbv2.k8s.aws/cluster`` tag conditions are what limit writes to the controller's own load
    balancers, target groups and security groups); resources the same, except that the upstream's
    ``*:*`` (any region, any account) names the cluster's region and the stack's account."""
    config = load(stack)
    upstream = up.LBC_IAM_POLICY["Statement"]
    for region in config.addon_regions(LBC):
        ours = addons_iam.load_balancer_controller_policy(config.account_id, region)["Statement"]
        assert len(ours) == len(upstream), region
        for mine, theirs in zip(ours, upstream, strict=True):
            assert mine["Effect"] == theirs["Effect"] == "Allow"
            assert _actions(mine) == _actions(theirs), mine["Sid"]
            assert mine.get("Condition") == theirs.get("Condition"), mine["Sid"]
            expected = [r.replace(":*:*:", f":{region}:{config.account_id}:", 1) for r in _resources(theirs)]
            assert _resources(mine) == sorted(expected), mine["Sid"]
        # The role's policy is this document (the catalog's entry).
        policy = addons.CATALOG[LBC].policy
        assert policy is not None
        assert policy(config, region)["Statement"] == ours


def test_the_lb_controller_deletes_only_what_carries_a_cluster_tag() -> None:
    """Upstream's least privilege, kept (v3.5.0 iam_policy.json): load balancers, target groups
    and security groups are deleted only when they carry ``elbv2.k8s.aws/cluster`` (the tag the
    controller puts on what it creates), and created only with that tag in the request."""
    ours = addons_iam.load_balancer_controller_policy("111122223333", "us-west-2")["Statement"]
    resource_tagged = {"Null": {"aws:ResourceTag/elbv2.k8s.aws/cluster": "false"}}
    request_tagged = {"Null": {"aws:RequestTag/elbv2.k8s.aws/cluster": "false"}}
    for action in (
        "ec2:DeleteSecurityGroup",
        "elasticloadbalancing:DeleteLoadBalancer",
        "elasticloadbalancing:DeleteTargetGroup",
    ):
        granting = [s for s in ours if action in _actions(s)]
        assert granting and all(s.get("Condition") == resource_tagged for s in granting), action
    for action in ("elasticloadbalancing:CreateLoadBalancer", "elasticloadbalancing:CreateTargetGroup"):
        granting = [s for s in ours if action in _actions(s)]
        assert granting and all(s.get("Condition") == request_tagged for s in granting), action


# --- AWS Load Balancer Controller: subnet discovery ---------------------------------------------


@pytest.mark.parametrize("stack", _stacks_running(LBC))
def test_lb_controller_discovers_the_public_subnets_for_internet_facing_albs(stack: str) -> None:
    """pkg/networking/subnet_resolver.go (v3.5.0) ``ResolveViaDiscovery`` with the cluster tag
    check (feature gate ``SubnetsClusterTagCheck``, default on): an internet-facing ALB goes to the
    subnets tagged ``kubernetes.io/role/elb`` ("" or "1") that carry this cluster's
    ``kubernetes.io/cluster/<name>`` tag or no cluster tag; at least two zones for an ALB. The
    tags are network.py's ``subnet_role_tags``, which the VPC component puts on each subnet."""
    config = load(stack)
    for region in config.addon_regions(LBC):
        cluster = naming.cluster_name(config.environment, region)
        public = network.subnet_role_tags(cluster, public=True)
        private = network.subnet_role_tags(cluster, public=False)
        zones = config.region(region).availability_zones
        assert up.lbc_discovers_subnet(public, cluster, "internet-facing")
        assert not up.lbc_discovers_subnet(private, cluster, "internet-facing")
        assert up.lbc_discovers_subnet(private, cluster, "internal")
        assert not up.lbc_discovers_subnet(public, cluster, "internal")
        assert len(set(zones)) >= up.LBC_ALB_MIN_SUBNETS, region
        # Another cluster's controller never takes these subnets (each region has its own VPC,
        # and the cluster tag would exclude them anyway).
        other = naming.cluster_name(config.environment, f"{region}-other")
        assert not up.lbc_discovers_subnet(public, other, "internet-facing")


# --- AWS Load Balancer Controller: the Service webhook ------------------------------------------


def test_the_service_webhook_the_platform_turns_off_only_touches_load_balancer_services() -> None:
    """webhooks/core/service_mutator.go (v3.5.0) ``MutateCreate`` changes nothing on a Service
    that is not ``type: LoadBalancer``; with the webhook off (``enableServiceMutatorWebhook:
    false``), a ClusterIP Service is created exactly as without it, and no Service creation waits
    for the controller. (The shop chart renders no LoadBalancer Service:
    tests/unit/test_addon_traffic.py.)"""
    cluster_ip = {"metadata": {"name": "web"}, "spec": {"type": "ClusterIP", "ports": [{"port": 80}]}}
    assert up.lbc_service_mutator_create(cluster_ip, "service.k8s.aws/nlb") == cluster_ip
    no_type = {"metadata": {"name": "web"}, "spec": {"ports": [{"port": 80}]}}
    assert up.lbc_service_mutator_create(no_type, "service.k8s.aws/nlb") == no_type
    lb = {"metadata": {"name": "x"}, "spec": {"type": "LoadBalancer"}}
    assert up.lbc_service_mutator_create(lb, "service.k8s.aws/nlb")["spec"]["loadBalancerClass"] == (
        "service.k8s.aws/nlb"
    )
    for stack in _stacks_running(LBC):
        values = addons.load_balancer_controller_values(load(stack), None)
        assert values["enableServiceMutatorWebhook"] is False


# --- ExternalDNS ---------------------------------------------------------------------------------


@pytest.mark.parametrize("stack", _stacks_running(DNS))
def test_external_dns_may_change_only_the_stacks_zone(stack: str) -> None:
    """kubernetes-sigs/external-dns v0.21.0 docs/tutorials/aws.md "IAM Policy" (narrowed to the
    zone as its "Further improvements" advises): every call the AWS provider makes without a zone
    tag filter (provider/aws/aws.go), ``ChangeResourceRecordSets`` and ``ListResourceRecordSets``
    on platform:traffic's zone only, ``ListHostedZones`` (no resource ARN); nothing the tutorial
    does not list."""
    config = load(stack)
    assert config.traffic is not None
    zone = f"arn:aws:route53:::hostedzone/{config.traffic.hosted_zone_id}"
    tutorial = {a for s in up.EXTERNAL_DNS_TUTORIAL_POLICY["Statement"] for a in s["Action"]}
    for region in config.addon_regions(DNS):
        policy = addons.CATALOG[DNS].policy
        assert policy is not None
        statements = policy(config, region)["Statement"]
        granted = {a for s in statements for a in _actions(s)}
        assert granted == up.external_dns_route53_calls(zone_tag_filter=False)
        assert granted <= tutorial
        for s in statements:
            if "route53:ChangeResourceRecordSets" in _actions(s):
                assert _resources(s) == [zone]
            if _resources(s) == ["*"]:
                assert _actions(s) == ["route53:ListHostedZones"]


@pytest.mark.parametrize("stack", _stacks_running(DNS))
def test_external_dns_flags_are_flags_of_the_pinned_version(stack: str) -> None:
    """pkg/apis/externaldns/types.go (v0.21.0): every ``extraArgs`` flag the program passes exists,
    with an allowed value; no zone tag filter (``aws-zone-tags``), which would need
    ``ListTagsForResources``."""
    values = addons.external_dns_values(load(stack), None)
    for flag, value in values["extraArgs"].items():
        assert flag in up.EXTERNAL_DNS_FLAGS, flag
        allowed = up.EXTERNAL_DNS_FLAGS[flag]
        assert allowed is None or value in allowed, (flag, value)
    assert "aws-zone-tags" not in values["extraArgs"]
    assert values["policy"] in (up.EXTERNAL_DNS_FLAGS["policy"] or ())
    assert values["registry"] == "txt"


def test_with_sync_each_region_deletes_only_its_own_records() -> None:
    """plan/plan.go (v0.21.0) ``Calculate``: with an owner ID, deletes and updates are limited to
    records the TXT registry says this owner created; with an empty owner ID nothing is filtered,
    so ``sync`` would delete the other regions' records. Every cluster's owner ID is non-empty and
    different from every other cluster's, in every stack (including across environments)."""
    owners = []
    for stack in _stacks_running(DNS):
        config = load(stack)
        for region in config.addon_regions(DNS):
            owner = addons.external_dns_owner_id(config, region)
            assert owner == naming.cluster_name(config.environment, region)
            owners.append(owner)
    assert owners and all(owners)
    assert len(owners) == len(set(owners))
    records = [{"name": "www", "owner": o} for o in owners]
    for owner in owners:
        deletes, updates = up.external_dns_changes_applied(owner, records, records)
        assert [r["owner"] for r in deletes] == [owner] == [r["owner"] for r in updates]
    # The rule the non-empty owner protects against:
    assert len(up.external_dns_changes_applied("", records, [])[0]) == len(records)
