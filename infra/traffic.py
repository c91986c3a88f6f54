"""How users reach the storefront (issue 18), as data: pure functions of the config.

The design, and why, is docs/traffic.md. In short, per environment (``platform:traffic``):

* the **program** owns, per region, an ACM certificate for the public name and the region's name
  (validated by DNS in the stack's Route 53 zone), a Route 53 health check requesting
  ``https://<region>.<host><healthCheckPath>``, and (prod, or ``waf: true``) a regional WAFv2
  web ACL of AWS managed rule groups (:mod:`infra.components.traffic`);
* each region's **ExternalDNS** publishes, from the annotations of the chart's two ``web``
  Ingresses (one load balancer, an ALB IngressGroup), a latency alias record for the public name
  (set identifier and latency region = the region, health check = that region's) and a simple
  alias record for the region's name. A rebuilt region re-registers itself; a dead region's
  latency record is skipped by Route 53 because its health check fails.

The per-cluster values (certificate ARN, WAF ARN, health check ID, names, the load balancer's
source CIDRs) travel as annotations of that cluster's Argo CD cluster Secret and reach the chart
through the shop ApplicationSet's Go-templated ``helm.valuesObject`` (:func:`chart_values`),
never through Helm parameters, which Image Updater owns (infra/manifests/argocd.py
``check_application_template``).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from infra import naming
from infra.config import StackConfig, TrafficConfig
from infra.subnets import subnet_layout

# --- Route 53 facts the failover bound is made of ------------------------------------------------

#: The TTL of an alias record to an ELB load balancer. An alias record has no TTL of its own
#: (Route 53 uses the target's; https://docs.aws.amazon.com/Route53/latest/DeveloperGuide/
#: resource-record-sets-choosing-alias-non-alias.html), and Route 53's FAQ states alias records to
#: ELB endpoints have a fixed TTL of 60 seconds (https://aws.amazon.com/route53/faqs/, "Do I need
#: to adjust the TTL of my records in order to use DNS Failover?"). ExternalDNS writes alias
#: records for ELB targets (external-dns v0.21.0 provider/aws/aws.go ``newChange``: AliasTarget,
#: no TTL), so its ``ttl`` annotation does not apply to them.
ALIAS_TTL_SECONDS = 60
#: A record change (ExternalDNS writing a region's records after a rebuild) reaches all Route 53
#: authoritative servers "within 60 seconds" (GetChange: PENDING until INSYNC;
#: https://docs.aws.amazon.com/Route53/latest/APIReference/API_GetChange.html and
#: https://aws.amazon.com/route53/faqs/). Failing over needs no record change (a health check's
#: status is applied at query time), so this applies to readmission only.
RECORD_PROPAGATION_SECONDS = 60
#: Route 53 health checks of type HTTPS, on port 443 (the load balancer's HTTPS listener).
HEALTH_CHECK_TYPE = "HTTPS"
HTTPS_PORT = 443
HTTP_PORT = 80
#: How long one health checker's request may take, in seconds, before it fails (Route 53 Developer
#: Guide, "How Amazon Route 53 determines whether a health check is healthy",
#: https://docs.aws.amazon.com/Route53/latest/DeveloperGuide/dns-failover-determining-health-of-endpoints.html:
#: "HTTP and HTTPS health checks - Route 53 must be able to establish a TCP connection with the
#: endpoint within four seconds. In addition, the endpoint must respond with an HTTP status code of
#: 2xx or 3xx within two seconds after connecting").
HEALTH_CHECK_CONNECT_SECONDS = 4
HEALTH_CHECK_RESPONSE_SECONDS = 2
#: The longest request, by health check type (only the HTTP(S) types are used here).
REQUEST_TIMEOUT_SECONDS: dict[str, int] = {
    "HTTP": HEALTH_CHECK_CONNECT_SECONDS + HEALTH_CHECK_RESPONSE_SECONDS,
    "HTTPS": HEALTH_CHECK_CONNECT_SECONDS + HEALTH_CHECK_RESPONSE_SECONDS,
}


@dataclass(frozen=True)
class FailoverBound:
    """The longest a region that stops answering keeps receiving new users, in seconds.

    Each health checker waits ``interval`` seconds between getting a response (or giving up on
    one) and sending its next request (botocore route53 service-2.json, HealthCheckConfig
    ``RequestInterval``: "between the time that Amazon Route 53 gets a response from your endpoint
    and the time that it sends the next health check request"), and a failing request ends at
    most ``request_timeout`` seconds after it is sent. So from the last answer, a checker has seen
    ``failure_threshold`` consecutive failures after at most
    ``detection = failure_threshold x (interval + request_timeout)`` seconds; every checker has,
    so fewer than the 18% Route 53 needs report the region healthy and Route 53 skips its latency
    record. Resolvers may then serve the cached answer for at most ``ttl`` more seconds.

    Bounded: a region that answers no checker (the region, its load balancer or its pods gone),
    for resolvers that respect the TTL. Not bounded: Route 53's own time to aggregate the checkers'
    reports and apply them at its name servers (its docs give no figure), a region that still
    answers more than 18% of the checkers (Route 53 then keeps it on purpose), and clients that
    cache answers beyond the TTL.
    """

    interval_seconds: int
    failure_threshold: int
    ttl_seconds: int
    request_timeout_seconds: int

    @property
    def detection_seconds(self) -> int:
        return self.failure_threshold * (self.interval_seconds + self.request_timeout_seconds)

    @property
    def total_seconds(self) -> int:
        return self.detection_seconds + self.ttl_seconds

    def formula(self) -> str:
        return (
            f"{self.failure_threshold} failures x ({self.interval_seconds} s interval + "
            f"{self.request_timeout_seconds} s request timeout) + {self.ttl_seconds} s TTL = {self.total_seconds} s"
        )


def failover_bound(traffic: TrafficConfig) -> FailoverBound:
    """How long, at most, a region that stops answering keeps receiving new users."""
    return FailoverBound(
        traffic.health_check_interval_seconds,
        traffic.failure_threshold,
        ALIAS_TTL_SECONDS,
        REQUEST_TIMEOUT_SECONDS[HEALTH_CHECK_TYPE],
    )


def readmission_bound(traffic: TrafficConfig) -> int:
    """Seconds from a rebuilt region's ExternalDNS writing its records to users reaching it again:
    the record change propagates (``RECORD_PROPAGATION_SECONDS``); a request a checker sent just
    before may still fail, up to one request timeout later; then ``failure_threshold`` passing
    requests, each after an interval and answered within the timeout (Route 53 uses the same
    threshold both ways: botocore HealthCheckConfig ``FailureThreshold``, "must pass or fail");
    then cached answers naming the other regions expire (TTL). Same limits as :class:`FailoverBound`."""
    bound = failover_bound(traffic)
    return (
        RECORD_PROPAGATION_SECONDS
        + bound.request_timeout_seconds
        + bound.detection_seconds
        + bound.ttl_seconds
    )


# --- Names ----------------------------------------------------------------------------------------


def certificate_names(traffic: TrafficConfig, region: str) -> tuple[str, str]:
    """(domain name, subject alternative name) of ``region``'s certificate: the public name
    and the region's own name. Each region has its own certificate (ACM certificates are
    regional, and an ALB takes certificates of its own region only)."""
    return traffic.host, traffic.region_host(region)


def health_check_name(config: StackConfig, region: str) -> str:
    """The health check's Name tag (Route 53 shows it in the console; it has no name field)."""
    return f"{naming.PROJECT}-{config.environment}-{region}-web"


def web_acl_name(config: StackConfig, region: str) -> str:
    return f"{naming.PROJECT}-{config.environment}-{region}-web"


def ingress_group(config: StackConfig) -> str:
    """The ALB IngressGroup both ``web`` Ingresses join (one load balancer per cluster)."""
    return f"{config.application.namespace}.web"


# --- Route 53 health check -----------------------------------------------------------------------


def health_check_args(config: StackConfig, region: str) -> dict[str, Any]:
    """The inputs of ``aws.route53.HealthCheck`` for ``region`` (snake_case, as pulumi-aws takes them).

    HTTPS to ``<region>.<host>:443`` + ``healthCheckPath``, with SNI so the load balancer picks
    the certificate naming it; healthy on 2xx/3xx
    (https://docs.aws.amazon.com/Route53/latest/DeveloperGuide/dns-failover-determining-health-of-endpoints.html).
    RequestInterval cannot change once the check exists (botocore route53 HealthCheckConfig):
    pulumi-aws replaces the check then (infra/replacement.py).
    """
    traffic = _traffic(config)
    return {
        "type": HEALTH_CHECK_TYPE,
        "fqdn": traffic.region_host(region),
        "port": HTTPS_PORT,
        "resource_path": traffic.health_check_path,
        "request_interval": traffic.health_check_interval_seconds,
        "failure_threshold": traffic.failure_threshold,
        "enable_sni": True,
    }


# --- WAF -----------------------------------------------------------------------------------------

#: The AWS managed rule groups in front of the storefront, by name, with their vendor (AWS WAF
#: Developer Guide, "AWS Managed Rules rule groups list", baseline and IP reputation groups:
#: https://docs.aws.amazon.com/waf/latest/developerguide/aws-managed-rule-groups-list.html):
#: the core rule set (OWASP-style request inspection), known bad inputs, and the Amazon IP
#: reputation list. All three are included in the base WAF price (no per-request fee, unlike Bot
#: Control and Fraud Control: https://docs.aws.amazon.com/waf/latest/developerguide/waf-managed-rule-groups.html).
MANAGED_RULE_GROUPS: tuple[str, ...] = (
    "AWSManagedRulesAmazonIpReputationList",
    "AWSManagedRulesCommonRuleSet",
    "AWSManagedRulesKnownBadInputsRuleSet",
)
MANAGED_RULE_GROUP_VENDOR = "AWS"


def waf_on(config: StackConfig) -> bool:
    return config.traffic is not None and config.traffic.waf


def web_acl_rules(metric_prefix: str) -> list[dict[str, Any]]:
    """The web ACL's rules: each managed group in :data:`MANAGED_RULE_GROUPS` order, its own
    actions kept (``override_action: none``), CloudWatch metrics and samples on."""
    return [
        {
            "name": group,
            "priority": i,
            "override_action": {"none": {}},
            "statement": {
                "managed_rule_group_statement": {"name": group, "vendor_name": MANAGED_RULE_GROUP_VENDOR}
            },
            "visibility_config": {
                "cloudwatch_metrics_enabled": True,
                "metric_name": f"{metric_prefix}-{group}",
                "sampled_requests_enabled": True,
            },
        }
        for i, group in enumerate(MANAGED_RULE_GROUPS)
    ]


# --- The load balancer's path to the pods ----------------------------------------------------------


def load_balancer_source_cidrs(config: StackConfig, region: str) -> tuple[str, ...]:
    """The CIDRs the ALB reaches the storefront's pods from: the region's public subnets.

    An internet-facing ALB places its nodes (ENIs) in the public subnets the controller discovers
    by the ``kubernetes.io/role/elb`` tag (infra/components/network.py tags exactly the public
    subnets), and with target type ``ip`` it connects to the pod IPs directly from them
    (aws-load-balancer-controller v3.5.0 docs/deploy/subnet_discovery.md and
    docs/guide/ingress/annotations.md, ``target-type``). Derived from the config's VPC CIDR and
    zones, as the network component carves them.
    """
    body = config.region(region)
    return tuple(plan.public_cidr for plan in subnet_layout(body.vpc_cidr, body.availability_zones))


# --- Cluster Secret annotations and the chart's values -------------------------------------------

ANNOTATION_HOST = "platform.example.com/traffic-host"
ANNOTATION_REGION_HOST = "platform.example.com/traffic-region-host"
ANNOTATION_CERTIFICATE_ARN = "platform.example.com/traffic-certificate-arn"
ANNOTATION_HEALTH_CHECK_ID = "platform.example.com/traffic-health-check-id"
ANNOTATION_WAF_ACL_ARN = "platform.example.com/traffic-waf-acl-arn"
ANNOTATION_SOURCE_CIDRS = "platform.example.com/traffic-source-cidrs"
# For the ExternalDNS add-on (infra/addons.py): the one zone it may write (zone ID filter and
# domain filter). Each region's ExternalDNS needs its own TXT owner ID (the cluster name), or one
# region's ExternalDNS would take the others' latency records for its own and delete them.
ANNOTATION_ZONE_ID = "platform.example.com/traffic-zone-id"
ANNOTATION_ZONE_NAME = "platform.example.com/traffic-zone-name"


@dataclass(frozen=True)
class RegionFacts:
    """What the program created for one region and the chart needs (resolved values)."""

    certificate_arn: str
    health_check_id: str
    waf_acl_arn: str | None = None


def cluster_annotations(config: StackConfig, region: str, facts: RegionFacts | None) -> dict[str, str]:
    """The traffic annotations of ``region``'s cluster Secret (none without platform:traffic or
    without ``facts``: the program always passes them, :class:`infra.components.argocd.ClusterRegistration`;
    a Secret without them renders "" where the shop ApplicationSet reads them: ``index`` of a
    missing map key yields the zero value whatever ``missingkey`` says, Go text/template doc).

    Raises ValueError when the WAF is on and ``facts`` has no web ACL.
    """
    if config.traffic is None or facts is None:
        return {}
    out = {
        ANNOTATION_HOST: config.traffic.host,
        ANNOTATION_REGION_HOST: config.traffic.region_host(region),
        ANNOTATION_CERTIFICATE_ARN: facts.certificate_arn,
        ANNOTATION_HEALTH_CHECK_ID: facts.health_check_id,
        # A comma-separated list: annotations are strings, the chart splits it.
        ANNOTATION_SOURCE_CIDRS: ",".join(load_balancer_source_cidrs(config, region)),
        ANNOTATION_ZONE_ID: config.traffic.hosted_zone_id,
        ANNOTATION_ZONE_NAME: config.traffic.zone_name,
    }
    if waf_on(config):
        if facts.waf_acl_arn is None:
            raise ValueError(f"the cluster Secret of {region} needs the web ACL ARN (platform:traffic.waf)")
        out[ANNOTATION_WAF_ACL_ARN] = facts.waf_acl_arn
    return out


def _annotation(key: str) -> str:
    # The same Go template the add-on ApplicationSets use (infra/addons.py ``annotation``).
    return "{{ index .metadata.annotations " + json.dumps(key) + " }}"


def chart_values(config: StackConfig) -> dict[str, Any] | None:
    """The shop ApplicationSet's ``helm.valuesObject``: the chart's ``ingress`` values, each
    per-cluster value a Go template reading that cluster's Secret annotations. None without
    platform:traffic (the chart's default ``ingress.enabled: false`` then renders no Ingress).

    Argo CD passes valuesObject to ``helm template`` as one more ``--values`` file after the
    value files, and Image Updater's parameters as ``--set`` after it (argo-cd v3.4.4
    reposerver/repository/repository.go ``helmTemplate``, util/helm/cmd.go ``template``), so the
    two never collide; pinned by tests/contracts/test_traffic_values.py.
    """
    traffic = config.traffic
    if traffic is None:
        return None
    ingress: dict[str, Any] = {
        "enabled": True,
        "host": _annotation(ANNOTATION_HOST),
        "regionHost": _annotation(ANNOTATION_REGION_HOST),
        "certificateArn": _annotation(ANNOTATION_CERTIFICATE_ARN),
        "healthCheckId": _annotation(ANNOTATION_HEALTH_CHECK_ID),
        "healthCheckPath": traffic.health_check_path,
        "sourceCidrs": _annotation(ANNOTATION_SOURCE_CIDRS),
        "group": ingress_group(config),
    }
    if traffic.waf:
        ingress["wafAclArn"] = _annotation(ANNOTATION_WAF_ACL_ARN)
    return {"ingress": ingress}


def _traffic(config: StackConfig) -> TrafficConfig:
    if config.traffic is None:
        raise ValueError("platform:traffic is not set: the stack has no way in from outside")
    return config.traffic


def plan_summary(config: StackConfig) -> list[str]:
    """Lines for the offline plan: where users reach the storefront, or that they cannot."""
    traffic = config.traffic
    if traffic is None:
        return [
            "traffic: platform:traffic is not set; the storefront is NOT reachable from outside the "
            "clusters (no certificate, health check, load balancer or DNS name)"
        ]
    bound = failover_bound(traffic)
    lines = [
        f"traffic: https://{traffic.host} (Route 53 latency records, zone {traffic.zone_name} "
        f"{traffic.hosted_zone_id}); WAF {'on' if traffic.waf else 'off'}",
        f"traffic: failover bound {bound.formula()}",
    ]
    lines += [f"traffic: {region}: https://{traffic.region_host(region)}" for region in config.region_names]
    return lines
