"""The external rules the way in relies on (issue 18), one test per behaviour, each naming the
source it was read in. Design and alternatives: docs/traffic.md."""

from __future__ import annotations

import copy
import json
import re
import shutil
from collections.abc import Mapping, Sequence
from functools import cache
from typing import Any

import botocore.session
import pytest
from botocore.handlers import fix_route53_ids

from infra import config as cfg
from infra import offline, traffic
from infra.config import PROJECT_ROOT
from infra.manifests import argocd as m
from infra.plan import traffic_lines
from tests.argocd_support import (
    generated_applications,
    helm_template_application,
    image_updater_parameters,
    jq_available,
    rendered_objects,
    with_parameters,
)
from tests.conftest import stack_names

TAG = "20261122.063000-0123abc"
TRAFFIC_STACKS = [s for s in stack_names() if cfg.load_stack_file(s).traffic is not None]


@cache
def plan(stack: str) -> offline.Plan:
    return offline.run(stack)


@cache
def route53_shapes() -> Any:
    """botocore's Route 53 service model (data/route53/2013-04-01/service-2.json)."""
    return botocore.session.get_session().get_service_model("route53")


# --- Route 53 -------------------------------------------------------------------------------------


def test_a_zone_id_is_read_as_route53_reads_it() -> None:
    """botocore handlers.py ``fix_route53_ids`` (before-parameter-build.route53): a ResourceId such
    as ``/hostedzone/Z123`` is cut to its last '/'-separated piece; the config does the same."""
    operation = route53_shapes().operation_model("GetHostedZone")
    params = {"Id": "/hostedzone/Z0123456789ABCDEFGHIJ"}
    fix_route53_ids(params, operation)
    raw = {"hostedZoneId": "/hostedzone/Z0123456789ABCDEFGHIJ", "zoneName": "shop.example.org"}
    assert cfg._zone_id(raw["hostedZoneId"]) == params["Id"]
    assert operation.input_shape.members["Id"].metadata.get("max") == 32


def test_health_check_settings_are_inside_route53s_limits() -> None:
    """botocore data/route53/2013-04-01 service-2.json, HealthCheckConfig: Type enum (HTTPS),
    RequestInterval 10..30 (the Route 53 Developer Guide, health-checks-creating-values.html:
    "10 seconds or 30 seconds"), FailureThreshold 1..10, ResourcePath and FQDN at most 255."""
    config_shape = route53_shapes().shape_for("HealthCheckConfig")
    members = config_shape.members
    assert traffic.HEALTH_CHECK_TYPE in members["Type"].enum
    interval = members["RequestInterval"].metadata
    assert all(interval["min"] <= i <= interval["max"] for i in cfg.HEALTH_CHECK_INTERVALS)
    threshold = members["FailureThreshold"].metadata
    assert (threshold["min"], threshold["max"]) == (1, 10)
    for stack in TRAFFIC_STACKS:
        config = cfg.load_stack_file(stack)
        for region in config.region_names:
            args = traffic.health_check_args(config, region)
            assert len(args["resource_path"]) <= members["ResourcePath"].metadata["max"]
            assert len(args["fqdn"]) <= members["FullyQualifiedDomainName"].metadata["max"]


@pytest.mark.parametrize("stack", TRAFFIC_STACKS)
def test_the_plan_states_each_regions_failover_bound_from_its_declared_health_check(stack: str) -> None:
    """The offline plan (infra/plan.py ``traffic_lines``) computes each region's bound from the
    health check it declares (type, interval, threshold), the figure of docs/traffic.md "Failover
    time"; the rules behind it: tests/contracts/test_traffic_failover.py."""
    p = plan(stack)
    assert p.config.traffic is not None
    expected = traffic.failover_bound(p.config.traffic).formula()
    lines = traffic_lines(p)
    assert len(lines) == len(p.config.region_names)
    assert all(f"failover within {expected};" in line for line in lines), lines


def route53_answer(
    records: Sequence[Mapping[str, Any]], healthy: Mapping[str, bool], nearest: Sequence[str]
) -> str:
    """The set identifier Route 53 answers with for a latency group, as its Developer Guide says
    (https://docs.aws.amazon.com/Route53/latest/DeveloperGuide/health-checks-how-route-53-chooses-records.html):
    pick by the routing policy (latency: ``nearest`` first); a record with a health check is
    healthy only if its check is; a record without one is always healthy; if no record is
    healthy, all are treated as healthy."""

    def ok(record: Mapping[str, Any]) -> bool:
        check = record.get("healthCheckId")
        return True if check is None else healthy[check]

    candidates = [r for r in records if ok(r)] or list(records)
    by_id = {r["setIdentifier"]: r for r in candidates}
    return next(region for region in nearest if region in by_id)


@pytest.mark.parametrize("stack", TRAFFIC_STACKS)
def test_a_dead_region_gets_no_users_while_another_is_healthy(stack: str) -> None:
    """The chart's latency records (one per region, each with its region's health check) under the
    rule above: a failed region is skipped; when every region fails, Route 53 answers anyway."""
    config = cfg.load_stack_file(stack)
    records = []
    for region, app in generated_applications(config).items():
        ingress = app["spec"]["source"]["helm"]["valuesObject"]["ingress"]
        records.append({"setIdentifier": region, "healthCheckId": ingress["healthCheckId"]})
    assert all(r["healthCheckId"] for r in records), "every latency record carries a health check"
    regions = config.region_names
    for dead in regions:
        healthy = {r["healthCheckId"]: r["setIdentifier"] != dead for r in records}
        nearest = [dead, *[r for r in regions if r != dead]]
        assert route53_answer(records, healthy, nearest) != dead
    all_dead = {r["healthCheckId"]: False for r in records}
    assert route53_answer(records, all_dead, list(regions)) == regions[0]


# --- ACM ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("stack", TRAFFIC_STACKS)
def test_every_regions_certificate_is_validated_through_the_one_public_name_record(stack: str) -> None:
    """ACM DNS validation (https://docs.aws.amazon.com/acm/latest/userguide/dns-validation.html):
    the CNAME of a domain name is "created specifically for your domain and your account" and
    "works for any AWS Region", so one record validates the public name for every region's
    certificate; each region's own name has its own. aws.acm.CertificateValidation waits for the
    listed records' FQDNs."""
    p = plan(stack)
    config = p.config
    assert config.traffic is not None
    records = p.of_type("aws:route53/record:Record")
    public = [r for r in records if r.name == "traffic-public-name"]
    assert len(public) == 1
    assert len(records) == len(config.region_names) + 1
    assert all(
        r.inputs["type"] == "CNAME" and r.inputs["zoneId"] == config.traffic.hosted_zone_id for r in records
    )
    validations = p.of_type("aws:acm/certificateValidation:CertificateValidation")
    assert len(validations) == len(config.region_names)
    public_fqdn = public[0].outputs["fqdn"]
    for v in validations:
        fqdns = v.inputs["validationRecordFqdns"]
        assert public_fqdn in fqdns and len(fqdns) == 2
    for certificate in p.of_type("aws:acm/certificate:Certificate"):
        region = p.region_of(certificate)
        assert certificate.inputs["validationMethod"] == "DNS"
        assert certificate.inputs["domainName"] == config.traffic.host
        assert certificate.inputs["subjectAlternativeNames"] == [config.traffic.region_host(str(region))]


# --- WAF -------------------------------------------------------------------------------------------

#: AWS WAF Developer Guide, "AWS Managed Rules rule groups list" (baseline rule groups and IP
#: reputation rule groups), https://docs.aws.amazon.com/waf/latest/developerguide/aws-managed-rule-groups-list.html
AWS_MANAGED_RULE_GROUPS_FREE = frozenset(
    {
        "AWSManagedRulesCommonRuleSet",
        "AWSManagedRulesAdminProtectionRuleSet",
        "AWSManagedRulesKnownBadInputsRuleSet",
        "AWSManagedRulesAmazonIpReputationList",
        "AWSManagedRulesAnonymousIpList",
        "AWSManagedRulesSQLiRuleSet",
        "AWSManagedRulesLinuxRuleSet",
        "AWSManagedRulesUnixRuleSet",
    }
)


def test_the_web_acl_names_aws_managed_groups_that_exist() -> None:
    """The names and vendor of the managed rule group statements (same page); none of the paid
    groups (Bot Control, Fraud Control: waf-managed-rule-groups.html)."""
    assert set(traffic.MANAGED_RULE_GROUPS) <= AWS_MANAGED_RULE_GROUPS_FREE
    assert traffic.MANAGED_RULE_GROUP_VENDOR == "AWS"


@pytest.mark.parametrize("stack", TRAFFIC_STACKS)
def test_prod_and_waf_stacks_declare_a_regional_web_acl_per_region(stack: str) -> None:
    """Only Regional WAFv2 attaches to an ALB (aws-load-balancer-controller v3.5.0
    docs/guide/ingress/annotations.md, wafv2-acl-arn: "Only Regional WAFv2 is supported")."""
    p = plan(stack)
    acls = p.of_type("aws:wafv2/webAcl:WebAcl")
    assert p.config.traffic is not None
    if not p.config.traffic.waf:
        assert acls == []
        return
    assert sorted(str(p.region_of(a)) for a in acls) == sorted(p.config.region_names)
    assert all(a.inputs["scope"] == "REGIONAL" for a in acls)


# --- ExternalDNS v0.21.0 -----------------------------------------------------------------------------

#: kubernetes-sigs/external-dns v0.21.0 source/annotations/annotations.go: the annotation prefix,
#: ``SetIdentifierKey`` and ``AWSPrefix``; provider_specific.go ``ProviderSpecificAnnotations``: an
#: annotation ``<AWSPrefix><attr>`` becomes the provider-specific property ``aws/<attr>``.
EXTERNAL_DNS_PREFIX = "external-dns.alpha.kubernetes.io/"
SET_IDENTIFIER_KEY = EXTERNAL_DNS_PREFIX + "set-identifier"
AWS_PREFIX = EXTERNAL_DNS_PREFIX + "aws-"
#: provider/aws/aws.go (v0.21.0) ``newChange`` reads these properties into the record set:
#: ``aws/region`` -> Region (latency), ``aws/health-check-id`` -> HealthCheckId.
AWS_PROPERTIES = {"aws/region": "Region", "aws/health-check-id": "HealthCheckId"}


def external_dns_record(annotations: Mapping[str, str]) -> dict[str, str]:
    """What ExternalDNS v0.21.0 writes into a Route 53 record set from an Ingress's annotations."""
    out: dict[str, str] = {}
    for key, value in annotations.items():
        if key == SET_IDENTIFIER_KEY:
            out["SetIdentifier"] = value
        elif key.startswith(AWS_PREFIX):
            prop = "aws/" + key.removeprefix(AWS_PREFIX)
            if prop in AWS_PROPERTIES:
                out[AWS_PROPERTIES[prop]] = value
    return out


@cache
def rendered_ingresses(stack: str, region: str) -> list[dict[str, Any]]:
    config = cfg.load_stack_file(stack)
    app = with_parameters(
        generated_applications(config)[region], image_updater_parameters(config, region, TAG)
    )
    result = helm_template_application(app, PROJECT_ROOT, config.region(region).kubernetes_version)
    return [o for o in rendered_objects(result) if o["kind"] == "Ingress"]


needs_helm = pytest.mark.skipif(shutil.which("helm") is None, reason="helm is not on PATH")
COMBOS = [(s, r) for s in TRAFFIC_STACKS for r in cfg.load_stack_file(s).region_names]


@needs_helm
@pytest.mark.parametrize(("stack", "region"), COMBOS)
def test_external_dns_writes_a_health_checked_latency_record_and_a_simple_one(
    stack: str, region: str
) -> None:
    config = cfg.load_stack_file(stack)
    assert config.traffic is not None
    facts = generated_applications(config)[region]["spec"]["source"]["helm"]["valuesObject"]["ingress"]
    by_host = {
        i["spec"]["rules"][0]["host"]: i["metadata"]["annotations"] for i in rendered_ingresses(stack, region)
    }
    assert external_dns_record(by_host[config.traffic.host]) == {
        "SetIdentifier": region,
        "Region": region,
        "HealthCheckId": facts["healthCheckId"],
    }
    assert external_dns_record(by_host[config.traffic.region_host(region)]) == {}


# --- AWS Load Balancer Controller v3.5.0 -------------------------------------------------------------

#: kubernetes-sigs/aws-load-balancer-controller v3.5.0 docs/guide/ingress/annotations.md.
ALB_SCHEMES = ("internal", "internet-facing")
ALB_TARGET_TYPES = ("instance", "ip")
ALB_GROUP_NAME = re.compile(
    r"^[a-z0-9]([a-z0-9.-]{0,61}[a-z0-9])?$"
)  # "lower case alphanumeric, - or ., <= 63"
#: Annotations whose value must be the same on every Ingress of a group ("Exclusive" merge).
ALB_EXCLUSIVE = ("scheme", "ssl-redirect", "wafv2-acl-arn", "ip-address-type", "ssl-policy")


@needs_helm
@pytest.mark.parametrize(("stack", "region"), COMBOS)
def test_the_ingresses_follow_the_controllers_annotation_rules(stack: str, region: str) -> None:
    """listen-ports is JSON of {protocol: port}; ssl-redirect names a port that exists on an HTTPS
    listener ("The SSL port that redirects to must exists on LoadBalancer"); wafv2-acl-arn 'none'
    disassociates ("To disable WAFv2, explicitly set the annotation value to 'none'"); group.name's
    form; Exclusive annotations agree across the group (else the whole group fails)."""
    ingresses = rendered_ingresses(stack, region)
    assert len(ingresses) == 2
    prefix = "alb.ingress.kubernetes.io/"
    for ingress in ingresses:
        a = ingress["metadata"]["annotations"]
        assert a[prefix + "scheme"] in ALB_SCHEMES and a[prefix + "target-type"] in ALB_TARGET_TYPES
        listeners = json.loads(a[prefix + "listen-ports"])
        https = {port for listener in listeners for proto, port in listener.items() if proto == "HTTPS"}
        assert int(a[prefix + "ssl-redirect"]) in https
        assert {p for listener in listeners for p in listener} <= {"HTTP", "HTTPS"}
        assert ALB_GROUP_NAME.match(a[prefix + "group.name"])
        acl = a[prefix + "wafv2-acl-arn"]
        assert acl == "none" or ":wafv2:" in acl
    for key in (*ALB_EXCLUSIVE, "group.name"):
        assert len({i["metadata"]["annotations"].get(prefix + key) for i in ingresses}) == 1, key


# --- Argo CD v3.4.4 + Image Updater v1.2.2: the values object and the parameters ---------------------


@pytest.mark.parametrize("stack", TRAFFIC_STACKS)
def test_the_values_object_sits_between_the_value_files_and_image_updaters_parameters(stack: str) -> None:
    """argo-cd v3.4.4 reposerver/repository/repository.go ``helmTemplate``: the value files become
    ``templateOpts.Values``, a non-empty valuesObject is written to a file as ``ExtraValues``, the
    parameters become ``Set``/``SetString``; util/helm/cmd.go ``template`` passes ``--set``/
    ``--set-string`` for the parameters and ``--values`` for the files, ExtraValues last. Helm
    gives ``--set`` precedence over every ``--values``; values files later in the list win."""
    config = cfg.load_stack_file(stack)
    region = config.region_names[0]
    app = with_parameters(
        generated_applications(config)[region], image_updater_parameters(config, region, TAG)
    )
    helm = app["spec"]["source"]["helm"]
    written = {p["name"] for p in helm["parameters"]}
    assert written == set(m.IMAGE_UPDATER_PARAMETERS)
    # The two never set the same key: the values object only under `ingress`, the parameters only under `image`.
    assert set(helm["valuesObject"]) == {"ingress"}
    assert all(name.split(".")[0] == "image" for name in written)


@pytest.mark.skipif(not jq_available(), reason="jq is not on PATH")
@pytest.mark.parametrize("stack", TRAFFIC_STACKS)
def test_image_updaters_write_back_keeps_the_values_object_and_the_controller_keeps_both(stack: str) -> None:
    """argocd-image-updater v1.2.2 pkg/argocd/argocd.go: ``SetHelmImage`` merges its parameters
    into the source it read; ``UpdateSpec`` writes the whole spec it read back (``app.Spec =
    *spec.Spec``), values object included. The ApplicationSet controller then patches from the
    template (createOrUpdate.go, merge patch with the parameters ignored,
    tests/contracts/test_applicationset_merge_patch.py): the values object is in the template, so
    it is kept; the parameters are ignored, so they are kept."""
    from tests.contracts.test_applicationset_merge_patch import controller_update

    config = cfg.load_stack_file(stack)
    rules = m.ignore_application_differences(config)
    for region, generated in generated_applications(config).items():
        live = with_parameters(copy.deepcopy(generated), image_updater_parameters(config, region, TAG))
        assert (
            live["spec"]["source"]["helm"]["valuesObject"]
            == generated["spec"]["source"]["helm"]["valuesObject"]
        )
        after = controller_update(live, generated, rules)
        helm = after["spec"]["source"]["helm"]
        assert helm["valuesObject"] == generated["spec"]["source"]["helm"]["valuesObject"]
        assert helm["parameters"] == live["spec"]["source"]["helm"]["parameters"]


def test_a_disabled_health_check_counts_as_healthy() -> None:
    """botocore route53 service-2.json, HealthCheckConfig.Disabled: "After you disable a health
    check, Route 53 considers the status of the health check to always be healthy". Why the DR
    runbook never disables the lost region's check to drain it (docs/dr.md)."""
    doc = route53_shapes().shape_for("HealthCheckConfig").members["Disabled"].documentation
    assert "considers the status of the health check to always be healthy" in doc


def test_a_record_whose_health_check_is_deleted_has_no_predictable_status() -> None:
    """botocore route53 service-2.json, DeleteHealthCheck: "If you delete a health check and you don't
    update the associated resource record sets, the future status of the health check can't be
    predicted". Why a region that leaves the stack has its records deleted by hand (infra/dr.py)."""
    doc = route53_shapes().operation_model("DeleteHealthCheck").documentation
    assert "the future status of the health check can't be predicted" in doc
