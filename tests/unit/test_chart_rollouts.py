"""The shop chart's canary releases (issue 19): Rollouts, AnalysisTemplates, canary Services.

Rendered with ``helm template`` for every stack and region with the value files Argo CD uses;
every Argo Rollouts object is checked against the CRDs of the pinned argo-rollouts 2.41.0 chart
(Argo Rollouts v1.9.0, ``../shared/crds/argo-rollouts``) with unknown fields refused, the rest
against the Kubernetes schemas of ``kubernetes-validate``. Expectations come from the merged
values of each stack, never from the example's service names.
"""

from __future__ import annotations

import pytest

from tests.argocd_support import crd_errors, require_shared
from tests.unit.test_chart_render import (
    COMBO_IDS,
    COMBOS,
    Manifest,
    analysis_templates,
    assert_valid_kubernetes,
    by_component,
    is_custom_resource,
    needs_helm,
    rendered,
    rollouts_on,
    stack,
    workload,
)
from tests.unit.test_chart_values import merged_values

# The values the shop ApplicationSet gives a region with platform:traffic (infra/traffic.py
# chart_values); only their presence matters here: the Ingresses render, the canary routes.
INGRESS_VALUES = {
    "ingress.enabled": "true",
    "ingress.group": "shop-test",
    "ingress.certificateArn": "arn:aws:acm:us-east-1:123456789012:certificate/test",
    "ingress.healthCheckId": "test-health-check",
    "ingress.host": "www.shop.example.com",
    "ingress.regionHost": "region.www.shop.example.com",
    "ingress.sourceCidrs": "10.0.0.0/24",
}


def routed() -> tuple[str, ...]:
    """The --set arguments that render the ALB Ingresses the canary routes through."""
    return ("--set", ",".join(f"{k}={v}" for k, v in INGRESS_VALUES.items()))


def argo_objects(manifests: list[Manifest]) -> list[Manifest]:
    return [m for m in manifests if m["apiVersion"].startswith("argoproj.io/")]


@needs_helm
@pytest.mark.parametrize(("stack_name", "region"), COMBOS, ids=COMBO_IDS)
@pytest.mark.parametrize("with_ingress", [False, True], ids=["replicas", "alb"])
def test_rollout_objects_validate_against_the_pinned_crds(
    stack_name: str, region: str, with_ingress: bool
) -> None:
    require_shared()
    extra = routed() if with_ingress else ()
    manifests = rendered(stack_name, region, *extra)
    version = stack(stack_name).region(region).kubernetes_version
    for doc in manifests:
        if doc["apiVersion"].startswith("argoproj.io/"):
            assert crd_errors(doc) == [], f"{doc['kind']}/{doc['metadata']['name']}"
        elif not is_custom_resource(doc):
            assert_valid_kubernetes(doc, version)
    if rollouts_on(stack_name, region):
        assert argo_objects(manifests)


@needs_helm
@pytest.mark.parametrize(("stack_name", "region"), COMBOS, ids=COMBO_IDS)
def test_canary_steps_and_analysis_follow_the_values(stack_name: str, region: str) -> None:
    values = merged_values(stack(stack_name), region)
    if not values["rollouts"]["enabled"]:
        pytest.skip(f"rollouts are off in {stack_name}")
    cfg = values["rollouts"]
    manifests = rendered(stack_name, region)
    components = by_component(manifests)
    for service, kinds in components.items():
        rollout = kinds["Rollout"]
        templates = analysis_templates(manifests, service)
        canary = rollout["spec"]["strategy"]["canary"]
        steps = canary["steps"]
        assert len(steps) == 3 * len(cfg["steps"]), service
        for i, step in enumerate(cfg["steps"]):
            weight, pause, analysis = steps[3 * i : 3 * i + 3]
            assert weight == {"setWeight": step["weight"]}
            assert pause == {"pause": {"duration": step["pause"]}}
            (ref,) = analysis["analysis"]["templates"]
            # Each step has its own template whose metric names carry the step number (the
            # only part of an analysis that reaches the Rollout's abort message).
            template = templates[ref["templateName"]]
            metrics = {m["name"]: m for m in template["spec"]["metrics"]}
            assert set(metrics) == {f"step-{i + 1}-error-rate", f"step-{i + 1}-response-time"}
            for metric in metrics.values():
                assert metric["failureLimit"] == cfg["analysis"]["failureLimit"]
                assert metric["count"] == cfg["analysis"]["count"]
                assert metric["provider"]["cloudWatch"]["interval"] == cfg["analysis"]["window"]
            assert (
                str(cfg["analysis"]["maxErrorRate"])
                in metrics[f"step-{i + 1}-error-rate"]["successCondition"]
            )
        assert len(templates) == len(cfg["steps"])
        # No traffic routing without an Ingress: a replica-based canary reading the ALB by name.
        assert "trafficRouting" not in canary
        # The workload has no rolling-update strategy left.
        assert "rollingUpdate" not in rollout["spec"]["strategy"]


@needs_helm
@pytest.mark.parametrize(("stack_name", "region"), COMBOS, ids=COMBO_IDS)
def test_the_load_balanced_service_routes_its_canary_through_the_alb(stack_name: str, region: str) -> None:
    values = merged_values(stack(stack_name), region)
    if not values["rollouts"]["enabled"]:
        pytest.skip(f"rollouts are off in {stack_name}")
    fronted = values["ingress"]["service"]
    manifests = rendered(stack_name, region, *routed())
    services = {m["metadata"]["name"]: m for m in manifests if m["kind"] == "Service"}
    ingresses = {m["metadata"]["name"]: m for m in manifests if m["kind"] == "Ingress"}
    for doc in manifests:
        if doc["kind"] != "Rollout":
            continue
        component = doc["metadata"]["labels"]["app.kubernetes.io/component"]
        canary = doc["spec"]["strategy"]["canary"]
        name = doc["metadata"]["name"]
        if component != fronted:
            assert "trafficRouting" not in canary, name
            continue
        alb = canary["trafficRouting"]["alb"]
        # Every rendered Ingress, the public host's first.
        assert sorted(alb["ingresses"]) == sorted(ingresses)
        assert ingresses[alb["ingresses"][0]]["spec"]["rules"][0]["host"] == INGRESS_VALUES["ingress.host"]
        assert alb["rootService"] == name and name in services
        # Ping-Pong (docs/traffic.md "Readiness gate"): two Services, distinct from the root one,
        # selecting the Rollout's pods; no canaryService/stableService.
        assert "canaryService" not in canary and "stableService" not in canary
        ping_pong = canary["pingPong"]
        assert len({ping_pong["pingService"], ping_pong["pongService"], name}) == 3
        for role in ("pingService", "pongService"):
            svc = services[ping_pong[role]]
            assert svc["spec"]["selector"] == doc["spec"]["selector"]["matchLabels"]
            assert svc["spec"]["ports"][0]["port"] == alb["servicePort"]
        # The analysis reads every Ingress's canary target group (the region host's carries
        # Route 53's health checks, the public host's the users' requests) by the names the
        # controller records in status.albs, one entry per listed Ingress (fieldRef args).
        args = {
            a["name"]: a["valueFrom"]["fieldRef"]["fieldPath"]
            for step in canary["steps"]
            if "analysis" in step
            for a in step["analysis"]["args"]
        }
        assert args == {
            name: path
            for i in range(len(alb["ingresses"]))
            for name, path in (
                (f"load-balancer-{i}", f"status.albs[{i}].loadBalancer.fullName"),
                (f"target-group-{i}", f"status.albs[{i}].canaryTargetGroup.fullName"),
            )
        }


@needs_helm
@pytest.mark.parametrize("stack_name", sorted({s for s, _ in COMBOS}))
def test_rollouts_off_renders_plain_deployments(stack_name: str) -> None:
    region = stack(stack_name).region_names[0]
    manifests = rendered(stack_name, region, "--set", "rollouts.enabled=false")
    assert argo_objects(manifests) == []
    for service, kinds in by_component(manifests).items():
        deployment = workload(kinds)
        assert deployment["kind"] == "Deployment", service
        assert deployment["spec"]["strategy"]["type"] == "RollingUpdate"
        hpa = kinds.get("HorizontalPodAutoscaler")
        if hpa is not None:
            assert hpa["spec"]["scaleTargetRef"]["kind"] == "Deployment"
    on = rendered(stack_name, region, "--set", "rollouts.enabled=true")
    assert {d["kind"] for d in on} >= {"Rollout", "AnalysisTemplate"}
    assert "Deployment" not in {d["kind"] for d in on}


def test_prod_releases_by_canary() -> None:
    for name in {s for s, _ in COMBOS}:
        cfg = stack(name)
        if cfg.is_prod:
            for region in cfg.region_names:
                assert merged_values(cfg, region)["rollouts"]["enabled"] is True, region
