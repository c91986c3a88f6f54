"""External Secrets Operator through Pod Identity (issue 17): the cluster's store, the shop
chart's ExternalSecrets, Argo CD's repository credentials, and the IAM behind them.

Derived from the stack files and the chart's value files; rendered with the real charts."""

from __future__ import annotations

import copy
import fnmatch
from pathlib import Path
from typing import Any

import pytest

from infra import addons, naming
from infra import config as cfg
from infra.config import StackConfig
from infra.documents import addons_iam
from infra.manifests import argocd as manifests
from tests.addons_support import (
    addon_crd_errors,
    chart_package,
    cluster_generator,
    cluster_secrets,
    helm_template,
)
from tests.argocd_support import helm_template_application, rendered_objects
from tests.conftest import ROOT, stack_names

STACKS = stack_names()
ESO = "external-secrets"
TAG = "20260101.000000-abcdef0"


def load(stack: str) -> StackConfig:
    return cfg.load_stack_file(stack)


def shop_release(config: StackConfig, region: str) -> list[dict[str, Any]]:
    """The shop chart as Argo CD renders it in ``region`` (value files in order, a tag)."""
    secrets = list(cluster_secrets(config).values())
    (app,) = [
        a
        for a in cluster_generator(manifests.application_set(config), secrets)
        if a["metadata"]["labels"][naming.LABEL_REGION] == region
    ]
    app = copy.deepcopy(app)
    app["spec"]["source"]["helm"]["parameters"] = [{"name": "image.tag", "value": TAG}]
    kube = config.region(region).kubernetes_version + ".0"
    return rendered_objects(helm_template_application(app, ROOT, kube))


def eso_release(config: StackConfig, region: str, tmp_path: Path) -> list[dict[str, Any]]:
    secrets = list(cluster_secrets(config).values())
    apps = [
        a
        for s in addons.application_sets(config)
        if s["metadata"]["labels"][addons.LABEL_ADDON] == ESO
        for a in cluster_generator(s, secrets)
        if a["metadata"]["labels"][naming.LABEL_REGION] == region
    ]
    assert len(apps) == 1, (region, [a["metadata"]["name"] for a in apps])
    source = apps[0]["spec"]["source"]
    package = chart_package(source["chart"], source["targetRevision"])
    return helm_template(apps[0], package, tmp_path, config.region(region).kubernetes_version + ".0")


# --- the shop chart: an ExternalSecret per service secret -----------------------------------


@pytest.mark.parametrize("stack", STACKS)
def test_each_service_with_secrets_gets_its_external_secret_and_reads_it(
    stack: str, shared_dir: Path
) -> None:
    config = load(stack)
    checked = 0
    for region in config.region_names:
        objects = shop_release(config, region)
        externals = {o["metadata"]["name"]: o for o in objects if o["kind"] == "ExternalSecret"}
        deployments = {o["metadata"]["name"]: o for o in objects if o["kind"] in ("Deployment", "Rollout")}
        for name, deployment in deployments.items():
            container = deployment["spec"]["template"]["spec"]["containers"][0]
            from_secret = {
                e["name"]: e["valueFrom"]["secretKeyRef"]
                for e in container.get("env", [])
                if "valueFrom" in e and "secretKeyRef" in e["valueFrom"]
            }
            external = externals.get(name)
            if not from_secret:
                assert external is None, name
                continue
            checked += 1
            assert external is not None, f"{name} reads a Secret no ExternalSecret writes"
            assert addon_crd_errors(external) == [], name
            spec = external["spec"]
            assert spec["secretStoreRef"] == {"kind": "ClusterSecretStore", "name": addons.SECRET_STORE}
            assert spec["target"]["name"] == name
            assert {ref["name"] for ref in from_secret.values()} == {name}
            assert {d["secretKey"] for d in spec["data"]} == set(from_secret)
            service = name.removeprefix("shop-")
            for d in spec["data"]:
                assert d["remoteRef"] == {
                    "key": f"{addons.application_secrets_prefix(config)}/{service}",
                    "property": d["secretKey"],
                }
                # The application store's role may read it, in this region.
                (app_store,) = [
                    s for s in addons.store_roles(config, region) if s.store == addons.SECRET_STORE
                ]
                arn = f"arn:aws:secretsmanager:{region}:{config.account_id}:secret:{d['remoteRef']['key']}-AbCdEf"
                assert any(fnmatch.fnmatchcase(arn, pattern) for pattern in app_store.secrets)
            assert ESO in addons.cluster_addons(config, region), region
            # Argo CD applies it (and waits for it) before the Deployment.
            assert int(external["metadata"]["annotations"]["argocd.argoproj.io/sync-wave"]) < 0
    assert checked, f"no service of {stack} lists secrets; nothing was checked"


def test_the_chart_names_the_store_every_cluster_has() -> None:
    import yaml

    values = yaml.safe_load((ROOT / "charts" / "shop" / "values.yaml").read_text())
    assert values["externalSecrets"]["store"] == addons.SECRET_STORE


@pytest.mark.parametrize("stack", STACKS)
def test_no_secret_value_in_git(stack: str) -> None:
    """Value files list secret *names*; the chart's schema takes only names, and no value file
    holds a key that looks like a credential value."""
    import yaml

    config = load(stack)
    for path in sorted((ROOT / "charts" / "shop").glob("values*.yaml")):
        values = yaml.safe_load(path.read_text()) or {}
        for name, svc in (values.get("services") or {}).items():
            for key in (svc or {}).get("secrets") or []:
                assert isinstance(key, str) and key.isidentifier(), (path.name, name, key)
    assert addons.application_secrets_prefix(config).startswith(addons_iam.secrets_prefix(config.environment))


# --- the cluster's store and Argo CD's repository credentials --------------------------------


@pytest.mark.parametrize("stack", STACKS)
def test_every_cluster_running_eso_has_its_regional_store_and_the_hub_its_repo_creds(
    stack: str, tmp_path: Path
) -> None:
    config = load(stack)
    regions = config.addon_regions(ESO)
    assert regions, f"{stack} does not run {ESO}"
    for region in regions:
        objects = eso_release(config, region, tmp_path)
        stores = {o["metadata"]["name"]: o for o in objects if o["kind"] == "ClusterSecretStore"}
        # One store per consumer, each usable from its namespace only and reading with its role.
        expected = {r.store: r for r in addons.store_roles(config, region)}
        assert (
            set(stores)
            == set(expected)
            == (
                {addons.SECRET_STORE, addons.ARGOCD_SECRET_STORE}
                if region == config.hub_region
                else {addons.SECRET_STORE}
            )
        )
        for name, store in stores.items():
            assert addon_crd_errors(store) == [], name
            assert store["spec"]["provider"]["aws"] == {
                "service": "SecretsManager",
                "region": region,
                "role": addons.store_role_arn(config, region, expected[name].consumer),
            }
            assert "auth" not in store["spec"]["provider"]["aws"], "the controller's Pod Identity, no keys"
            (condition,) = store["spec"]["conditions"]
            assert tuple(condition["namespaces"]) == expected[name].namespaces
        repo_creds = [o for o in objects if o["kind"] == "ExternalSecret"]
        if region != config.hub_region:
            assert repo_creds == []
            continue
        (creds,) = repo_creds
        assert addon_crd_errors(creds) == []
        assert creds["metadata"]["namespace"] == naming.ARGOCD_NAMESPACE
        template = creds["spec"]["target"]["template"]
        assert template["metadata"]["labels"]["argocd.argoproj.io/secret-type"] == "repo-creds"
        assert template["data"]["url"] == config.application.repo_url
        assert creds["spec"]["dataFrom"] == [{"extract": {"key": addons.repo_creds_secret_name(config)}}]
        assert creds["spec"]["secretStoreRef"]["name"] == addons.ARGOCD_SECRET_STORE
        # The controller's service account is the one the Pod Identity association names.
        accounts = {
            (o["metadata"]["namespace"], o["metadata"]["name"])
            for o in objects
            if o["kind"] == "ServiceAccount"
        }
        assert (addons.EXTERNAL_SECRETS_NAMESPACE, addons.EXTERNAL_SECRETS_SERVICE_ACCOUNT) in accounts
        deployments = [
            o for o in objects if o["kind"] == "Deployment" and "webhook" not in o["metadata"]["name"]
        ]
        assert any(
            d["spec"]["template"]["spec"].get("serviceAccountName") == addons.EXTERNAL_SECRETS_SERVICE_ACCOUNT
            for d in deployments
        )


# --- IAM: least privilege, bound to the exact service account --------------------------------


@pytest.mark.parametrize("stack", STACKS)
def test_external_secrets_role_reads_only_its_environments_secrets_in_its_region(stack: str) -> None:
    """The controller's role reads nothing itself: it may only assume its cluster's store roles;
    the application's store role reads the application's prefix, Argo CD's (hub only) exactly
    Argo CD's secrets, so neither reads the other's."""
    config = load(stack)
    for region, addon in addons.identities(config):
        if addon.name != ESO:
            continue
        assert addon.policy is not None
        stores = {s.consumer: s for s in addons.store_roles(config, region)}
        (statement,) = addon.policy(config, region)["Statement"]
        assert statement["Effect"] == "Allow"
        assert statement["Action"] == ["sts:AssumeRole", "sts:TagSession"]
        assert statement["Resource"] == sorted(addons.store_role_arn(config, region, c) for c in stores)
        assert set(stores) == ({"app", "argocd"} if region == config.hub_region else {"app"})
        secret = f"arn:aws:secretsmanager:{region}:{config.account_id}:secret:"
        app_key = secret + f"{addons.application_secrets_prefix(config)}/cart-AbCdEf"
        argocd_key = secret + f"{addons.repo_creds_secret_name(config)}-AbCdEf"
        assert [p for p in stores["app"].secrets if fnmatch.fnmatchcase(app_key, p)]
        assert not [p for p in stores["app"].secrets if fnmatch.fnmatchcase(argocd_key, p)]
        if "argocd" in stores:
            assert [p for p in stores["argocd"].secrets if fnmatch.fnmatchcase(argocd_key, p)]
            assert not [p for p in stores["argocd"].secrets if fnmatch.fnmatchcase(app_key, p)]
            # Exactly the named secret, not one whose name merely starts with it.
            longer = secret + f"{addons.repo_creds_secret_name(config)}-x-AbCdEf"
            assert not [p for p in stores["argocd"].secrets if fnmatch.fnmatchcase(longer, p)]
        for store in stores.values():
            assert all(
                p.startswith(secret + addons_iam.secrets_prefix(config.environment)) for p in store.secrets
            )
            trust = addons_iam.external_secrets_store_trust_policy(addons.role_arn(config, region, ESO))
            (t,) = trust["Statement"]
            assert t["Principal"] == {"AWS": addons.role_arn(config, region, ESO)} and "Condition" not in t
        trust = addons_iam.addon_trust_policy(
            config.account_id, config.environment, region, addon.namespace, str(addon.service_account)
        )
        condition = trust["Statement"][0]["Condition"]["StringEquals"]
        assert condition["aws:RequestTag/eks-cluster-name"] == naming.cluster_name(config.environment, region)
        assert condition["aws:RequestTag/kubernetes-namespace"] == addons.EXTERNAL_SECRETS_NAMESPACE
        assert condition["aws:RequestTag/kubernetes-service-account"] == [
            addons.EXTERNAL_SECRETS_SERVICE_ACCOUNT
        ]
        assert trust["Statement"][0]["Principal"] == {"Service": "pods.eks.amazonaws.com"}


@pytest.mark.parametrize("stack", STACKS)
def test_the_cluster_secret_carries_the_eso_role_and_service_account(stack: str) -> None:
    config = load(stack)
    for region, secret in cluster_secrets(config).items():
        annotations = secret["metadata"]["annotations"]
        if region not in config.addon_regions(ESO):
            assert addons.service_account_annotation(ESO) not in annotations
            continue
        assert annotations[addons.service_account_annotation(ESO)] == addons.EXTERNAL_SECRETS_SERVICE_ACCOUNT
        assert annotations[addons.role_arn_annotation(ESO)] == (
            f"arn:aws:iam::{config.account_id}:role/{addons.addon_role_name(config, region, ESO)}"
        )
        for store in addons.store_roles(config, region):
            assert annotations[addons.store_role_annotation(store.consumer)] == addons.store_role_arn(
                config, region, store.consumer
            )
