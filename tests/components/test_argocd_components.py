"""ArgoCdHub, ClusterRegistration, ImageUpdater and ApplicationSet under the offline mocks, over
stand-in clusters (tests/components/argocd_fixtures.py): what each component registers, with which
provider, parent, dependencies, protection and inputs."""

from __future__ import annotations

import json
import re
from functools import cache
from typing import Any

import pytest

from infra import config as cfg
from infra import naming, offline, versions
from infra.documents import argocd_iam
from infra.manifests import argocd as m
from tests.argocd_support import crd_errors, selector_matches
from tests.components.argocd_fixtures import fake_ca, fake_endpoint, program

STACKS = ("staging", "prod")
RELEASE = "kubernetes:helm.sh/v3:Release"
SECRET = "kubernetes:core/v1:Secret"
NAMESPACE = "kubernetes:core/v1:Namespace"
ACCESS_ENTRY = "aws:eks/accessEntry:AccessEntry"
ACCESS_POLICY = "aws:eks/accessPolicyAssociation:AccessPolicyAssociation"
POD_IDENTITY = "aws:eks/podIdentityAssociation:PodIdentityAssociation"
OURS = ("platform:argocd:", "platform:image_updater:", "platform:applicationset:")


@cache
def plan(stack: str) -> offline.Plan:
    return offline.run(stack, program=program)


def ours(p: offline.Plan) -> list[offline.Resource]:
    """Everything our components registered (descendants of our component resources)."""
    index = p.by_urn()

    def mine(r: offline.Resource) -> bool:
        current: offline.Resource | None = r
        while current is not None:
            if current.type.startswith(OURS):
                return True
            current = index.get(current.parent) if current.parent else None
        return False

    return [r for r in p.resources if mine(r)]


def k8s_provider_region(p: offline.Plan, r: offline.Resource) -> str | None:
    assert r.provider, f"{r.type} {r.name} has no provider"
    return p.region_of(p.by_urn()[r.provider])


def hub_role_arn(p: offline.Plan) -> str:
    return str(p.one("aws:iam/role:Role", "argocd").outputs["arn"])


# --- Providers and structure ---------------------------------------------------------------------


@pytest.mark.parametrize("stack", STACKS)
def test_every_custom_resource_has_an_explicit_provider_and_a_component_parent(stack: str) -> None:
    p = plan(stack)
    index = p.by_urn()
    mine = ours(p)
    assert mine
    for r in mine:
        if r.custom:
            assert r.provider, f"{r.type} {r.name} has no provider"
        if r.type.startswith(OURS) and r.parent not in index:
            continue  # a top-level component: its parent is the stack
        assert r.parent and index[r.parent].type.startswith(OURS), f"{r.type} {r.name} parent {r.parent}"


@pytest.mark.parametrize("stack", STACKS)
def test_only_the_hub_runs_argocd_and_image_updater(stack: str) -> None:
    p = plan(stack)
    hub = p.config.hub_region
    releases = p.of_type(RELEASE)
    assert sorted(r.inputs["name"] for r in releases) == sorted(
        [naming.ARGOCD_RELEASE, naming.IMAGE_UPDATER_RELEASE]
    )
    for r in releases:
        assert p.by_urn()[r.provider or ""].name == f"k8s-{hub}"
        assert k8s_provider_region(p, r) == hub
    # Everything Kubernetes we declare lives on the hub (the spokes only get access entries).
    for r in ours(p):
        if r.type.startswith("kubernetes:"):
            assert k8s_provider_region(p, r) == hub, f"{r.type} {r.name}"


@pytest.mark.parametrize("stack", STACKS)
def test_argocd_release_installs_the_pinned_chart_with_the_pure_values(stack: str) -> None:
    p = plan(stack)
    release = p.one(RELEASE, "argocd")
    assert release.inputs["chart"] == versions.ARGO_CD_CHART
    assert release.inputs["version"] == p.config.argocd.chart_version
    assert release.inputs["repositoryOpts"] == {"repo": versions.ARGO_HELM_REPOSITORY}
    assert release.inputs["namespace"] == naming.ARGOCD_NAMESPACE
    assert release.inputs["values"] == m.argocd_values(p.config)
    namespace = p.one(NAMESPACE, "argocd")
    assert namespace.inputs["metadata"]["name"] == naming.ARGOCD_NAMESPACE
    assert namespace.urn in release.dependencies


@pytest.mark.parametrize("stack", STACKS)
def test_argocd_release_waits_for_hub_nodes_and_pod_identity_and_nothing_else(stack: str) -> None:
    p = plan(stack)
    index = p.by_urn()
    release = p.one(RELEASE, "argocd")
    deps = {(index[u].type, index[u].name) for u in release.dependencies}
    expected = {
        ("aws:eks/nodeGroup:NodeGroup", f"nodes-{p.config.hub_region}"),
        ("aws:eks/addon:Addon", f"eks-pod-identity-agent-{p.config.hub_region}"),
        (NAMESPACE, "argocd"),
        *((POD_IDENTITY, f"argocd-{sa}") for sa in naming.ARGOCD_CONTROLLER_SERVICE_ACCOUNTS),
    }
    assert deps == expected


@pytest.mark.parametrize("stack", STACKS)
def test_image_updater_release(stack: str) -> None:
    p = plan(stack)
    release = p.one(RELEASE, "image-updater")
    assert release.inputs["chart"] == versions.IMAGE_UPDATER_CHART
    assert release.inputs["version"] == p.config.image_updater.chart_version
    assert release.inputs["values"] == m.image_updater_values(p.config)
    index = p.by_urn()
    deps = {(index[u].type, index[u].name) for u in release.dependencies}
    assert (POD_IDENTITY, "image-updater") in deps
    assert ("aws:eks/nodeGroup:NodeGroup", f"nodes-{p.config.hub_region}") in deps
    assert ("aws:eks/addon:Addon", f"eks-pod-identity-agent-{p.config.hub_region}") in deps
    # Installed beside Argo CD, not after it: the hub's rebuild waits for one release, not two.
    assert (RELEASE, "argocd") not in deps


# --- Identity: Pod Identity and access entries ---------------------------------------------------


@pytest.mark.parametrize("stack", STACKS)
def test_controllers_get_the_hub_role_through_pod_identity(stack: str) -> None:
    p = plan(stack)
    role = p.one("aws:iam/role:Role", "argocd")
    trust = json.loads(role.inputs["assumeRolePolicy"])
    assert trust == argocd_iam.argocd_trust_policy(
        p.config.account_id, p.config.environment, p.config.hub_region
    )
    assert role.inputs["name"] == naming.role_name(p.config.environment, "argocd")
    # The role needs no AWS permission: it never assumes a role, and presigning
    # sts:GetCallerIdentity needs none. Its rights come from the access entries.
    inline = [r for r in p.of_type("aws:iam/rolePolicy:RolePolicy") if r.name.startswith("argocd")]
    attached = [
        r
        for r in p.of_type("aws:iam/rolePolicyAttachment:RolePolicyAttachment")
        if r.name.startswith("argocd")
    ]
    assert inline == [] and attached == []
    associations = [r for r in p.of_type(POD_IDENTITY) if r.name.startswith("argocd-")]
    assert sorted(a.inputs["serviceAccount"] for a in associations) == sorted(
        naming.ARGOCD_CONTROLLER_SERVICE_ACCOUNTS
    )
    for a in associations:
        assert a.inputs["namespace"] == naming.ARGOCD_NAMESPACE
        assert a.inputs["clusterName"] == naming.cluster_name(p.config.environment, p.config.hub_region)
        assert a.inputs["roleArn"] == hub_role_arn(p)
        assert p.region_of(a) == p.config.hub_region


@pytest.mark.parametrize("stack", STACKS)
def test_hub_role_is_cluster_admin_on_every_cluster_through_that_clusters_provider(stack: str) -> None:
    p = plan(stack)
    entries = {p.region_of(e): e for e in p.of_type(ACCESS_ENTRY)}
    policies = {p.region_of(a): a for a in p.of_type(ACCESS_POLICY)}
    assert set(entries) == set(policies) == set(p.config.region_names)
    index = p.by_urn()
    for region in p.config.region_names:
        entry, policy = entries[region], policies[region]
        assert index[entry.provider or ""].inputs["region"] == region
        assert index[policy.provider or ""].inputs["region"] == region
        assert entry.inputs["clusterName"] == naming.cluster_name(p.config.environment, region)
        assert entry.inputs["principalArn"] == hub_role_arn(p)
        assert entry.inputs["type"] == "STANDARD"
        assert "kubernetesGroups" not in entry.inputs
        assert policy.inputs["principalArn"] == hub_role_arn(p)
        assert policy.inputs["policyArn"] == (
            "arn:aws:eks::aws:cluster-access-policy/AmazonEKSClusterAdminPolicy"
        )
        assert policy.inputs["accessScope"] == {"type": "cluster"}
        assert entry.urn in policy.dependencies


@pytest.mark.parametrize("stack", STACKS)
def test_image_updater_role_reads_ecr_through_pod_identity(stack: str) -> None:
    p = plan(stack)
    c = p.config
    role = p.one("aws:iam/role:Role", "image-updater")
    assert json.loads(role.inputs["assumeRolePolicy"]) == argocd_iam.image_updater_trust_policy(
        c.account_id, c.environment, c.hub_region
    )
    policy = p.one("aws:iam/rolePolicy:RolePolicy", "image-updater-ecr-read")
    assert json.loads(policy.inputs["policy"]) == argocd_iam.image_updater_ecr_policy(
        c.account_id, c.region_names, c.ecr.prefix
    )
    association = p.one(POD_IDENTITY, "image-updater")
    assert association.inputs["serviceAccount"] == naming.IMAGE_UPDATER_SERVICE_ACCOUNT
    assert association.inputs["namespace"] == naming.ARGOCD_NAMESPACE
    assert association.inputs["roleArn"] == role.outputs["arn"]


@pytest.mark.parametrize("stack", STACKS)
def test_taggable_aws_resources_carry_the_base_tags(stack: str) -> None:
    p = plan(stack)
    expected = naming.base_tags(p.config.environment, p.config.tags)
    taggable = {"aws:iam/role:Role", ACCESS_ENTRY, POD_IDENTITY}
    found = [r for r in ours(p) if r.type in taggable]
    assert len(found) == 2 + len(p.config.region_names) + len(naming.ARGOCD_CONTROLLER_SERVICE_ACCOUNTS) + 1
    for r in found:
        assert r.inputs.get("tags") == expected, f"{r.type} {r.name}"


# --- Cluster registration ------------------------------------------------------------------------


@pytest.mark.parametrize("stack", STACKS)
def test_one_cluster_secret_per_region_matching_the_applicationset_selector(stack: str) -> None:
    p = plan(stack)
    secrets = p.of_type(SECRET)
    assert len(secrets) == len(p.config.region_names)
    appset = p.one("kubernetes:argoproj.io/v1alpha1:ApplicationSet", "application-set")
    (generator,) = appset.inputs["spec"]["generators"]
    selector = generator["clusters"]["selector"]
    regions = set()
    for s in secrets:
        labels = s.inputs["metadata"]["labels"]
        assert labels[m.SECRET_TYPE_LABEL] == "cluster"
        assert selector_matches(selector, labels), labels
        regions.add(labels[naming.LABEL_REGION])
    assert regions == set(p.config.region_names)


@pytest.mark.parametrize("stack", STACKS)
def test_cluster_secret_data_is_marked_secret_and_points_at_the_cluster(stack: str) -> None:
    p = plan(stack)
    for s in p.of_type(SECRET):
        assert s.inputs["stringData"] == offline.SECRET_MARK
        region = s.inputs["metadata"]["labels"][naming.LABEL_REGION]
        # The mocks echo inputs into state unredacted: what the provider would receive.
        data = s.outputs["stringData"]
        assert data["server"] == fake_endpoint(region)
        conf = json.loads(data["config"])
        # No roleARN: argocd-k8s-auth signs with the Pod Identity session of the hub role itself.
        assert conf["awsAuthConfig"] == {"clusterName": naming.cluster_name(p.config.environment, region)}
        assert conf["tlsClientConfig"]["caData"] == fake_ca(region)
        index = p.by_urn()
        deps = {(index[u].type, p.region_of(index[u])) for u in s.dependencies}
        assert (ACCESS_POLICY, region) in deps


# --- Custom resources ----------------------------------------------------------------------------


def custom_resources(p: offline.Plan) -> list[offline.Resource]:
    return [r for r in ours(p) if "argoproj.io/" in r.type]


def as_manifest(r: offline.Resource) -> dict[str, Any]:
    keys = ("apiVersion", "kind", "metadata", "spec")
    return {k: r.inputs[k] for k in keys if k in r.inputs}


@pytest.mark.shared
@pytest.mark.parametrize("stack", STACKS)
def test_recorded_custom_resources_validate_against_their_crds(stack: str) -> None:
    p = plan(stack)
    kinds = sorted(r.inputs["kind"] for r in custom_resources(p))
    assert kinds == ["AppProject", "AppProject", "ApplicationSet", "ImageUpdater"]
    for r in custom_resources(p):
        assert crd_errors(as_manifest(r)) == [], r.type


@pytest.mark.parametrize("stack", STACKS)
def test_custom_resources_depend_on_the_release_installing_their_crd(stack: str) -> None:
    p = plan(stack)
    argocd, updater = p.one(RELEASE, "argocd"), p.one(RELEASE, "image-updater")
    for r in custom_resources(p):
        owner = updater if r.inputs["apiVersion"] == m.IMAGE_UPDATER_API else argocd
        assert owner.urn in r.dependencies, r.type


@pytest.mark.parametrize("stack", STACKS)
def test_recorded_manifests_are_the_pure_ones(stack: str) -> None:
    p = plan(stack)
    appset = p.one("kubernetes:argoproj.io/v1alpha1:ApplicationSet", "application-set")
    assert as_manifest(appset) == m.application_set(p.config)
    updater = p.one("kubernetes:argocd-image-updater.argoproj.io/v1alpha1:ImageUpdater", "image-updater")
    assert as_manifest(updater) == m.image_updater(p.config)
    project = p.one("kubernetes:argoproj.io/v1alpha1:AppProject", "app-project")
    assert as_manifest(project) == m.app_project(p.config, [fake_endpoint(r) for r in p.config.region_names])


def test_prod_keeps_the_argocd_namespace_on_delete_and_staging_does_not() -> None:
    assert plan("prod").one(NAMESPACE, "argocd").retain_on_delete is True
    assert plan("staging").one(NAMESPACE, "argocd").retain_on_delete is False


def test_a_missing_cluster_is_refused_before_anything_is_declared() -> None:
    from infra.components.argocd import ArgoCdHub, ArgoCdHubArgs

    def partial(config: Any) -> dict[str, Any]:
        ArgoCdHub("argocd", ArgoCdHubArgs(config=config, clusters={}))
        return {}

    missing = ", ".join(sorted(cfg.load_stack_file("staging").region_names))
    with pytest.raises(Exception, match=f"missing: {re.escape(missing)}"):
        offline.run("staging", program=partial)
