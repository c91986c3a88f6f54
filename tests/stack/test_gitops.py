"""The GitOps layer across the whole program (issue 6): the real clusters, the real wiring.

Runs ``infra.program.run`` under the offline mocks for both stacks (and a prod variant with the hub
moved to its first spoke) and checks what the engine would receive."""

from __future__ import annotations

import json
import re
from functools import cache
from typing import Any

import pytest

from infra import addons, naming, offline
from infra import config as cfg
from infra.manifests import argocd as m
from tests.argocd_support import (
    crd_errors,
    jq_available,
    jq_delete,
    normalise_application,
    render_template,
    selector_matches,
)

STACKS = ("staging", "prod")
RELEASE = "kubernetes:helm.sh/v3:Release"
SECRET = "kubernetes:core/v1:Secret"
APPSET = "kubernetes:argoproj.io/v1alpha1:ApplicationSet"
IMAGE_UPDATER = "kubernetes:argocd-image-updater.argoproj.io/v1alpha1:ImageUpdater"


def app_sets(p: offline.Plan) -> list[offline.Resource]:
    """The application's ApplicationSet (the cluster add-ons' sets, labelled, are checked in
    tests/stack/test_addons_stack.py)."""
    return [
        r
        for r in p.of_type(APPSET)
        if addons.LABEL_ADDON not in ((r.inputs.get("metadata") or {}).get("labels") or {})
    ]


@cache
def plan(stack: str, hub: str | None = None) -> offline.Plan:
    raw = cfg.read_stack_file(cfg.stack_file(stack))
    if hub is not None:
        raw = {**raw, "platform:hubRegion": hub}
    return offline.run(stack, flat_config=raw)


def ours(p: offline.Plan, *types: str) -> list[offline.Resource]:
    return [r for r in p.resources if r.type in types]


def provider_of(p: offline.Plan, r: offline.Resource) -> offline.Resource:
    assert r.provider, f"{r.type} {r.name} has no provider"
    return p.by_urn()[r.provider]


def cluster_secrets(p: offline.Plan) -> list[offline.Resource]:
    return [
        r
        for r in p.of_type(SECRET)
        if (r.inputs.get("metadata") or {}).get("labels", {}).get(m.SECRET_TYPE_LABEL) == "cluster"
    ]


def generator_params(secret: offline.Resource) -> dict[str, Any]:
    data = secret.outputs["stringData"]  # the mocks echo inputs; inputs are marked secret
    meta = secret.inputs["metadata"]
    return {
        "name": data["name"],
        "server": data["server"],
        "metadata": {"labels": meta["labels"], "annotations": meta["annotations"]},
    }


def generated_applications(p: offline.Plan) -> dict[str, dict[str, Any]]:
    (appset,) = app_sets(p)
    spec = appset.inputs["spec"]
    (generator,) = spec["generators"]
    apps = {}
    for secret in cluster_secrets(p):
        labels = secret.inputs["metadata"]["labels"]
        if selector_matches(generator["clusters"]["selector"], labels):
            apps[labels[naming.LABEL_REGION]] = render_template(spec["template"], generator_params(secret))
    return apps


@pytest.mark.parametrize("stack", STACKS)
def test_only_the_hub_runs_argocd_and_image_updater(stack: str) -> None:
    p = plan(stack)
    hub = p.config.hub_region
    releases = p.of_type(RELEASE)
    assert sorted(r.inputs["name"] for r in releases) == sorted(
        [naming.ARGOCD_RELEASE, naming.IMAGE_UPDATER_RELEASE]
    )
    for r in releases + p.of_type(APPSET) + p.of_type(IMAGE_UPDATER):
        provider = provider_of(p, r)
        assert provider.type == "pulumi:providers:kubernetes"
        assert p.region_of(provider) == hub, f"{r.type} {r.name}"


@pytest.mark.parametrize("stack", STACKS)
def test_argocd_release_waits_only_for_hub_nodes_namespace_and_pod_identity(stack: str) -> None:
    p = plan(stack)
    index = p.by_urn()
    (release,) = [r for r in p.of_type(RELEASE) if r.inputs["name"] == naming.ARGOCD_RELEASE]
    deps = [index[u] for u in release.dependencies]
    kinds = sorted(d.type for d in deps)
    assert kinds == sorted(
        ["aws:eks/nodeGroup:NodeGroup", "kubernetes:core/v1:Namespace", "aws:eks/addon:Addon"]
        + ["aws:eks/podIdentityAssociation:PodIdentityAssociation"]
        * len(naming.ARGOCD_CONTROLLER_SERVICE_ACCOUNTS)
    )
    (nodes,) = [d for d in deps if d.type == "aws:eks/nodeGroup:NodeGroup"]
    assert p.region_of(nodes) == p.config.hub_region
    # The agent that serves Pod Identity credentials, on the hub.
    (agent,) = [d for d in deps if d.type == "aws:eks/addon:Addon"]
    assert agent.inputs["addonName"] == "eks-pod-identity-agent"
    assert p.region_of(agent) == p.config.hub_region


@pytest.mark.parametrize("stack", STACKS)
def test_every_release_with_a_pod_identity_waits_for_the_agent(stack: str) -> None:
    """EKS Pod Identity credentials come from an agent pod on each node
    (https://docs.aws.amazon.com/eks/latest/userguide/pod-id-agent-setup.html): every Helm
    release on a cluster where a Pod Identity association names its namespace waits for that
    cluster's eks-pod-identity-agent add-on."""
    p = plan(stack)
    index = p.by_urn()
    associations = p.of_type("aws:eks/podIdentityAssociation:PodIdentityAssociation")
    namespaces = {a.inputs["namespace"] for a in associations}
    releases = [r for r in p.of_type(RELEASE) if r.inputs.get("namespace") in namespaces]
    assert releases
    for release in releases:
        agents = [
            index[u]
            for u in release.dependencies
            if index[u].type == "aws:eks/addon:Addon"
            and index[u].inputs["addonName"] == "eks-pod-identity-agent"
        ]
        assert [p.region_of(a) for a in agents] == [p.config.hub_region], release.name


@pytest.mark.parametrize("stack", STACKS)
def test_one_cluster_secret_per_region_all_selected_by_the_applicationset(stack: str) -> None:
    p = plan(stack)
    secrets = cluster_secrets(p)
    assert len(secrets) == len(p.config.region_names)
    (appset,) = app_sets(p)
    selector = appset.inputs["spec"]["generators"][0]["clusters"]["selector"]
    regions = {s.inputs["metadata"]["labels"][naming.LABEL_REGION] for s in secrets}
    assert regions == set(p.config.region_names)
    for s in secrets:
        assert selector_matches(selector, s.inputs["metadata"]["labels"])
        assert s.inputs["stringData"] == offline.SECRET_MARK
        data = s.outputs["stringData"]
        region = s.inputs["metadata"]["labels"][naming.LABEL_REGION]
        assert re.fullmatch(
            rf"https://[A-Za-z0-9.-]+\.{re.escape(region)}\.eks\.amazonaws\.com", data["server"]
        )
        assert json.loads(data["config"])["awsAuthConfig"]["clusterName"] == naming.cluster_name(
            p.config.environment, region
        )
    assert len({s.outputs["stringData"]["server"] for s in secrets}) == len(secrets)


@pytest.mark.parametrize("stack", STACKS)
def test_generated_applications_one_per_region_into_the_project(stack: str) -> None:
    p = plan(stack)
    apps = generated_applications(p)
    assert set(apps) == set(p.config.region_names)
    (project,) = [
        r
        for r in p.of_type("kubernetes:argoproj.io/v1alpha1:AppProject")
        if r.inputs["metadata"]["name"] == naming.APP_PROJECT
    ]
    allowed = {(d["server"], d["namespace"]) for d in project.inputs["spec"]["destinations"]}
    for region, app in apps.items():
        assert app["metadata"]["name"] == naming.application_name(
            p.config.application.name, p.config.environment, region
        )
        dest = app["spec"]["destination"]
        assert (dest["server"], dest["namespace"]) in allowed


@pytest.mark.parametrize("stack", STACKS)
def test_applications_sync_automatically_or_only_by_the_deploy_command_as_configured(stack: str) -> None:
    p = plan(stack)
    automated = p.config.argocd.sync == "automated"
    for app in generated_applications(p).values():
        if automated:
            assert app["spec"]["syncPolicy"]["automated"] == {"prune": True, "selfHeal": True}
        else:
            assert "automated" not in app["spec"]["syncPolicy"]
    (appset,) = app_sets(p)
    # A manual stack's (prod's) running services survive the deletion of an Application or the set.
    assert (appset.inputs["spec"].get("syncPolicy") or {}).get("preserveResourcesOnDeletion") is (
        True if not automated else None
    )


@pytest.mark.parametrize("stack", STACKS)
def test_argocd_is_highly_available_as_configured(stack: str) -> None:
    p = plan(stack)
    (release,) = [r for r in p.of_type(RELEASE) if r.inputs["name"] == naming.ARGOCD_RELEASE]
    values = dict(release.inputs["values"])
    ha = p.config.argocd.ha
    assert values["redis-ha"]["enabled"] is ha
    for component in ("server", "repoServer", "applicationSet"):
        # Chart README, "High Availability": at least two replicas of each stateless component.
        assert values[component]["replicas"] >= 2 if ha else values[component]["replicas"] == 1


@pytest.mark.skipif(not jq_available(), reason="needs the jq binary to evaluate the jq expressions")
@pytest.mark.parametrize("stack", STACKS)
def test_ignore_rule_covers_every_parameter_image_updater_writes_or_a_person_adds(stack: str) -> None:
    p = plan(stack)
    (appset,) = app_sets(p)
    (updater,) = p.of_type(IMAGE_UPDATER)
    rules = appset.inputs["spec"]["ignoreApplicationDifferences"]
    expressions = [e for r in rules for e in r["jqPathExpressions"]]
    written = {
        v
        for ref in updater.inputs["spec"]["applicationRefs"]
        for i in ref["images"]
        for v in i["manifestTargets"]["helm"].values()
    }
    for app in generated_applications(p).values():
        candidates = [*sorted(written), "image.prefix", "replicaCount"]
        live = json.loads(json.dumps(app))
        live["spec"]["source"]["helm"]["parameters"] = [{"name": n, "value": "x"} for n in candidates]
        for e in expressions:
            live = jq_delete(live, e)
        left = {q["name"] for q in live["spec"]["source"]["helm"].get("parameters", [])}
        # The whole list: a visible hand-set parameter would make the ApplicationSet's merge
        # patch replace it, Image Updater's parameters included.
        assert left == set()
        only_written = json.loads(json.dumps(app))
        only_written["spec"]["source"]["helm"]["parameters"] = [{"name": n, "value": "x"} for n in written]
        for e in expressions:
            only_written = jq_delete(only_written, e)
        assert normalise_application(only_written) == normalise_application(app)


@pytest.mark.shared
@pytest.mark.parametrize("stack", STACKS)
def test_every_custom_resource_validates_against_its_crd(stack: str) -> None:
    p = plan(stack)
    found = [r for r in p.resources if "argoproj.io/" in r.type]
    # The cluster add-ons (issue 17) add their AppProject and one ApplicationSet per add-on.
    add_on_sets = len(addons.application_sets(p.config))
    add_on_projects = 1 if add_on_sets else 0
    assert sorted(r.inputs["kind"] for r in found) == sorted(
        ["AppProject", "AppProject", "ApplicationSet", "ImageUpdater"]
        + ["AppProject"] * add_on_projects
        + ["ApplicationSet"] * add_on_sets
    )
    for r in found:
        manifest = {k: r.inputs[k] for k in ("apiVersion", "kind", "metadata", "spec")}
        assert crd_errors(manifest) == [], r.type


@pytest.mark.parametrize("stack", STACKS)
def test_argocd_output(stack: str) -> None:
    p = plan(stack)
    out = p.outputs[naming.OUTPUT_ARGOCD]
    assert out["region"] == p.config.hub_region
    assert out["namespace"] == naming.ARGOCD_NAMESPACE
    assert out["applicationSet"] == naming.application_set_name(
        p.config.application.name, p.config.environment
    )
    assert out["url"] and out["portForward"].startswith("kubectl -n argocd port-forward")


# The hub moved to prod's first spoke, as the DR runbook's --new-hub does.
NEW_HUB = cfg.load_stack_file("prod").spoke_regions[0]


def test_moving_the_hub_moves_argocd_and_still_registers_every_cluster() -> None:
    moved = plan("prod", NEW_HUB)
    assert moved.config.hub_region == NEW_HUB
    for r in moved.of_type(RELEASE) + moved.of_type(APPSET) + moved.of_type(IMAGE_UPDATER):
        assert moved.region_of(provider_of(moved, r)) == NEW_HUB, f"{r.type} {r.name}"
    secrets = cluster_secrets(moved)
    roles = {
        s.inputs["metadata"]["labels"][naming.LABEL_REGION]: s.inputs["metadata"]["labels"][
            naming.LABEL_CLUSTER_ROLE
        ]
        for s in secrets
    }
    assert roles == {r: "hub" if r == NEW_HUB else "spoke" for r in moved.config.region_names}
    for s in secrets:
        assert moved.region_of(provider_of(moved, s)) == NEW_HUB
    entries = moved.of_type("aws:eks/accessEntry:AccessEntry")
    argocd_entries = [e for e in entries if e.name.startswith("argocd-")]
    assert sorted(moved.region_of(e) or "" for e in argocd_entries) == sorted(moved.config.region_names)
    assert len(generated_applications(moved)) == len(moved.config.region_names)
    assert moved.outputs[naming.OUTPUT_ARGOCD]["region"] == NEW_HUB
