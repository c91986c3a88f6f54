"""The storefront's way in, rendered as Argo CD renders each region's Application (issue 18).

Each region's Application is generated from the program's ApplicationSet and cluster Secrets
(tests/argocd_support.py: the cluster generator, the Go templates of ``helm.valuesObject``),
given Image Updater's parameters, and rendered with ``helm template`` the way the repo-server
does (value files, then the values object, then ``--set`` parameters). Expectations come from
the loaded stack config (infra/traffic.py), never from the example's names or counts.
"""

from __future__ import annotations

import shutil
from typing import Any

import pytest

from infra import config as config_module
from infra import traffic
from infra.config import PROJECT_ROOT, StackConfig, load_stack_file
from tests.argocd_support import (
    generated_applications,
    helm_template_application,
    image_updater_parameters,
    rendered_objects,
    with_parameters,
)
from tests.conftest import stack_config_map, stack_names, without_traffic
from tests.unit.test_chart_render import assert_valid_kubernetes, is_custom_resource
from tests.unit.test_chart_values import helm_merge, merged_values

CI_TAG = "20261122.063000-0123abc"
STACKS = stack_names()
needs_helm = pytest.mark.skipif(shutil.which("helm") is None, reason="helm is not on PATH")


def stack(name: str) -> StackConfig:
    return load_stack_file(name)


COMBOS = [(name, region) for name in STACKS for region in stack(name).region_names]
IDS = [f"{s}-{r}" for s, r in COMBOS]


def render(config: StackConfig, region: str) -> list[dict[str, Any]]:
    app = generated_applications(config)[region]
    app = with_parameters(app, image_updater_parameters(config, region, CI_TAG))
    result = helm_template_application(app, PROJECT_ROOT, config.region(region).kubernetes_version)
    return rendered_objects(result)


def of_kind(objects: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [o for o in objects if o["kind"] == kind]


def component(o: dict[str, Any]) -> str:
    """The service an object belongs to (the chart's ``app.kubernetes.io/component`` label)."""
    return str(o["metadata"]["labels"]["app.kubernetes.io/component"])


def public_service(config: StackConfig, region: str) -> str:
    """The service behind the load balancer (the chart's ``ingress.service``), from the values
    this region's Application renders with: the value files, then its values object."""
    helm = generated_applications(config)[region]["spec"]["source"]["helm"]
    values = helm_merge(merged_values(config, region), helm.get("valuesObject") or {})
    return str(values["ingress"]["service"])


def root_service_name(objects: list[dict[str, Any]], service: str) -> str:
    """The name of ``service``'s own Service (not a canary's or stable's): that of its workload
    (Deployment, or Rollout with canary releases), which the chart names alike."""
    (workload,) = [o for o in objects if o["kind"] in ("Deployment", "Rollout") and component(o) == service]
    name = str(workload["metadata"]["name"])
    assert [
        o for o in of_kind(objects, "Service") if o["metadata"]["name"] == name and component(o) == service
    ]
    return name


@needs_helm
@pytest.mark.parametrize(("stack_name", "region"), COMBOS, ids=IDS)
def test_each_region_renders_its_ingresses_with_its_host_certificate_and_scheme(
    stack_name: str, region: str
) -> None:
    config = stack(stack_name)
    objects = render(config, region)
    ingresses = {o["metadata"]["name"]: o for o in of_kind(objects, "Ingress")}
    public = public_service(config, region)
    if config.traffic is None:
        assert ingresses == {}, "a stack without platform:traffic renders no Ingress"
        return
    facts = generated_applications(config)[region]["spec"]["source"]["helm"]["valuesObject"]["ingress"]
    assert facts["certificateArn"].startswith(f"arn:aws:acm:{region}:"), "this region's certificate"
    hosts = {}
    backend = root_service_name(objects, public)
    for ingress in ingresses.values():
        assert component(ingress) == public
        annotations = ingress["metadata"]["annotations"]
        assert ingress["spec"]["ingressClassName"] == "alb"
        assert annotations["alb.ingress.kubernetes.io/scheme"] == "internet-facing"
        assert annotations["alb.ingress.kubernetes.io/target-type"] == "ip"
        assert annotations["alb.ingress.kubernetes.io/listen-ports"] == '[{"HTTP": 80}, {"HTTPS": 443}]'
        assert annotations["alb.ingress.kubernetes.io/ssl-redirect"] == "443"
        assert annotations["alb.ingress.kubernetes.io/certificate-arn"] == facts["certificateArn"]
        assert annotations["alb.ingress.kubernetes.io/healthcheck-path"] == config.traffic.health_check_path
        assert annotations["alb.ingress.kubernetes.io/group.name"] == traffic.ingress_group(config)
        waf = annotations["alb.ingress.kubernetes.io/wafv2-acl-arn"]
        if config.traffic.waf:
            assert waf.startswith(f"arn:aws:wafv2:{region}:") and waf == facts["wafAclArn"]
        else:
            assert waf == "none"
        (rule,) = ingress["spec"]["rules"]
        (path,) = rule["http"]["paths"]
        # With canary releases (issue 19) the backend is the root Service's use-annotation action,
        # written by Argo Rollouts (tests/contracts/test_rollouts_contracts.py).
        port = "use-annotation" if any(o["kind"] == "Rollout" for o in objects) else "http"
        assert path["backend"]["service"] == {"name": backend, "port": {"name": port}}
        hosts[rule["host"]] = annotations
    assert set(hosts) == {config.traffic.host, config.traffic.region_host(region)}
    routed = hosts[config.traffic.host]
    assert routed["external-dns.alpha.kubernetes.io/set-identifier"] == region
    assert routed["external-dns.alpha.kubernetes.io/aws-region"] == region
    assert routed["external-dns.alpha.kubernetes.io/aws-health-check-id"] == facts["healthCheckId"]
    # The region's own name is a simple record: no routing annotation on its Ingress.
    assert not [k for k in hosts[config.traffic.region_host(region)] if k.startswith("external-dns.")]


@needs_helm
@pytest.mark.parametrize(("stack_name", "region"), COMBOS, ids=IDS)
def test_every_rendered_object_is_valid_kubernetes(stack_name: str, region: str) -> None:
    config = stack(stack_name)
    for doc in render(config, region):
        if not is_custom_resource(doc):
            assert_valid_kubernetes(doc, config.region(region).kubernetes_version)


@needs_helm
@pytest.mark.parametrize(("stack_name", "region"), COMBOS, ids=IDS)
def test_the_storefront_admits_exactly_the_load_balancers_path(stack_name: str, region: str) -> None:
    config = stack(stack_name)
    objects = render(config, region)
    public = public_service(config, region)
    policies = {component(o): o for o in of_kind(objects, "NetworkPolicy")}
    ports = {component(o): o["spec"]["ports"][0]["port"] for o in of_kind(objects, "Service")}
    assert set(policies) == {component(o) for o in objects if o["kind"] in ("Deployment", "Rollout")}
    for service, policy in policies.items():
        rules = policy["spec"]["ingress"]
        if config.traffic is not None and service == public:
            (rule,) = rules
            assert rule["ports"] == [{"port": ports[service], "protocol": "TCP"}]
            cidrs = [peer["ipBlock"]["cidr"] for peer in rule["from"]]
            assert cidrs == list(traffic.load_balancer_source_cidrs(config, region))
            assert all(set(peer) == {"ipBlock"} for peer in rule["from"]), "nothing but the ALB's subnets"
        else:
            # Internal: only the release namespace's pods, no address block, no other namespace.
            for rule in rules:
                assert rule["from"] == [{"podSelector": {}}], service


def test_the_load_balancer_cidrs_are_the_public_subnets_inside_the_vpc() -> None:
    import ipaddress

    for name in STACKS:
        config = stack(name)
        for region in config.region_names:
            vpc = ipaddress.ip_network(config.region(region).vpc_cidr)
            cidrs = traffic.load_balancer_source_cidrs(config, region)
            assert len(cidrs) == len(config.region(region).availability_zones)
            assert all(ipaddress.ip_network(c).subnet_of(vpc) for c in cidrs)  # type: ignore[arg-type]


@needs_helm
def test_a_stack_without_traffic_has_no_values_object_and_no_ingress() -> None:
    # ExternalDNS goes with the zone (the config refuses it without platform:traffic).
    raw = without_traffic(stack_config_map(STACKS[0]))
    bare = config_module.from_flat(config_module.as_pulumi_config(raw), STACKS[0])
    region = bare.region_names[0]
    app = generated_applications(bare)[region]
    assert "valuesObject" not in app["spec"]["source"]["helm"]
    objects = render(bare, region)
    assert of_kind(objects, "Ingress") == []
    public = public_service(bare, region)
    (policy,) = [o for o in of_kind(objects, "NetworkPolicy") if component(o) == public]
    assert policy["spec"]["ingress"][0]["from"] == [{"podSelector": {}}]
