"""Cluster Secrets, AppProject, ApplicationSet and ImageUpdater as pure functions: against the CRDs,
against each other (selector, template, ignore rule) and per environment."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest

from infra import addons, naming, traffic
from infra import config as cfg
from infra.manifests import argocd as m
from tests.argocd_support import (
    cluster_generator_params,
    crd_errors,
    example_traffic_facts,
    fake_vpc_id,
    jq_available,
    jq_delete,
    normalise_application,
    render_go_template,
    render_template,
    selector_matches,
)
from tests.conftest import stack_config_map

STACKS = ("staging", "prod")


def load(stack: str, **changes: Any) -> cfg.StackConfig:
    raw = stack_config_map(stack)
    for key, value in changes.items():
        raw[f"platform:{key}"] = value
    return cfg.from_flat(cfg.as_pulumi_config(raw), stack)


def endpoint(region: str) -> str:
    return f"https://{region.replace('-', '').upper()}0123.gr7.{region}.eks.amazonaws.com"


def secrets(config: cfg.StackConfig) -> list[dict[str, Any]]:
    return [
        m.cluster_secret(
            config,
            region,
            cluster_name=naming.cluster_name(config.environment, region),
            endpoint=endpoint(region),
            vpc_id=fake_vpc_id(region),
            ca_data="Q0EK",
            traffic_facts=example_traffic_facts(config, region),
        )
        for region in config.region_names
    ]


def generated_applications(config: cfg.StackConfig) -> dict[str, dict[str, Any]]:
    """What the ApplicationSet controller would generate: the template rendered per selected Secret."""
    appset = m.application_set(config)
    selector = appset["spec"]["generators"][0]["clusters"]["selector"]
    apps = {}
    for secret in secrets(config):
        labels = secret["metadata"]["labels"]
        # The cluster generator only ever considers cluster Secrets, then applies the selector.
        if labels.get(m.SECRET_TYPE_LABEL) == "cluster" and selector_matches(selector, labels):
            app = render_template(appset["spec"]["template"], cluster_generator_params(secret))
            apps[labels[naming.LABEL_REGION]] = app
    return apps


# --- Cluster Secrets -----------------------------------------------------------------------------


@pytest.mark.parametrize("stack", STACKS)
def test_one_secret_per_cluster_with_labels_and_metadata(stack: str) -> None:
    config = load(stack)
    by_region = {s["metadata"]["labels"][naming.LABEL_REGION]: s for s in secrets(config)}
    assert set(by_region) == set(config.region_names)
    roles = {r: s["metadata"]["labels"][naming.LABEL_CLUSTER_ROLE] for r, s in by_region.items()}
    assert roles == {r: ("hub" if r == config.hub_region else "spoke") for r in config.region_names}
    for region, secret in by_region.items():
        meta = secret["metadata"]
        assert meta["namespace"] == naming.ARGOCD_NAMESPACE
        assert meta["name"] == naming.cluster_secret_name(config.environment, region)
        assert meta["labels"][m.SECRET_TYPE_LABEL] == "cluster"
        assert meta["labels"][naming.LABEL_ENVIRONMENT] == config.environment
        # The platform's annotations, plus the cluster add-ons' facts (issue 17,
        # tests/unit/test_addons.py checks those).
        cluster_name = naming.cluster_name(config.environment, region)
        assert meta["annotations"] == {
            **addons.cluster_annotations(
                config, region, cluster_name=cluster_name, vpc_id=fake_vpc_id(region)
            ),
            naming.ANNOTATION_ACCOUNT: config.account_id,
            naming.ANNOTATION_REGION: region,
            naming.ANNOTATION_CLUSTER_NAME: cluster_name,
            naming.ANNOTATION_REGISTRY: f"{config.account_id}.dkr.ecr.{region}.amazonaws.com",
            # The way in (issue 18, tests/unit/test_traffic.py checks those).
            **traffic.cluster_annotations(config, region, example_traffic_facts(config, region)),
        }
        assert secret["stringData"]["server"] == endpoint(region)


def test_secret_config_authenticates_with_iam_and_carries_no_credential() -> None:
    config = load("staging")
    secret = secrets(config)[0]
    conf = json.loads(secret["stringData"]["config"])
    assert conf == {
        "awsAuthConfig": {"clusterName": secret["stringData"]["name"]},
        "tlsClientConfig": {"insecure": False, "caData": "Q0EK"},
    }
    text = json.dumps(secret)
    for credential_field in ("bearerToken", "password", "keyData", "certData", "execProviderConfig"):
        assert credential_field not in text


def test_selector_picks_this_environments_clusters_only() -> None:
    staging, prod = load("staging"), load("prod")
    selector = m.application_set(staging)["spec"]["generators"][0]["clusters"]["selector"]
    assert all(selector_matches(selector, s["metadata"]["labels"]) for s in secrets(staging))
    assert not any(selector_matches(selector, s["metadata"]["labels"]) for s in secrets(prod))


# --- ApplicationSet: generated Applications ------------------------------------------------------


@pytest.mark.parametrize("stack", STACKS)
def test_one_application_per_cluster_named_and_sourced_per_region(stack: str) -> None:
    config = load(stack)
    apps = generated_applications(config)
    assert set(apps) == set(config.region_names)
    appset_name = naming.application_set_name(config.application.name, config.environment)
    for region, app in apps.items():
        assert app["metadata"]["name"] == naming.application_name(
            config.application.name, config.environment, region
        )
        assert app["metadata"]["labels"][naming.LABEL_APPLICATION_SET] == appset_name
        spec = app["spec"]
        assert spec["project"] == naming.APP_PROJECT
        assert spec["destination"] == {"server": endpoint(region), "namespace": config.application.namespace}
        assert spec["source"]["repoURL"] == config.application.repo_url
        assert spec["source"]["path"] == f"charts/{config.application.chart}"
        assert spec["source"]["targetRevision"] == config.application.revision
        assert spec["source"]["helm"]["valueFiles"] == list(naming.value_files(config.environment, region))
        assert "CreateNamespace=true" in spec["syncPolicy"]["syncOptions"]
        # The template sets no Helm parameters: they are Image Updater's alone (see the ignore rule).
        assert "parameters" not in spec["source"]["helm"]


def test_go_template_options_refuse_missing_keys() -> None:
    spec = m.application_set(load("staging"))["spec"]
    assert spec["goTemplate"] is True
    assert spec["goTemplateOptions"] == ["missingkey=error"]
    # And the test renderer honours it as Go does: a missing field (a Secret without labels)
    # fails; ``index`` of a missing label renders "" (missingkey does not govern ``index``).
    with pytest.raises(KeyError):
        render_go_template(spec["template"]["metadata"]["name"], {"metadata": {}})
    assert "{{" not in render_go_template(spec["template"]["metadata"]["name"], {"metadata": {"labels": {}}})


def with_sync(stack: str, sync: str) -> cfg.StackConfig:
    argocd = stack_config_map(stack).get("platform:argocd") or {}
    return load(stack, argocd={**argocd, "sync": sync})


@pytest.mark.parametrize("stack", STACKS)
def test_automated_sync_with_retry(stack: str) -> None:
    config = with_sync(stack, "automated")
    for app in generated_applications(config).values():
        policy = app["spec"]["syncPolicy"]
        assert policy["automated"] == {"prune": True, "selfHeal": True}
        assert policy["retry"]["limit"] > 0
        assert set(policy["retry"]["backoff"]) == {"duration", "factor", "maxDuration"}
    assert "preserveResourcesOnDeletion" not in json.dumps(
        m.application_set(config)["spec"].get("syncPolicy")
    )


@pytest.mark.parametrize("stack", STACKS)
def test_manual_sync_never_syncs_by_itself_and_preserves_resources(stack: str) -> None:
    config = with_sync(stack, "manual")
    for app in generated_applications(config).values():
        assert "automated" not in app["spec"]["syncPolicy"]
    assert m.application_set(config)["spec"]["syncPolicy"] == {"preserveResourcesOnDeletion": True}


def test_sync_mode_follows_config() -> None:
    manual_staging = load("staging", argocd={"sync": "manual"})
    assert all(
        "automated" not in a["spec"]["syncPolicy"] for a in generated_applications(manual_staging).values()
    )


# --- AppProject ----------------------------------------------------------------------------------


def test_project_allows_one_repo_the_registered_clusters_and_only_namespaces() -> None:
    config = load("prod")
    servers = [endpoint(r) for r in config.region_names]
    project = m.app_project(config, servers)
    spec = project["spec"]
    assert project["metadata"]["name"] == naming.APP_PROJECT
    assert spec["sourceRepos"] == [config.application.repo_url]
    assert spec["destinations"] == [{"server": s, "namespace": config.application.namespace} for s in servers]
    assert spec["clusterResourceWhitelist"] == [{"group": "", "kind": "Namespace"}]
    # Every generated Application lands inside the project's destinations.
    allowed = {(d["server"], d["namespace"]) for d in spec["destinations"]}
    for app in generated_applications(config).values():
        dest = app["spec"]["destination"]
        assert (dest["server"], dest["namespace"]) in allowed


# --- ImageUpdater CR -----------------------------------------------------------------------------


@pytest.mark.parametrize("stack", STACKS)
def test_image_updater_watches_the_sentinel_per_region_in_that_regions_registry(stack: str) -> None:
    config = load(stack)
    cr = m.image_updater(config)
    refs = cr["spec"]["applicationRefs"]
    apps = generated_applications(config)
    assert [r["namePattern"] for r in refs] == [
        apps[region]["metadata"]["name"] for region in config.region_names
    ]
    for region, ref in zip(config.region_names, refs, strict=True):
        (image,) = ref["images"]
        assert image["alias"] == config.sentinel_service
        assert image["imageName"] == (
            f"{config.account_id}.dkr.ecr.{region}.amazonaws.com/{config.ecr.prefix}/{config.sentinel_service}"
        )
        assert image["manifestTargets"] == {
            "helm": {"name": m.IMAGE_NAME_PARAMETER, "tag": m.IMAGE_TAG_PARAMETER}
        }
    settings = cr["spec"]["commonUpdateSettings"]
    assert settings["updateStrategy"] == config.image_updater.update_strategy
    assert settings["allowTags"] == config.image_updater.allow_tags
    assert settings["forceUpdate"] is True
    # Nowhere else: the CRD would default updateStrategy to semver in a nested block, which then
    # wins (tests/contracts/test_image_updater_settings.py).
    for ref in refs:
        assert "commonUpdateSettings" not in ref
        assert all("commonUpdateSettings" not in image for image in ref["images"])
    assert cr["spec"]["writeBackConfig"] == {"method": "argocd"}


def test_name_patterns_match_exactly_one_application_each() -> None:
    from fnmatch import fnmatchcase  # Image Updater matches namePattern with Go's filepath.Match

    config = load("prod")
    names = [a["metadata"]["name"] for a in generated_applications(config).values()]
    for ref in m.image_updater(config)["spec"]["applicationRefs"]:
        assert sum(fnmatchcase(n, ref["namePattern"]) for n in names) == 1


def test_allowed_tags_accept_the_ci_scheme_only() -> None:
    import re

    allow = m.image_updater(load("staging"))["spec"]["commonUpdateSettings"]["allowTags"]
    assert allow.startswith("regexp:")
    pattern = re.compile(allow.removeprefix("regexp:"))
    assert pattern.search("20261122.063000-0123abc")
    for bad in ("latest", "v1.2.3", "20261122.063000", "main-0123abc"):
        assert not pattern.search(bad), bad


def test_git_write_back_writes_each_regions_values_file_and_needs_no_ignore_rule() -> None:
    config = load("staging", imageUpdater={"writeBackMethod": "git", "gitBranch": "image-updates"})
    cr = m.image_updater(config)
    assert cr["spec"]["writeBackConfig"] == {"method": "git"}
    for region, ref in zip(config.region_names, cr["spec"]["applicationRefs"], strict=True):
        assert ref["writeBackConfig"] == {
            "method": "git",
            "gitConfig": {
                "branch": "image-updates",
                "writeBackTarget": f"helmvalues:/charts/shop/values-staging-{region}.yaml",
            },
        }
    assert "ignoreApplicationDifferences" not in m.application_set(config)["spec"]


# --- The ignore rule covers exactly what Image Updater writes ------------------------------------


def image_updater_write(app: dict[str, Any], image_cfg: dict[str, Any], tag: str) -> dict[str, Any]:
    """Image Updater's argocd write-back on a Helm Application, as SetHelmImage does it (v1.x):
    merge {name param: repository, tag param: tag}, each defaulting to image.name / image.tag."""
    target = image_cfg.get("manifestTargets", {}).get("helm", {})
    written = [
        {"name": target.get("name") or "image.name", "value": image_cfg["imageName"], "forceString": True},
        {"name": target.get("tag") or "image.tag", "value": tag, "forceString": True},
    ]
    live = copy.deepcopy(app)
    params = live["spec"]["source"].setdefault("helm", {}).setdefault("parameters", [])
    by_name = {p["name"]: p for p in params}
    for p in written:
        by_name[p["name"]] = p
    live["spec"]["source"]["helm"]["parameters"] = list(by_name.values())
    return live


def ignored(app: dict[str, Any], rules: list[dict[str, Any]]) -> dict[str, Any]:
    out: Any = app
    for rule in rules:
        for expression in rule.get("jqPathExpressions", []):
            out = jq_delete(out, expression)
        assert "jsonPointers" not in rule
    return normalise_application(out)


@pytest.mark.skipif(not jq_available(), reason="needs the jq binary to evaluate the jq expressions")
@pytest.mark.parametrize("stack", STACKS)
def test_ignore_rule_hides_the_parameter_list_and_nothing_else(stack: str) -> None:
    config = load(stack)
    rules = m.application_set(config)["spec"]["ignoreApplicationDifferences"]
    assert all("name" not in r for r in rules)  # applies to every generated Application
    refs = {r["namePattern"]: r for r in m.image_updater(config)["spec"]["applicationRefs"]}
    for desired in generated_applications(config).values():
        image_cfg = refs[desired["metadata"]["name"]]["images"][0]
        live = image_updater_write(desired, image_cfg, "20261122.063000-0123abc")
        assert live != desired
        # What Image Updater wrote is invisible to the controller's comparison, and so is a
        # parameter set by hand next to it: any visible element of the list would make the
        # merge patch replace the whole list, Image Updater's tag included
        # (tests/contracts/test_applicationset_merge_patch.py).
        assert ignored(live, rules) == ignored(desired, rules) == normalise_application(desired)
        by_hand = copy.deepcopy(live)
        by_hand["spec"]["source"]["helm"]["parameters"].append({"name": "replicaCount", "value": "9"})
        assert ignored(by_hand, rules) == ignored(desired, rules)
        # Everything else is still reconciled.
        moved = copy.deepcopy(live)
        moved["spec"]["source"]["targetRevision"] = "some-branch"
        assert ignored(moved, rules) != ignored(desired, rules)
        files = copy.deepcopy(live)
        files["spec"]["source"]["helm"]["valueFiles"] = ["values.yaml"]
        assert ignored(files, rules) != ignored(desired, rules)


@pytest.mark.skipif(not jq_available(), reason="needs the jq binary to evaluate the jq expressions")
def test_ignore_rule_removes_every_parameter_and_tolerates_none() -> None:
    config = load("staging")
    (rule,) = m.application_set(config)["spec"]["ignoreApplicationDifferences"]
    (expression,) = rule["jqPathExpressions"]
    written = {
        t
        for ref in m.image_updater(config)["spec"]["applicationRefs"]
        for image in ref["images"]
        for t in image["manifestTargets"]["helm"].values()
    }
    assert written == set(m.IMAGE_UPDATER_PARAMETERS)
    candidates = [*sorted(written), "image.prefix", "replicaCount"]
    helm = {"valueFiles": ["values.yaml"], "parameters": [{"name": n, "value": "v"} for n in candidates]}
    assert jq_delete({"spec": {"source": {"helm": helm}}}, expression) == {
        "spec": {"source": {"helm": {"valueFiles": ["values.yaml"]}}}
    }
    # An Application without parameters (before the first update) is left alone, no error.
    assert jq_delete({"spec": {"source": {"helm": {}}}}, expression) == {"spec": {"source": {"helm": {}}}}


# --- CRD validation of every custom resource (pure output) ---------------------------------------


@pytest.mark.shared
@pytest.mark.parametrize("stack", STACKS)
@pytest.mark.parametrize("write_back", ["argocd", "git"])
def test_custom_resources_validate_against_their_crds(stack: str, write_back: str) -> None:
    changes: dict[str, Any] = {}
    if write_back == "git":
        changes["imageUpdater"] = {"writeBackMethod": "git", "gitBranch": "image-updates"}
    config = load(stack, **changes)
    manifests = [
        m.application_set(config),
        m.app_project(config, [endpoint(r) for r in config.region_names]),
        m.image_updater(config),
    ]
    for manifest in manifests:
        assert crd_errors(manifest) == [], manifest["kind"]
    # The Applications the set generates are valid Applications too.
    for app in generated_applications(config).values():
        full = {"apiVersion": m.ARGOPROJ_API, "kind": "Application", **app}
        full["metadata"] = {**full["metadata"], "namespace": naming.ARGOCD_NAMESPACE}
        assert crd_errors(full) == []


@pytest.mark.shared
def test_crd_validation_catches_a_misspelt_field() -> None:
    """The validator is strict about unknown fields (the API server would silently prune them)."""
    appset = m.application_set(load("prod"))
    appset["spec"]["syncPolicy"]["preserveResourceOnDeletion"] = True
    assert any("preserveResourceOnDeletion" in e for e in crd_errors(appset))
    cr = m.image_updater(load("prod"))
    cr["spec"]["applicationRefs"][0]["images"][0]["manifestTargets"]["helm"]["tags"] = "image.tag"
    assert crd_errors(cr)
    wrong_version = {**cr, "apiVersion": "argocd-image-updater.argoproj.io/v1beta1"}
    assert crd_errors(wrong_version)


def test_manifest_targets_satisfy_the_crds_cel_rule() -> None:
    """CEL is not evaluated by the JSON Schema check: `exactly one of helm or kustomize`."""
    for ref in m.image_updater(load("staging"))["spec"]["applicationRefs"]:
        for image in ref["images"]:
            targets = image["manifestTargets"]
            assert ("helm" in targets) != ("kustomize" in targets)
