"""The traffic add-ons (issue 18, cluster side; issue 17's last add-ons): the AWS Load Balancer
Controller and ExternalDNS, as Argo CD's cluster generator renders their ApplicationSets for each
cluster and as ``helm template`` of the real chart packages renders those Applications.

Derived from the stack files: which stacks have a zone, which clusters run which add-on."""

from __future__ import annotations

import copy
import re
from pathlib import Path
from typing import Any

import pytest

from infra import addons, naming
from infra import config as cfg
from infra.config import StackConfig
from infra.manifests import argocd as manifests
from tests.addons_support import (
    chart_package,
    cluster_generator,
    cluster_scoped_kinds,
    cluster_secrets,
    fake_vpc_id,
    helm_template,
)
from tests.argocd_support import helm_template_application, rendered_objects
from tests.conftest import ROOT, stack_config_map, stack_names
from tests.contracts import upstream_traffic as up

STACKS = stack_names()
LBC = addons.LOAD_BALANCER_CONTROLLER
DNS = addons.EXTERNAL_DNS


def load(stack: str) -> StackConfig:
    return cfg.load_stack_file(stack)


def apps(config: StackConfig, addon: str) -> list[dict[str, Any]]:
    """The Applications the add-on's ApplicationSet generates from this stack's cluster Secrets."""
    secrets = list(cluster_secrets(config).values())
    return [
        app
        for app_set in addons.application_sets(config)
        if app_set["metadata"]["labels"][addons.LABEL_ADDON] == addon
        for app in cluster_generator(app_set, secrets)
    ]


def region_of(app: dict[str, Any]) -> str:
    return str(app["metadata"]["labels"][naming.LABEL_REGION])


def render(config: StackConfig, app: dict[str, Any], tmp_path: Path) -> list[dict[str, Any]]:
    source = app["spec"]["source"]
    package = chart_package(source["chart"], source["targetRevision"])
    return helm_template(app, package, tmp_path, config.region(region_of(app)).kubernetes_version + ".0")


def one(objects: list[dict[str, Any]], kind: str, name: str | None = None) -> dict[str, Any]:
    found = [o for o in objects if o["kind"] == kind and (name is None or o["metadata"]["name"] == name)]
    assert len(found) == 1, (kind, name, [o["metadata"]["name"] for o in found])
    return found[0]


def container_args(objects: list[dict[str, Any]]) -> list[str]:
    (container,) = one(objects, "Deployment")["spec"]["template"]["spec"]["containers"]
    return [str(a) for a in container["args"]]


def stacks_running(addon: str) -> list[str]:
    return [s for s in STACKS if load(s).addon_regions(addon)]


# --- which clusters run them ---------------------------------------------------------------------


@pytest.mark.parametrize("stack", STACKS)
def test_every_cluster_serving_the_storefront_runs_both_when_the_stack_has_a_zone(stack: str) -> None:
    """The application's ApplicationSet deploys the storefront to every cluster it selects; with a
    public zone each of those clusters needs the controller (its ALB) and ExternalDNS (its record).
    Without a zone, nothing needs ExternalDNS (and config refuses it)."""
    config = load(stack)
    secrets = list(cluster_secrets(config).values())
    serving = {region_of(a) for a in cluster_generator(manifests.application_set(config), secrets)}
    assert serving
    if config.traffic is None:
        assert not config.addon_regions(DNS)
        return
    assert serving <= set(config.addon_regions(LBC)), stack
    assert serving <= set(config.addon_regions(DNS)), stack


# --- AWS Load Balancer Controller ---------------------------------------------------------------


@pytest.mark.parametrize("stack", stacks_running(LBC))
def test_lb_controller_renders_with_the_clusters_facts_and_pod_identity(stack: str, tmp_path: Path) -> None:
    """clusterName, region and VPC from the cluster Secret's annotations reach the controller's
    arguments; its service account is the one the Pod Identity association names, with no IRSA
    annotation; the IngressClass ``alb`` is the controller's and not the cluster's default."""
    config = load(stack)
    generated = apps(config, LBC)
    assert sorted(region_of(a) for a in generated) == sorted(config.addon_regions(LBC))
    for app in generated:
        region = region_of(app)
        objects = render(config, app, tmp_path)
        args = container_args(objects)
        cluster = naming.cluster_name(config.environment, region)
        for expected in (
            f"--cluster-name={cluster}",
            f"--aws-region={region}",
            f"--aws-vpc-id={fake_vpc_id(region)}",
            f"--ingress-class={addons.INGRESS_CLASS}",
            "--default-target-type=ip",
        ):
            assert expected in args, (region, expected, args)
        account = one(objects, "ServiceAccount")
        assert account["metadata"]["name"] == addons.CATALOG[LBC].service_account
        assert account["metadata"]["namespace"] == addons.CATALOG[LBC].namespace
        assert "eks.amazonaws.com/role-arn" not in (account["metadata"].get("annotations") or {})
        deployment = one(objects, "Deployment")
        assert deployment["spec"]["template"]["spec"]["serviceAccountName"] == account["metadata"]["name"]
        assert deployment["spec"]["replicas"] >= 2
        assert one(objects, "PodDisruptionBudget")["spec"]["maxUnavailable"] == 1
        ingress_class = one(objects, "IngressClass", addons.INGRESS_CLASS)
        assert ingress_class["spec"]["controller"] == "ingress.k8s.aws/alb"
        assert "ingressclass.kubernetes.io/is-default-class" not in (
            ingress_class["metadata"].get("annotations") or {}
        )


@pytest.mark.parametrize("stack", stacks_running(LBC))
def test_lb_controller_webhooks_never_block_services_and_validate_ingresses(
    stack: str, tmp_path: Path
) -> None:
    """No webhook of the controller is called for Services (the Service mutator is off), so a
    Service is created whether or not the controller runs; Ingresses are validated by it and
    fail closed (``failurePolicy: Fail``): an Ingress is admitted only once the controller
    answers, which docs/addons.md states for day 0 and a rebuilt region. Pod webhooks apply only
    to namespaces or pods that opt in by label."""
    config = load(stack)
    app = apps(config, LBC)[0]
    objects = render(config, app, tmp_path)
    hooks = [
        h
        for kind in ("MutatingWebhookConfiguration", "ValidatingWebhookConfiguration")
        for h in one(objects, kind)["webhooks"]
    ]
    for hook in hooks:
        resources = {r for rule in hook["rules"] for r in rule["resources"]}
        assert "services" not in resources, hook["name"]
        if "pods" in resources:
            selectors = str(hook.get("namespaceSelector")) + str(hook.get("objectSelector"))
            assert "elbv2.k8s.aws/" in selectors, hook["name"]
    (ingress,) = [h for h in hooks if "ingresses" in {r for rule in h["rules"] for r in rule["resources"]}]
    assert ingress["failurePolicy"] == "Fail"
    assert not ingress.get("namespaceSelector") and not ingress.get("objectSelector")


@pytest.mark.parametrize("stack", [s for s in STACKS if load(s).traffic is not None])
def test_every_region_serving_the_storefront_gives_its_pods_the_load_balancers_readiness_gate(
    stack: str, tmp_path: Path
) -> None:
    """Each shop Application (one per cluster the ApplicationSet selects) has Argo CD label its
    release namespace for the readiness gate, and that region's controller renders a pod webhook
    that the labelled namespace and the storefront's pods reach, with the gate injection on
    (aws-load-balancer-controller chart 3.5.0: ``--enable-pod-readiness-gate-inject`` only when
    ``enablePodReadinessGateInject`` is set, the flag's default is true)."""
    config = load(stack)
    secrets = list(cluster_secrets(config).values())
    controllers = {region_of(a): a for a in apps(config, LBC)}
    shop = cluster_generator(manifests.application_set(config), secrets)
    assert shop
    for app in shop:
        region = region_of(app)
        policy = app["spec"]["syncPolicy"]
        assert "CreateNamespace=true" in policy["syncOptions"]
        labels = {
            **policy["managedNamespaceMetadata"]["labels"],
            "kubernetes.io/metadata.name": app["spec"]["destination"]["namespace"],
        }
        assert app["spec"]["destination"]["namespace"] == config.application.namespace
        objects = render(config, controllers[region], tmp_path)
        assert not [a for a in container_args(objects) if a.startswith("--enable-pod-readiness-gate-inject")]
        # The readiness gate's webhook (chart templates/webhook.yaml; the others on pods are the
        # QUIC and target-control ones, with labels of their own).
        (hook,) = [
            h
            for h in one(objects, "MutatingWebhookConfiguration")["webhooks"]
            if h["name"] == "mpod.elbv2.k8s.aws"
        ]
        assert {"pods"} == {r for rule in hook["rules"] for r in rule["resources"]}
        assert "CREATE" in {o for rule in hook["rules"] for o in rule["operations"]}
        # Fails open: while no controller pod answers, pods are created without the gate.
        assert hook["failurePolicy"] == "Ignore"
        assert up.lbc_selector_matches(hook.get("namespaceSelector"), labels), (region, hook)
        assert up.lbc_selector_matches(hook.get("objectSelector"), {"app.kubernetes.io/name": "shop"}), hook
        # The namespace without the label is not selected: the label is what turns the gate on.
        assert not up.lbc_selector_matches(
            hook.get("namespaceSelector"), {"kubernetes.io/metadata.name": "x"}
        )


@pytest.mark.parametrize("stack", stacks_running(LBC))
def test_the_generated_webhook_certificate_is_applied_once_then_left_alone(
    stack: str, tmp_path: Path
) -> None:
    """The chart generates a new CA on every render (two renders differ), and within one render
    the Secret's CA is every webhook's caBundle. The Application ignores exactly those fields and
    syncs with RespectIgnoreDifferences, so Argo CD creates them from one render and never
    replaces the CA under the running pods."""
    config = load(stack)
    app = apps(config, LBC)[0]
    first, second = render(config, app, tmp_path), render(config, app, tmp_path)
    secret = one(first, "Secret", addons.LOAD_BALANCER_CONTROLLER_TLS_SECRET)
    assert secret["data"]["ca.crt"] != one(second, "Secret")["data"]["ca.crt"]
    for kind in ("MutatingWebhookConfiguration", "ValidatingWebhookConfiguration"):
        config_object = one(first, kind, addons.LOAD_BALANCER_CONTROLLER_WEBHOOK)
        assert {h["clientConfig"]["caBundle"] for h in config_object["webhooks"]} == {
            secret["data"]["ca.crt"]
        }
    ignored = app["spec"]["ignoreDifferences"]
    assert {(d["kind"], d["name"]) for d in ignored} == {
        ("Secret", addons.LOAD_BALANCER_CONTROLLER_TLS_SECRET),
        ("MutatingWebhookConfiguration", addons.LOAD_BALANCER_CONTROLLER_WEBHOOK),
        ("ValidatingWebhookConfiguration", addons.LOAD_BALANCER_CONTROLLER_WEBHOOK),
    }
    for d in ignored:
        group = one(first, d["kind"], d["name"])["apiVersion"].rpartition("/")[0]
        assert d["group"] == group
    assert "RespectIgnoreDifferences=true" in app["spec"]["syncPolicy"]["syncOptions"]
    # The other add-ons keep Argo CD's plain sync.
    for other in addons.enabled(config):
        if not other.ignore_differences:
            for a in apps(config, other.name):
                assert "RespectIgnoreDifferences=true" not in a["spec"]["syncPolicy"]["syncOptions"]


@pytest.mark.parametrize("addon", [LBC, DNS])
def test_the_appproject_allows_exactly_the_cluster_kinds_the_chart_renders(
    addon: str, tmp_path: Path
) -> None:
    stack = next(iter(stacks_running(addon)), None)
    if stack is None:
        pytest.skip(f"no stack runs {addon}")
    config = load(stack)
    rendered = cluster_scoped_kinds(render(config, apps(config, addon)[0], tmp_path))
    assert rendered == set(addons.CATALOG[addon].cluster_kinds)


@pytest.mark.parametrize("stack", STACKS)
def test_the_shop_chart_renders_no_load_balancer_service(stack: str) -> None:
    """The Service webhook the controller's values turn off acts only on ``type: LoadBalancer``
    Services (tests/contracts/test_traffic_addons.py); the storefront's way in is an Ingress, so
    the shop chart renders none, in any region."""
    config = load(stack)
    secrets = list(cluster_secrets(config).values())
    for app in cluster_generator(manifests.application_set(config), secrets):
        app = copy.deepcopy(app)
        app["spec"]["source"]["helm"]["parameters"] = [
            {"name": "image.tag", "value": "20260101.000000-abcdef0"}
        ]
        kube = config.region(region_of(app)).kubernetes_version + ".0"
        objects = rendered_objects(helm_template_application(app, ROOT, kube))
        services = [o for o in objects if o["kind"] == "Service"]
        assert services
        assert all(s["spec"].get("type", "ClusterIP") != "LoadBalancer" for s in services), region_of(app)


# --- ExternalDNS ---------------------------------------------------------------------------------


@pytest.mark.parametrize("stack", stacks_running(DNS))
def test_external_dns_renders_for_the_stacks_zone_with_the_clusters_owner_id(
    stack: str, tmp_path: Path
) -> None:
    """Each cluster's ExternalDNS reads Ingresses only, writes Route 53 (policy sync, TXT registry)
    in platform:traffic's public zone only, as the owner named after its cluster; the AWS SDK's
    region is the cluster's; the service account is the Pod Identity association's, with no IRSA
    annotation."""
    config = load(stack)
    assert config.traffic is not None
    generated = apps(config, DNS)
    assert sorted(region_of(a) for a in generated) == sorted(config.addon_regions(DNS))
    owners = set()
    for app in generated:
        region = region_of(app)
        objects = render(config, app, tmp_path)
        args = container_args(objects)
        owner = addons.external_dns_owner_id(config, region)
        owners.add(owner)
        assert [a for a in args if a.startswith("--source=")] == ["--source=ingress"]
        for expected in (
            "--provider=aws",
            "--policy=sync",
            "--registry=txt",
            f"--txt-owner-id={owner}",
            f"--domain-filter={config.traffic.zone_name}",
            f"--zone-id-filter={config.traffic.hosted_zone_id}",
            "--aws-zone-type=public",
        ):
            assert expected in args, (region, expected, args)
        (container,) = one(objects, "Deployment")["spec"]["template"]["spec"]["containers"]
        assert {"name": "AWS_DEFAULT_REGION", "value": region} in container["env"]
        account = one(objects, "ServiceAccount")
        assert account["metadata"]["name"] == addons.CATALOG[DNS].service_account
        assert account["metadata"]["namespace"] == addons.CATALOG[DNS].namespace
        assert "eks.amazonaws.com/role-arn" not in (account["metadata"].get("annotations") or {})
    assert len(owners) == len(generated)


# --- config --------------------------------------------------------------------------------------


def test_external_dns_without_a_zone_is_refused_naming_the_key() -> None:
    raw = stack_config_map("staging")
    raw.pop("platform:traffic", None)
    raw.setdefault("platform:addons", {})[DNS] = {"chartVersion": "1.21.1"}
    with pytest.raises(cfg.ConfigError, match=r"platform:addons\.external-dns.*set platform:traffic"):
        cfg.from_flat(raw, "staging")


def test_a_stack_without_a_zone_still_loads_and_runs_no_external_dns() -> None:
    raw = stack_config_map("staging")
    raw.pop("platform:traffic", None)
    raw.get("platform:addons", {}).pop(DNS, None)
    config = cfg.from_flat(raw, "staging")
    assert config.traffic is None
    assert DNS not in {a.name for a in addons.enabled(config)}
    with pytest.raises(ValueError, match="platform:traffic"):
        addons.external_dns_values(config, None)


@pytest.mark.parametrize(
    ("key", "value", "message"),
    [
        ("hostedZoneId", "zone-1", r"platform:traffic\.hostedZoneId: \"zone-1\".*Route 53 hosted zone ID"),
        ("zoneName", "Shop.Example", r"platform:traffic\.zoneName: \"Shop.Example\".*DNS name"),
    ],
)
def test_a_bad_traffic_key_is_refused_naming_it(key: str, value: str, message: str) -> None:
    raw = stack_config_map("staging")
    raw["platform:traffic"] = {
        "hostedZoneId": "Z0123456789ABCDEFGHIJ",
        "zoneName": "shop.example.com",
        key: value,
    }
    with pytest.raises(cfg.ConfigError, match=message):
        cfg.from_flat(raw, "staging")


# --- docs agree with the stack files ------------------------------------------------------------


def test_the_docs_table_of_what_each_cluster_runs_is_the_plan_summary() -> None:
    """docs/addons.md "What each cluster runs": each ``every <env> cluster`` row lists exactly the
    GitOps add-ons and versions every cluster of that stack runs (infra.addons.plan_summary); its
    EKS managed add-ons column is checked against the plan (tests/stack/test_addons_stack.py)."""
    text = (ROOT / "docs" / "addons.md").read_text()
    rows = dict(re.findall(r"^\| every (\w+) cluster \| (.+?) \| .+? \|$", text, re.M))
    assert rows
    for stack in STACKS:
        config = load(stack)
        summaries = addons.plan_summary(config)
        if config.environment not in rows:
            continue
        documented = dict(item.rsplit(" ", 1) for item in rows[config.environment].split(", "))
        for region, summary in summaries.items():
            assert summary == documented, (stack, region)


def test_every_addon_role_name_fits_iam_for_any_environment_and_region() -> None:
    """IAM role names have at most 64 characters: the longest environment name config accepts (12)
    in the longest region name it knows, for every add-on that gets a role."""
    raw = stack_config_map("staging")
    raw["platform:environment"] = "e" * 12
    long_env = cfg.from_flat(raw, "staging")
    longest_region = max(cfg.KNOWN_REGIONS, key=len)
    for addon in addons.CATALOG.values():
        if addon.service_account is not None:
            name = addons.addon_role_name(long_env, longest_region, addon.name)
            assert len(name) <= addons.ROLE_NAME_MAX, name


@pytest.mark.parametrize("stack", stacks_running(DNS))
def test_the_docs_name_the_labels_and_annotations_the_traffic_addons_put_on_the_secret(stack: str) -> None:
    """docs/addons.md ("What the other parts rely on") lists the Secret labels and per-add-on
    annotations of the two traffic add-ons exactly as the program writes them."""
    config = load(stack)
    text = (ROOT / "docs" / "addons.md").read_text()
    bullet = text[text.index("* Cluster Secret annotations (GitOps Bridge names)") :]
    bullet = bullet[: bullet.index("\n* ")]
    documented = set(re.findall(r"`([a-z_]+)`", bullet))
    region = config.addon_regions(DNS)[0]
    secret = cluster_secrets(config)[region]["metadata"]
    expected = {addons.enable_label(LBC), addons.enable_label(DNS)}
    for name in (LBC, DNS):
        expected |= {
            addons.namespace_annotation(name),
            addons.service_account_annotation(name),
            addons.role_arn_annotation(name),
        }
    expected |= {addons.ANNOTATION_CLUSTER_NAME, addons.ANNOTATION_REGION, addons.ANNOTATION_VPC}
    assert documented == expected
    assert expected <= set(secret["labels"]) | set(secret["annotations"])
