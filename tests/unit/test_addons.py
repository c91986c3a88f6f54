"""Cluster add-ons through GitOps (issue 17): cluster Secret facts, the add-on ApplicationSets as
Argo CD's cluster generator renders them, and the real upstream charts they deploy.

Everything is derived from the stack files: which add-ons a stack runs, on which clusters, at
which version."""

from __future__ import annotations

import copy
import re
from pathlib import Path
from typing import Any

import pytest

from infra import addons, naming, versions
from infra import config as cfg
from infra.config import StackConfig
from infra.manifests import argocd as manifests
from tests.addons_support import (
    chart_defaults,
    chart_package,
    cluster_generator,
    cluster_scoped_kinds,
    cluster_secrets,
    helm_template,
)
from tests.argocd_support import (
    TemplateFailed,
    crd_errors,
    helm_template_application,
    render_go_template,
    rendered_objects,
    require_shared,
    unknown_value_paths,
)
from tests.conftest import ROOT, stack_config_map, stack_names, without_traffic

STACKS = stack_names()


def load(stack: str) -> StackConfig:
    return cfg.load_stack_file(stack)


def generated(config: StackConfig) -> dict[str, list[dict[str, Any]]]:
    """{ApplicationSet name: the Applications the cluster generator makes from the Secrets}."""
    secrets = list(cluster_secrets(config).values())
    return {s["metadata"]["name"]: cluster_generator(s, secrets) for s in addons.application_sets(config)}


def servers(config: StackConfig) -> dict[str, str]:
    return {r: s["stringData"]["server"] for r, s in cluster_secrets(config).items()}


def region_of(app: dict[str, Any]) -> str:
    return str(app["metadata"]["labels"][naming.LABEL_REGION])


# --- the cluster Secret carries what the add-ons read ----------------------------------------


@pytest.mark.parametrize("stack", STACKS)
def test_each_cluster_secret_switches_on_exactly_its_addons(stack: str) -> None:
    config = load(stack)
    for region, secret in cluster_secrets(config).items():
        labels = secret["metadata"]["labels"]
        on = {k for k, v in labels.items() if k.startswith("enable_") and v == "true"}
        expected = {addons.enable_label(a) for a in config.addons if region in config.addon_regions(a)}
        assert on == expected, region


@pytest.mark.parametrize("stack", STACKS)
def test_each_cluster_secret_carries_the_annotations_its_addons_read(stack: str) -> None:
    config = load(stack)
    secrets = cluster_secrets(config)
    for app_set in addons.application_sets(config):
        read = addons.annotations_read(app_set)
        for app in cluster_generator(app_set, list(secrets.values())):
            annotations = secrets[region_of(app)]["metadata"]["annotations"]
            assert read <= set(annotations), (app["metadata"]["name"], read - set(annotations))
    for region, secret in secrets.items():
        annotations = secret["metadata"]["annotations"]
        assert annotations[addons.ANNOTATION_REGION] == region
        assert annotations[addons.ANNOTATION_ACCOUNT] == config.account_id
        assert annotations[addons.ANNOTATION_CLUSTER_NAME] == naming.cluster_name(config.environment, region)
        assert annotations[addons.ANNOTATION_VPC].startswith("vpc-")
        for name in addons.cluster_addons(config, region):
            assert annotations[addons.namespace_annotation(name)] == addons.CATALOG[name].namespace


@pytest.mark.parametrize("stack", STACKS)
def test_the_existing_cluster_secret_keys_and_pod_identity_chain_stay(stack: str) -> None:
    """The add-on facts are added next to what the application's ApplicationSet and Argo CD
    already read: the platform labels and annotations, and a config without roleARN."""
    config = load(stack)
    for region, secret in cluster_secrets(config).items():
        meta = secret["metadata"]
        assert meta["labels"][naming.LABEL_ENVIRONMENT] == config.environment
        assert meta["labels"][naming.LABEL_REGION] == region
        assert meta["labels"][manifests.SECRET_TYPE_LABEL] == "cluster"
        assert meta["annotations"][naming.ANNOTATION_REGISTRY] == naming.registry_host(
            config.account_id, region
        )
        assert "roleARN" not in secret["stringData"]["config"]


def vpc_readers(config: StackConfig) -> set[str]:
    """The add-ons of ``config`` whose ApplicationSet reads the cluster Secret's VPC ID."""
    return {
        name
        for name in config.addons
        if addons.ANNOTATION_VPC
        in addons.annotations_read(addons.application_set(config, addons.CATALOG[name]))
    }


@pytest.mark.parametrize("stack", STACKS)
def test_annotations_read_finds_every_annotation_a_template_reads(stack: str) -> None:
    """infra.addons.annotations_read (which decides whether a Secret needs the VPC ID) sees what
    the test's own walk of the template's strings sees. It once read the template's JSON text,
    where the key's quotes are escaped, and found nothing, so a Secret without the VPC ID passed."""
    config = load(stack)
    for app_set in addons.application_sets(config):
        assert addons.annotations_read(app_set) == annotations_in(app_set["spec"]["template"])


@pytest.mark.parametrize("stack", STACKS)
def test_a_cluster_whose_addons_read_the_vpc_id_is_refused_without_it(stack: str) -> None:
    config = load(stack)
    regions = [r for r in config.region_names if vpc_readers(config) & set(addons.cluster_addons(config, r))]
    if not regions:
        pytest.skip(f"no add-on of {stack} reads the VPC ID")
    for region in regions:
        with pytest.raises(ValueError, match=rf"cluster Secret of {region} needs the VPC ID"):
            addons.cluster_annotations(config, region, cluster_name="c", vpc_id=None)


def test_a_cluster_that_needs_no_vpc_id_is_still_registered_without_one() -> None:
    raw = without_traffic(stack_config_map("staging"))
    readers = vpc_readers(cfg.from_flat(raw, "staging"))
    for name in readers:
        raw["platform:addons"].pop(name)
    config = cfg.from_flat(raw, "staging")
    region = config.region_names[0]
    secret = manifests.cluster_secret(config, region, cluster_name="c", endpoint="https://e", ca_data="Q0EK")
    assert addons.ANNOTATION_VPC not in secret["metadata"]["annotations"]


def annotations_in(template: Any) -> set[str]:
    """The cluster Secret annotations a template's strings read."""
    if isinstance(template, str):
        return set(re.findall(r'index \.metadata\.annotations "([^"]+)"', template))
    if isinstance(template, dict):
        return set().union(*(annotations_in(v) for v in template.values()), set())
    if isinstance(template, list):
        return set().union(*(annotations_in(v) for v in template), set())
    return set()


@pytest.mark.parametrize("stack", STACKS)
def test_a_secret_lacking_an_annotation_an_addon_reads_fails_the_whole_application_sets_generation(
    stack: str,
) -> None:
    """``index`` of a missing key renders "" in Go whatever ``missingkey`` says (Go text/template
    doc, "index"), so each annotation an add-on reads is wrapped in Sprig's ``fail``
    (infra/addons.py ``annotation``). One such Secret among the environment's clusters fails the
    whole set's generation: argoproj/argo-cd v3.4.4 ``applicationset/controllers/template/template.go``
    ``GenerateApplications`` returns its first render error and ``applicationset_controller.go``
    ``Reconcile`` sets ``ErrorOccurred`` and returns before creating or updating any Application,
    so no cluster gets one (the model, tests/addons_support.py ``cluster_generator``, raises)."""
    config = load(stack)
    secrets = cluster_secrets(config)
    checked = 0
    for application_set in addons.application_sets(config):
        for key in sorted(annotations_in(application_set["spec"]["template"])):
            for region, secret in secrets.items():
                if not cluster_generator(application_set, [secret]):
                    continue  # this cluster is not selected
                broken = copy.deepcopy(secret)
                del broken["metadata"]["annotations"][key]
                others = [s for r, s in secrets.items() if r != region]
                with pytest.raises(TemplateFailed, match=key):
                    cluster_generator(application_set, [*others, broken])
                checked += 1
    assert checked, f"{stack}: no add-on reads an annotation"


def test_the_template_model_indexes_as_go_does() -> None:
    """Go text/template: ``index`` of a missing map key yields the zero value ("") and is not
    affected by ``missingkey=error``, which governs field lookups (``.a.b``) only."""
    params = {"metadata": {"annotations": {"a": "x"}}}
    assert render_go_template('{{ index .metadata.annotations "b" }}', params) == ""
    with pytest.raises(KeyError):
        render_go_template("{{ .metadata.labels }}", params)
    assert render_go_template(addons.annotation("a"), params) == "x"
    with pytest.raises(TemplateFailed):
        render_go_template(addons.annotation("b"), params)


# --- each ApplicationSet selects exactly its clusters ------------------------------------------


@pytest.mark.parametrize("stack", STACKS)
def test_each_addon_application_set_selects_exactly_the_intended_clusters(stack: str) -> None:
    config = load(stack)
    apps = generated(config)
    assert apps, f"{stack} runs no add-on"
    for addon in addons.enabled(config):
        regions = sorted(
            region_of(app)
            for name, found in apps.items()
            if name.startswith(f"addon-{addon.name}")
            for app in found
        )
        assert regions == sorted(config.addon_regions(addon.name)), addon.name
        for found in apps.values():
            for app in found:
                assert (
                    app["spec"]["source"]["targetRevision"]
                    == config.addons[app["metadata"]["labels"][addons.LABEL_ADDON]].chart_version
                )


@pytest.mark.parametrize("stack", STACKS)
def test_application_sets_and_applications_validate_against_the_argo_cd_crds(
    stack: str, shared_dir: Path
) -> None:
    config = load(stack)
    for app_set in addons.application_sets(config):
        assert crd_errors(app_set) == [], app_set["metadata"]["name"]
        for app in cluster_generator(app_set, list(cluster_secrets(config).values())):
            assert crd_errors(app) == [], app["metadata"]["name"]
    project = addons.addons_project(config, servers(config))
    assert crd_errors(project) == []


def test_another_environments_clusters_are_never_selected() -> None:
    """Each hub holds its own environment's ApplicationSets; a Secret of another environment
    (a hub moved, a copy restored) is not selected."""
    staging, prod = load("staging"), load("prod")
    prod_secrets = list(cluster_secrets(prod).values())
    for app_set in addons.application_sets(staging):
        assert cluster_generator(app_set, prod_secrets) == []


# --- values the upstream charts know, rendered by the real chart -------------------------------


def _apps(stack: str) -> list[tuple[str, dict[str, Any]]]:
    config = load(stack)
    return [
        (app_set["metadata"]["labels"][addons.LABEL_ADDON], app)
        for app_set in addons.application_sets(config)
        for app in cluster_generator(app_set, list(cluster_secrets(config).values()))
    ]


@pytest.mark.parametrize("stack", STACKS)
def test_addon_values_are_keys_the_chart_knows(stack: str) -> None:
    config = load(stack)
    for name, app in _apps(stack):
        chart = versions.ADDON_CHARTS[name]["chart"]
        defaults = chart_defaults(chart, config.addons[name].chart_version)
        assert unknown_value_paths(app["spec"]["source"]["helm"]["valuesObject"], defaults) == [], app[
            "metadata"
        ]["name"]


@pytest.mark.parametrize("stack", STACKS)
def test_addon_applications_render_with_the_real_chart(stack: str, tmp_path: Path) -> None:
    """Every generated add-on Application renders with ``helm template`` of the pinned package,
    and the add-ons' AppProject allows every cluster-scoped kind it renders and its source."""
    config = load(stack)
    project = addons.addons_project(config, servers(config))["spec"]
    allowed = {(k["group"], k["kind"]) for k in project["clusterResourceWhitelist"]}
    for name, app in _apps(stack):
        source = app["spec"]["source"]
        package = chart_package(source["chart"], source["targetRevision"])
        kube = config.region(region_of(app)).kubernetes_version + ".0"
        objects = helm_template(app, package, tmp_path, kube)
        assert objects, app["metadata"]["name"]
        kinds = cluster_scoped_kinds(objects)
        assert kinds <= allowed, (name, kinds - allowed)
        assert source["repoURL"] in project["sourceRepos"]
        server = app["spec"]["destination"]["server"]
        allowed_namespaces = {d["namespace"] for d in project["destinations"] if d["server"] == server}
        assert app["spec"]["destination"]["namespace"] in allowed_namespaces
        namespaced = {o["metadata"]["namespace"] for o in objects if o.get("metadata", {}).get("namespace")}
        # metrics-server's auth-reader RoleBinding lives in kube-system by design (its chart).
        assert namespaced <= allowed_namespaces | {"kube-system"}, (app["metadata"]["name"], namespaced)


def test_the_catalog_and_the_version_table_name_the_same_addons() -> None:
    assert set(addons.catalog()) == set(versions.ADDON_CHARTS)


def test_the_tested_version_of_each_chart_is_packaged(shared_dir: Path) -> None:
    for chart in versions.ADDON_CHARTS.values():
        assert (shared_dir / "upstream-charts" / f"{chart['chart']}-{chart['tested']}.tgz").is_file()


# --- HPAs have a metrics source ----------------------------------------------------------------


@pytest.mark.parametrize("stack", STACKS)
def test_every_cluster_that_renders_an_hpa_runs_metrics_server(stack: str, shared_dir: Path) -> None:
    """The shop chart's HorizontalPodAutoscalers read the resource metrics API; metrics-server
    serves it. Rendered per region with the values files Argo CD uses and a tag."""
    config = load(stack)
    apps = {region_of(a): a for a in manifests_generated(config)}
    checked: list[str] = []
    for region, app in apps.items():
        app = copy.deepcopy(app)
        app["spec"]["source"]["helm"]["parameters"] = [
            {"name": "image.tag", "value": "20260101.000000-abcdef0"}
        ]
        kube = config.region(region).kubernetes_version + ".0"
        objects = rendered_objects(helm_template_application(app, ROOT, kube))
        hpas = [o for o in objects if o["kind"] == "HorizontalPodAutoscaler"]
        resource_metrics = [m for h in hpas for m in h["spec"].get("metrics", []) if m["type"] == "Resource"]
        if resource_metrics:
            assert "metrics-server" in addons.cluster_addons(config, region), region
            checked.append(region)
    print(stack, "regions with resource-metric HPAs:", checked)


def manifests_generated(config: StackConfig) -> list[dict[str, Any]]:
    app_set = manifests.application_set(config)
    return cluster_generator(app_set, list(cluster_secrets(config).values()))


# --- adding an add-on to one environment is one stack-file entry -------------------------------


def test_adding_an_addon_to_one_environment_is_a_label_and_a_version_entry() -> None:
    """Take an add-on away from staging, then add it back for one cluster only: that entry alone
    puts the label on that cluster's Secret and an ApplicationSet on staging's hub that selects
    it and nothing else, at the entry's version."""
    name = next(iter(versions.ADDON_CHARTS))
    raw = stack_config_map("staging")
    raw.get("platform:addons", {}).pop(name, None)
    without = cfg.from_flat(raw, "staging")
    assert name not in addons.cluster_addons(without, without.region_names[0])
    assert all(s["metadata"]["labels"][addons.LABEL_ADDON] != name for s in addons.application_sets(without))

    region = without.region_names[-1]
    raw.setdefault("platform:addons", {})[name] = {"chartVersion": "9.9.9", "regions": [region]}
    config = cfg.from_flat(raw, "staging")
    secrets = cluster_secrets(config)
    for r, secret in secrets.items():
        assert (addons.enable_label(name) in secret["metadata"]["labels"]) == (r == region)
    sets = [s for s in addons.application_sets(config) if s["metadata"]["labels"][addons.LABEL_ADDON] == name]
    apps = [a for s in sets for a in cluster_generator(s, list(secrets.values()))]
    assert [region_of(a) for a in apps] == [region]
    assert {a["spec"]["source"]["targetRevision"] for a in apps} == {"9.9.9"}


def test_an_unknown_addon_or_region_is_refused_naming_the_key() -> None:
    raw = stack_config_map("staging")
    raw["platform:addons"] = {"metrics-servr": {"chartVersion": "1.0.0"}}
    with pytest.raises(
        cfg.ConfigError, match=r"platform:addons\.metrics-servr.*did you mean 'metrics-server'"
    ):
        cfg.from_flat(raw, "staging")
    other = next(
        r
        for r in cfg.KNOWN_REGIONS
        if r not in cfg.from_flat(stack_config_map("staging"), "staging").region_names
    )
    raw["platform:addons"] = {"metrics-server": {"chartVersion": "1.0.0", "regions": [other]}}
    with pytest.raises(
        cfg.ConfigError, match=rf"platform:addons\.metrics-server\.regions\[0\]: \"{other}\".*stack's regions"
    ):
        cfg.from_flat(raw, "staging")


# --- vpc-cni enforces NetworkPolicies ------------------------------------------------------------


def test_vpc_cni_configuration_turns_the_network_policy_agent_on() -> None:
    assert addons.vpc_cni_configuration() == {"enableNetworkPolicy": "true"}


@pytest.mark.parametrize("stack", STACKS)
def test_the_namespaces_the_addons_create_are_allowed_by_name(stack: str) -> None:
    """An add-on Application syncs with CreateNamespace=true; on a new cluster its namespace is
    a sync task checked against the project's cluster-resource whitelist like any other
    cluster-scoped object (argo-cd v3.4.4 controller/sync_namespace.go and
    AppProject.IsGroupKindNamePermitted): each destination namespace that does not exist on a
    fresh EKS cluster must be whitelisted, by name and nothing more."""
    config = load(stack)
    project = addons.addons_project(config, servers(config))["spec"]
    namespaces = {
        k.get("name")
        for k in project["clusterResourceWhitelist"]
        if (k["group"], k["kind"]) == ("", "Namespace")
    }
    assert None not in namespaces, "a Namespace entry without a name allows every namespace"
    for _, app in _apps(stack):
        assert "CreateNamespace=true" in app["spec"]["syncPolicy"]["syncOptions"]
        namespace = app["spec"]["destination"]["namespace"]
        if namespace != "kube-system":  # exists on every cluster
            assert namespace in namespaces, (app["metadata"]["name"], namespace)


# --- a chart version missing from ../shared ------------------------------------------------------


def test_a_chart_version_missing_from_shared_skips_naming_the_package_and_where_it_goes() -> None:
    """A stack file bumped to a version ../shared lacks leaves that version unrendered while the
    run stays green: the skip reason says which package is missing, where it goes and how to get it."""
    source = next(iter(versions.ADDON_CHARTS.values()))
    chart, absent = source["chart"], "0.0.0-not-packaged"
    with pytest.raises(pytest.skip.Exception) as skipped:
        chart_package(chart, absent)
    reason = str(skipped.value)
    shared = require_shared() / "upstream-charts"
    assert f"{chart}-{absent}.tgz is not in {shared}" in reason
    assert f"{chart} {absent} is NOT rendered" in reason
    assert (
        f"helm pull {chart} --repo {source['repository']} --version {absent} --destination {shared}" in reason
    )
