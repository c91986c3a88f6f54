"""The GitHub roles as the real program declares them (infra.program.run under mocks)."""

from __future__ import annotations

import functools
import json

import pytest

from infra import naming, offline
from infra.documents import iam
from infra.offline import Plan

ROLE = "aws:iam/role:Role"
OIDC = "aws:iam/openIdConnectProvider:OpenIdConnectProvider"


@functools.cache
def plan(stack: str) -> Plan:
    return offline.run(stack)


def github_trusting_roles(p: Plan) -> dict[str, dict[str, object]]:
    out = {}
    for role in p.of_type(ROLE):
        doc = json.loads(role.inputs["assumeRolePolicy"])
        if any(
            iam.GITHUB_OIDC_HOST in json.dumps(s.get("Principal", {}))
            or iam.GITHUB_OIDC_HOST in json.dumps(s)
            for s in doc["Statement"]
        ):
            out[role.inputs["name"]] = doc
    return out


def test_the_stacks_export_their_roles_and_prod_has_no_push_role() -> None:
    staging = plan("staging").outputs[naming.OUTPUT_GITHUB_ROLES]
    prod = plan("prod").outputs[naming.OUTPUT_GITHUB_ROLES]
    assert set(staging) == {"push", "preview", "up", "verify"}
    assert set(prod) == {"preview", "up", "deploy"}
    # The accounts of the loaded stack files (a fork sets its own), not the example's.
    staging_account, prod_account = plan("staging").config.account_id, plan("prod").config.account_id
    assert staging["push"] == f"arn:aws:iam::{staging_account}:role/platform-staging-github-push"
    assert prod["deploy"] == f"arn:aws:iam::{prod_account}:role/platform-prod-github-deploy"
    assert not any(name.endswith("-push") for name in github_trusting_roles(plan("prod")))


@pytest.mark.parametrize("stack", ["staging", "prod"])
def test_every_role_in_the_stack_that_trusts_github_trusts_exact_subjects_of_this_repository(
    stack: str,
) -> None:
    p = plan(stack)
    trusting = github_trusting_roles(p)
    # No other component declares a GitHub trust: exactly the roles of the output.
    assert sorted(trusting) == sorted(
        naming.role_name(p.config.environment, f"github-{purpose}")
        for purpose in p.outputs[naming.OUTPUT_GITHUB_ROLES]
    )
    for name, doc in trusting.items():
        assert iam.assert_exact_subjects(doc, iam.subject_prefix(p.config.github)), name


@pytest.mark.parametrize("stack", ["staging", "prod"])
def test_one_github_provider_per_account(stack: str) -> None:
    p = plan(stack)
    providers = [r for r in p.of_type(OIDC) if r.inputs["url"] == iam.GITHUB_OIDC_URL]
    assert len(providers) == 1
    # Through the account-wide provider (platform:accountRegion), which never follows the hub: after
    # the move-the-hub walk-through the hub is elsewhere and the provider must not move.
    assert p.region_of(providers[0]) == p.config.account_region


def test_the_push_role_may_use_the_registrys_primary_key_through_ecr_only() -> None:
    p = plan("staging")
    region = p.config.ecr.primary_region
    # The registry's key is the one its ECR alias names in that region.
    [alias] = [
        a
        for a in p.of_type("aws:kms/alias:Alias")
        if a.inputs["name"] == naming.ecr_kms_alias(p.config.environment) and p.region_of(a) == region
    ]
    keys = [k for k in p.of_type("aws:kms/key:Key") if k.outputs["keyId"] == alias.inputs["targetKeyId"]]
    assert len(keys) == 1
    [push_policy] = [
        r
        for r in p.of_type("aws:iam/rolePolicy:RolePolicy")
        if r.inputs.get("name", "").endswith("github-push-permissions")
    ]
    statements = {s["Sid"]: s for s in json.loads(push_policy.inputs["policy"])["Statement"]}
    assert statements["EcrKeyThroughEcrOnly"]["Resource"] == keys[0].outputs["arn"]
    assert statements["EcrKeyThroughEcrOnly"]["Condition"] == {
        "StringEquals": {"kms:ViaService": f"ecr.{region}.amazonaws.com"}
    }


@pytest.mark.parametrize(
    ("stack", "purpose", "group", "verbs"),
    [
        ("prod", "deploy", "platform:deployers", ["get", "list", "watch", "patch"]),
        ("staging", "verify", "platform:verifiers", ["get"]),
    ],
)
def test_the_hub_cluster_maps_the_role_to_exactly_its_application_verbs(
    stack: str, purpose: str, group: str, verbs: list[str]
) -> None:
    p = plan(stack)
    index = p.by_urn()
    hub = p.config.hub_region
    role_arn = p.outputs[naming.OUTPUT_GITHUB_ROLES][purpose]
    entries = [
        r for r in p.of_type("aws:eks/accessEntry:AccessEntry") if r.inputs["principalArn"] == role_arn
    ]
    assert len(entries) == 1, "one access entry, on the hub only"
    [entry] = entries
    assert entry.inputs["clusterName"] == naming.cluster_name(p.config.environment, hub)
    assert entry.inputs["type"] == "STANDARD" and entry.inputs["kubernetesGroups"] == [group]
    assert p.region_of(entry) == hub
    # Declared after the hub cluster exists (its name comes from the cluster's outputs).
    [cluster] = [r for r in p.of_type("eks:index:Cluster") if p.region_of(r) == hub]
    assert cluster.urn in entry.dependencies
    # No access policy: the Kubernetes group's RBAC is all the role gets.
    associations = p.of_type("aws:eks/accessPolicyAssociation:AccessPolicyAssociation")
    assert all(a.inputs["principalArn"] != role_arn for a in associations)

    bindings = [
        r
        for r in p.of_type("kubernetes:rbac.authorization.k8s.io/v1:RoleBinding")
        if any(s["name"] == group for s in r.inputs.get("subjects", []))
    ]
    assert len(bindings) == 1, "one binding of the group"
    [binding] = bindings
    [role] = [
        r
        for r in p.of_type("kubernetes:rbac.authorization.k8s.io/v1:Role")
        if r.inputs["metadata"] == binding.inputs["metadata"] | {"name": binding.inputs["roleRef"]["name"]}
    ]
    assert role.inputs["metadata"]["namespace"] == binding.inputs["metadata"]["namespace"] == "argocd"
    assert role.inputs["rules"] == [
        {"apiGroups": ["argoproj.io"], "resources": ["applications"], "verbs": verbs}
    ]
    assert binding.inputs["roleRef"]["kind"] == "Role"
    # On the hub's own Kubernetes provider, the one the hub's cluster component built.
    for obj in (role, binding):
        provider = index[obj.provider or ""]
        assert provider.type == "pulumi:providers:kubernetes"
        assert p.region_of(provider) == hub
        assert provider.parent == cluster.parent
