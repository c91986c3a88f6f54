"""Contracts: the load balancer's readiness gate on the storefront's pods.

With target type ``ip`` the ALB sends to pod IPs; a pod is ready for the Deployment, a Rollout's
canary step or a PodDisruptionBudget only once the ALB has registered it and found it healthy,
through the AWS Load Balancer Controller's readiness gate. The controller injects it into pods of
namespaces labelled for it, for the Services that select the pod when it is created; the shop
ApplicationSet has Argo CD put that label on the release namespace
(infra.manifests.argocd.managed_namespace_metadata), and the chart's Rollout uses Ping-Pong so
the canary Service selects a release's pods before they exist. Each test names its source.
"""

from __future__ import annotations

from typing import Any

import pytest

from infra import addons, deploy_model
from infra import config as cfg
from infra.manifests import argocd as manifests
from tests.addons_support import cluster_generator, cluster_secrets
from tests.conftest import stack_config_map, stack_names
from tests.contracts import rollouts_upstream as rollouts
from tests.contracts import upstream
from tests.contracts import upstream_traffic as up
from tests.contracts.test_rollouts_contracts import argocd_render, canary_combos

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
    # A pod of ReplicaSet "a" of the web Rollout, and Services as Rollouts leaves them: the pong
    # one pinned to that ReplicaSet (rollouts-pod-template-hash), the ping one to another.
    hash_key = rollouts.DEFAULT_ROLLOUT_UNIQUE_LABEL_KEY
    web = {"app.kubernetes.io/name": "shop", "app.kubernetes.io/component": "web"}
    catalog = {"app.kubernetes.io/name": "shop", "app.kubernetes.io/component": "catalog"}
    services = {
        "shop-web-ping": {**web, hash_key: "b"},
        "shop-web-pong": {**web, hash_key: "a"},
        "shop-catalog": catalog,
    }
    bindings = [
        {"name": "k8s-shop-web-ping", "serviceName": "shop-web-ping", "targetType": "ip"},
        {"name": "k8s-shop-web-pong", "serviceName": "shop-web-pong", "targetType": "ip"},
    ]
    gates = up.lbc_pod_readiness_gates(
        inject_enabled=True,
        pod_labels={**web, hash_key: "a"},
        target_group_bindings=bindings,
        services=services,
    )
    assert gates == [f"{up.LBC_READINESS_GATE_PREFIX}/k8s-shop-web-pong"]
    assert (
        up.lbc_pod_readiness_gates(
            inject_enabled=True, pod_labels=catalog, target_group_bindings=bindings, services=services
        )
        == []
    )
    web_a = {**web, hash_key: "a"}
    instance = [{**b, "targetType": "instance"} for b in bindings]
    assert (
        up.lbc_pod_readiness_gates(
            inject_enabled=True, pod_labels=web_a, target_group_bindings=instance, services=services
        )
        == []
    )
    assert (
        up.lbc_pod_readiness_gates(
            inject_enabled=False, pod_labels=web_a, target_group_bindings=bindings, services=services
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


def _release_gates(
    rollout: dict[str, Any],
    rendered: dict[str, dict[str, str]],
    *,
    stable_ping_pong: str,
    stable_hash: str | None,
) -> tuple[str, str, list[str]]:
    """(stable Service, canary Service, the gates a pod of the release's new ReplicaSet gets):
    the Services' selectors at the pod's creation (rollouts_upstream), one ip TargetGroupBinding
    per Service the forward action names (the controller makes one per Ingress backend service)."""
    new_hash = "new"
    stable, canary = rollouts.stable_and_canary_services(rollout, stable_ping_pong)
    selectors = rollouts.service_selectors_when_release_pods_are_created(
        rollout, rendered, stable_ping_pong=stable_ping_pong, stable_hash=stable_hash, new_hash=new_hash
    )
    bindings = [{"name": f"tgb-{name}", "serviceName": name, "targetType": "ip"} for name in (stable, canary)]
    pod_labels = {
        **rollout["spec"]["template"]["metadata"]["labels"],
        rollouts.DEFAULT_ROLLOUT_UNIQUE_LABEL_KEY: new_hash,
    }
    gates = up.lbc_pod_readiness_gates(
        inject_enabled=True, pod_labels=pod_labels, target_group_bindings=bindings, services=selectors
    )
    return stable, canary, gates


@pytest.mark.parametrize(("stack", "region"), canary_combos())
def test_a_release_s_new_pods_get_the_canary_target_group_s_gate(stack: str, region: str) -> None:
    """argo-rollouts v1.9.0 docs/features/traffic-management/alb.md ("Zero-Downtime Updates with
    AWS TargetGroup Verification" and "... with Ping-Pong feature"): a Service whose selector
    Rollouts changes after the pods exist gives them no readiness gate; Ping-Pong is the fix.
    rollout/canary.go ``rolloutCanary`` and rollout/service.go: with Ping-Pong the canary Service
    is pinned to the new ReplicaSet (created with 0 replicas) before it is scaled up
    (``reconcilePingAndPongService``, no availability check); with stableService/canaryService
    only once it is available (``reconcileStableAndCanaryService``). aws-load-balancer-controller
    v3.5.0 pkg/inject/pod_readiness/pod_readiness_gate.go: the gate is per binding whose Service
    selects the pod at its creation. The chart's Rollout, rendered as Argo CD renders it, uses
    Ping-Pong, so every release's new pods carry the canary target group's gate."""
    config = cfg.load_stack_file(stack)
    if config.traffic is None:
        pytest.skip(f"{stack} has no platform:traffic: no load balancer, no gate")
    objects = argocd_render(config, region)
    (rollout,) = [
        o for o in objects if o["kind"] == "Rollout" and "trafficRouting" in o["spec"]["strategy"]["canary"]
    ]
    rendered = {o["metadata"]["name"]: o["spec"]["selector"] for o in objects if o["kind"] == "Service"}
    for selector in rendered.values():
        assert rollouts.DEFAULT_ROLLOUT_UNIQUE_LABEL_KEY not in selector  # Rollouts adds it, not the chart
    # The first release with an unpinned stable Service (here status.canary.stablePingPong empty,
    # pong the stable: an existing Rollout switched to Ping-Pong; a new Rollout has ping as its
    # unpinned stable, rollout/sync.go promoteStable, with the same gates), then a later one (ping
    # stable, pinned to the running ReplicaSet).
    for stable_ping_pong, stable_hash in (("", None), ("ping", "old")):
        stable, canary, gates = _release_gates(
            rollout, rendered, stable_ping_pong=stable_ping_pong, stable_hash=stable_hash
        )
        assert f"{up.LBC_READINESS_GATE_PREFIX}/tgb-{canary}" in gates, (stable_ping_pong, gates)
        # The stable Service selects the new pods only while it was never pinned: the first
        # release (docs/traffic.md says what that means for its traffic).
        stable_gate = f"{up.LBC_READINESS_GATE_PREFIX}/tgb-{stable}" in gates
        assert stable_gate == (stable_hash is None), (stable_ping_pong, gates)
    # What the review found: stableService/canaryService Services (the chart's earlier shape)
    # leave a release's pods without any gate.
    canary_spec = {k: v for k, v in rollout["spec"]["strategy"]["canary"].items() if k != "pingPong"}
    old_shape = {
        **rollout,
        "spec": {
            **rollout["spec"],
            "strategy": {"canary": {**canary_spec, "stableService": "s-stable", "canaryService": "s-canary"}},
        },
    }
    web = rollout["spec"]["selector"]["matchLabels"]
    assert rollouts.validate_ping_pong(old_shape) == []
    assert (
        _release_gates(old_shape, {"s-stable": web, "s-canary": web}, stable_ping_pong="", stable_hash="old")[
            2
        ]
        == []
    )
