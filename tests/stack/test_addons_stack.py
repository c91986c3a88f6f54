"""The add-on layer in the whole program (infra.program.run) under the offline mocks, per stack."""

from __future__ import annotations

import json
import re
from functools import cache

import pytest

from infra import addons, naming, offline, plan, versions
from infra import config as cfg
from infra.components import cluster
from tests.conftest import stack_names

STACKS = stack_names()
APPLICATION_SET = "kubernetes:argoproj.io/v1alpha1:ApplicationSet"


@cache
def run(stack: str) -> offline.Plan:
    return offline.run(stack)


@pytest.mark.parametrize("stack", STACKS)
def test_every_clusters_vpc_cni_enforces_network_policies(stack: str) -> None:
    """The chart's and Argo CD's NetworkPolicies are enforced only with the vpc-cni add-on's
    network policy agent on, on every cluster (infra/addons.py vpc_cni_configuration)."""
    config = cfg.load_stack_file(stack)
    p = run(stack)
    cni = [r for r in p.of_type("aws:eks/addon:Addon") if r.inputs.get("addonName") == "vpc-cni"]
    assert sorted(str(p.region_of(r)) for r in cni) == sorted(config.region_names)
    for r in cni:
        assert json.loads(r.inputs["configurationValues"])["enableNetworkPolicy"] == "true"
    others = [r for r in p.of_type("aws:eks/addon:Addon") if r.inputs.get("addonName") != "vpc-cni"]
    assert others and all("configurationValues" not in r.inputs for r in others)


@pytest.mark.parametrize("stack", STACKS)
def test_the_hub_declares_one_application_set_per_enabled_addon(stack: str) -> None:
    config = cfg.load_stack_file(stack)
    p = run(stack)
    declared = sorted(
        r.inputs["metadata"]["name"]
        for r in p.of_type(APPLICATION_SET)
        if addons.LABEL_ADDON in (r.inputs["metadata"].get("labels") or {})
    )
    assert declared == [s["metadata"]["name"] for s in addons.application_sets(config)]
    regions = {str(p.region_of(r)) for r in p.of_type(APPLICATION_SET)}
    assert regions == {config.hub_region}


@pytest.mark.parametrize("stack", STACKS)
def test_the_offline_plan_shows_each_clusters_addons_and_versions(stack: str) -> None:
    config = cfg.load_stack_file(stack)
    lines = plan.highlights(run(stack))
    for region in config.region_names:
        running = addons.cluster_addons(config, region)
        shown = ", ".join(sorted(f"{versions_chart(n)} {v}" for n, v in running.items())) or "none"
        expected = f"add-ons of {naming.cluster_secret_name(config.environment, region)}: {shown}"
        assert expected in lines


def expected_eks_addons(config: cfg.StackConfig, region: str) -> str:
    """What the plan should show for ``region``'s EKS managed add-ons, from the tables the cluster
    component reads: its add-on list, the versions pinned for the region's Kubernetes version
    (None: "EKS default") and vpc-cni's configuration values."""
    pinned = versions.eks_addon_versions(config.region(region).kubernetes_version)
    items = []
    for name in sorted(cluster.ADDONS):
        item = f"{name} {pinned[name] or plan.EKS_DEFAULT_VERSION}"
        if name == "vpc-cni":
            item += f" with {json.dumps(addons.vpc_cni_configuration())}"
        items.append(item)
    return ", ".join(items)


@pytest.mark.parametrize("stack", STACKS)
def test_the_offline_plan_shows_each_clusters_eks_managed_addons(stack: str) -> None:
    """Besides the GitOps add-ons, the plan lists per cluster the EKS managed add-ons it declares:
    vpc-cni with its network policy agent on, the Pod Identity agent, kube-proxy, coredns, each
    with its pinned version or "EKS default"."""
    config = cfg.load_stack_file(stack)
    lines = [line for line in plan.highlights(run(stack)) if line.startswith("EKS add-ons of ")]
    expected = [
        f"EKS add-ons of {naming.cluster_name(config.environment, region)}: {expected_eks_addons(config, region)}"
        for region in sorted(config.region_names)
    ]
    assert lines == expected
    for line in lines:
        assert "eks-pod-identity-agent " in line and "vpc-cni " in line, line
        assert '"enableNetworkPolicy": "true"' in line, line


@pytest.mark.parametrize("stack", STACKS)
def test_the_docs_table_lists_each_clusters_eks_managed_addons_as_the_plan_does(stack: str) -> None:
    """docs/addons.md "What each cluster runs": the ``every <env> cluster`` row's EKS column is what
    the plan shows for every cluster of that stack."""
    config = cfg.load_stack_file(stack)
    text = (cfg.PROJECT_ROOT / "docs" / "addons.md").read_text()
    rows = dict(re.findall(r"^\| every (\w+) cluster \| .+? \| (.+?) \|$", text, re.M))
    if config.environment not in rows:
        pytest.skip(f"docs/addons.md has no row for {config.environment}")
    lines = [line for line in plan.highlights(run(stack)) if line.startswith("EKS add-ons of ")]
    assert len(lines) == len(config.region_names)
    for line in lines:
        assert line.split(": ", 1)[1] == rows[config.environment], line


def versions_chart(name: str) -> str:
    return addons.CATALOG[name].chart["chart"]


@pytest.mark.parametrize("stack", STACKS)
def test_each_addon_that_calls_aws_has_its_role_and_association_on_each_of_its_clusters(stack: str) -> None:
    """One Pod Identity association per (cluster, add-on) the config asks for, declared with
    that cluster's provider, bound to the add-on's namespace and service account and to the role
    whose trust names exactly them."""
    config = cfg.load_stack_file(stack)
    p = run(stack)
    associations = {
        (str(p.region_of(r)), r.inputs["namespace"], r.inputs["serviceAccount"]): r
        for r in p.of_type("aws:eks/podIdentityAssociation:PodIdentityAssociation")
    }
    roles = {r.inputs["name"]: r for r in p.of_type("aws:iam/role:Role")}
    expected = addons.identities(config)
    assert expected, f"{stack} runs no add-on that calls AWS"
    for region, addon in expected:
        association = associations[(region, addon.namespace, addon.service_account)]
        assert association.inputs["clusterName"] == naming.cluster_name(config.environment, region)
        role = roles[addons.addon_role_name(config, region, addon.name)]
        trust = json.loads(role.inputs["assumeRolePolicy"])
        tags = trust["Statement"][0]["Condition"]["StringEquals"]
        assert tags["aws:RequestTag/kubernetes-namespace"] == addon.namespace
        assert tags["aws:RequestTag/kubernetes-service-account"] == [addon.service_account]
        assert tags["aws:RequestTag/eks-cluster-name"] == association.inputs["clusterName"]
        assert association.inputs["roleArn"].endswith(f":role/{role.inputs['name']}")


def depends_on(p: offline.Plan, resource: offline.Resource) -> set[str]:
    """Every URN ``resource`` waits for, directly or through what it waits for."""
    index, seen, todo = p.by_urn(), set(), list(resource.dependencies)
    while todo:
        urn = todo.pop()
        if urn not in seen:
            seen.add(urn)
            todo += index[urn].dependencies if urn in index else []
    return seen


@pytest.mark.parametrize("stack", STACKS)
def test_each_cluster_secret_waits_for_its_clusters_pod_identity_associations_and_agent(stack: str) -> None:
    """Argo CD starts an add-on's pods on a cluster once that cluster's Secret carries the
    add-on's label, and EKS Pod Identity gives a pod credentials only if its association exists
    when the pod is created (tests/contracts/test_pod_identity_chain.py): each region's Secret
    (a new or rebuilt region's too) depends on the association of every add-on with a role that
    the region runs, and on that cluster's eks-pod-identity-agent add-on."""
    config = cfg.load_stack_file(stack)
    p = run(stack)
    associations = {
        (str(p.region_of(r)), r.inputs["namespace"], r.inputs["serviceAccount"]): r.urn
        for r in p.of_type("aws:eks/podIdentityAssociation:PodIdentityAssociation")
    }
    agents = {
        str(p.region_of(r)): r.urn
        for r in p.of_type("aws:eks/addon:Addon")
        if r.inputs.get("addonName") == "eks-pod-identity-agent"
    }
    expected = addons.identities(config)
    assert expected, f"{stack} runs no add-on that calls AWS"
    for region in config.region_names:
        secret = p.one("kubernetes:core/v1:Secret", f"argocd-cluster-{region}")
        waits = depends_on(p, secret)
        assert agents[region] in waits, region
        for r, addon in expected:
            if r == region:
                assert associations[(region, addon.namespace, addon.service_account)] in waits, (
                    region,
                    addon.name,
                )
        # Another region's associations are not on this Secret's path (a region's rebuild must
        # not wait for the others').
        others = {u for (r, _, _), u in associations.items() if r != region}
        assert not (others & set(secret.dependencies)), region


@pytest.mark.parametrize("stack", STACKS)
def test_pulumi_leaves_the_desired_size_to_the_cluster_autoscaler_where_it_runs(stack: str) -> None:
    config = cfg.load_stack_file(stack)
    p = run(stack)
    for group in p.of_type("aws:eks/nodeGroup:NodeGroup"):
        region = str(p.region_of(group))
        autoscaled = region in config.addon_regions(addons.CLUSTER_AUTOSCALER)
        assert ("scalingConfig.desiredSize" in group.ignore_changes) == autoscaled, region
        assert group.inputs["scalingConfig"]["maxSize"] == config.region(region).node_group.max_size
