"""Contracts: the load balancer's readiness gate on the storefront's pods.

With target type ``ip`` the ALB sends to pod IPs; a pod is ready for the Deployment, a Rollout's
canary step or a PodDisruptionBudget only once the ALB has registered it and found it healthy,
through the AWS Load Balancer Controller's readiness gate. The controller injects it into pods of
namespaces labelled for it; the shop ApplicationSet has Argo CD put that label on the release
namespace (infra.manifests.argocd.managed_namespace_metadata). Each test names its source.
"""

from __future__ import annotations

import pytest

from infra import addons, deploy_model
from infra import config as cfg
from infra.manifests import argocd as manifests
from tests.addons_support import cluster_generator, cluster_secrets
from tests.conftest import stack_config_map, stack_names
from tests.contracts import upstream
from tests.contracts import upstream_traffic as up

LABEL = manifests.POD_READINESS_GATE_INJECT_LABEL
STACKS = stack_names()
WITH_TRAFFIC = [s for s in STACKS if cfg.load_stack_file(s).traffic is not None]


def applications(stack: str) -> list[dict[str, object]]:
    config = cfg.load_stack_file(stack)
    return cluster_generator(manifests.application_set(config), list(cluster_secrets(config).values()))


@pytest.mark.parametrize("stack", WITH_TRAFFIC)
@pytest.mark.parametrize("exists", [False, True], ids=["new namespace", "existing namespace"])
def test_argo_cd_labels_the_release_namespace_new_or_existing_before_the_chart(
    stack: str, exists: bool
) -> None:
    """argoproj/argo-cd v3.4.4 controller/sync_namespace.go ``syncNamespace`` (and
    docs/user-guide/sync-options.md, "Namespace Metadata"): with ``CreateNamespace=true`` in the
    operation's options and ``managedNamespaceMetadata`` in the Application's sync policy, the
    namespace is synced with those labels whether it is new or already exists, by server-side apply
    (existing labels of other managers stay), in the PreSync phase
    (gitops-engine/pkg/sync/sync_context.go). Both ways a sync starts: auto-sync and the API
    server copy the Application's options; the prod deploy writes them itself
    (infra.deploy_model.sync_options)."""
    apps = applications(stack)
    assert apps
    for app in apps:
        policy = app["spec"]["syncPolicy"]  # type: ignore[index]
        for options in (policy["syncOptions"], deploy_model.sync_options(app)):
            ns = upstream.argocd_sync_namespace(options, policy, namespace_exists=exists)
            assert ns is not None and ns["phase"] == "PreSync"
            assert ns["metadata"]["labels"][LABEL] == manifests.POD_READINESS_GATE_INJECT_VALUE
            assert ns["metadata"]["annotations"]["argocd.argoproj.io/sync-options"] == "ServerSideApply=true"
    # Without managedNamespaceMetadata an existing namespace is left as it is: no label.
    assert upstream.argocd_sync_namespace(["CreateNamespace=true"], {}, namespace_exists=True) is None


@pytest.mark.parametrize("stack", STACKS)
def test_without_a_load_balancer_the_namespace_gets_no_label(stack: str) -> None:
    """No platform:traffic, no Ingress, no target group: nothing for the gate to wait for, and
    the Applications keep Argo CD's default (an existing namespace is left alone)."""
    raw = stack_config_map(stack)
    raw.pop("platform:traffic", None)
    raw.get("platform:addons", {}).pop(addons.EXTERNAL_DNS, None)
    config = cfg.from_flat(raw, stack)
    assert config.traffic is None
    apps = cluster_generator(manifests.application_set(config), list(cluster_secrets(config).values()))
    assert apps
    for app in apps:
        assert "managedNamespaceMetadata" not in app["spec"]["syncPolicy"]  # type: ignore[index]


def test_the_controller_gates_only_pods_behind_an_ip_target_group() -> None:
    """kubernetes-sigs/aws-load-balancer-controller v3.5.0 docs/deploy/pod_readiness_gate.md and
    pkg/inject/pod_readiness/pod_readiness_gate.go ``Mutate``: a pod created in a labelled
    namespace gets ``target-health.elbv2.k8s.aws/<binding>`` for each TargetGroupBinding of type
    ``ip`` whose Service selects it, and nothing else; ``instance`` targets get no gate, and the
    platform's controller runs with ``defaultTargetType: ip`` and the chart's Ingresses ask for
    ``ip`` (infra/addons.py, charts/shop/templates/ingress.yaml)."""
    assert (
        addons.load_balancer_controller_values(cfg.load_stack_file(STACKS[0]), None)["defaultTargetType"]
        == "ip"
    )
    web = {"app.kubernetes.io/name": "shop", "app.kubernetes.io/component": "web"}
    catalog = {"app.kubernetes.io/name": "shop", "app.kubernetes.io/component": "catalog"}
    services = {"shop-web-stable": web, "shop-web-canary": web, "shop-catalog": catalog}
    bindings = [
        {"name": "k8s-shop-web-stable", "serviceName": "shop-web-stable", "targetType": "ip"},
        {"name": "k8s-shop-web-canary", "serviceName": "shop-web-canary", "targetType": "ip"},
    ]
    gates = up.lbc_pod_readiness_gates(
        inject_enabled=True, pod_labels=web, target_group_bindings=bindings, services=services
    )
    assert gates == [
        f"{up.LBC_READINESS_GATE_PREFIX}/k8s-shop-web-stable",
        f"{up.LBC_READINESS_GATE_PREFIX}/k8s-shop-web-canary",
    ]
    assert (
        up.lbc_pod_readiness_gates(
            inject_enabled=True, pod_labels=catalog, target_group_bindings=bindings, services=services
        )
        == []
    )
    instance = [{**b, "targetType": "instance"} for b in bindings]
    assert (
        up.lbc_pod_readiness_gates(
            inject_enabled=True, pod_labels=web, target_group_bindings=instance, services=services
        )
        == []
    )
    assert (
        up.lbc_pod_readiness_gates(
            inject_enabled=False, pod_labels=web, target_group_bindings=bindings, services=services
        )
        == []
    )


def test_the_pod_webhook_is_called_only_in_labelled_namespaces() -> None:
    """The chart's MutatingWebhookConfiguration webhook ``mpod.elbv2.k8s.aws`` (aws-load-balancer-
    controller chart 3.5.0 templates/webhook.yaml, no ``webhookNamespaceSelectors``): namespace
    selector ``elbv2.k8s.aws/pod-readiness-gate-inject In [enabled]``, as the docs require. The
    rendered webhook is checked per region in tests/unit/test_addon_traffic.py."""
    selector = {"matchExpressions": [{"key": LABEL, "operator": "In", "values": ["enabled"]}]}
    assert up.lbc_selector_matches(selector, {LABEL: manifests.POD_READINESS_GATE_INJECT_VALUE})
    assert not up.lbc_selector_matches(selector, {"kubernetes.io/metadata.name": "shop"})
