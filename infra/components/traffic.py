"""The way in (issue 18): per region, the certificate, the health check and the web ACL.

What the program owns of the traffic path (docs/traffic.md says why the DNS records are not
among them: each region's ExternalDNS writes those from the chart's Ingresses). The values are
pure data from :mod:`infra.traffic`; the facts these components produce (certificate ARN,
health check ID, web ACL ARN) reach the chart through the cluster Secrets
(:class:`infra.components.argocd.ClusterRegistration`).

Providers: the certificate and the web ACL are regional (an ALB takes certificates and a
regional web ACL of its own region), so each is declared with that region's provider. Route 53
is global: the validation records and the health checks go through the account's provider
(infra/providers.py ``account_provider``), which never follows the hub, so neither a lost region
nor a moved hub touches them.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_aws as aws

from infra import naming, traffic
from infra.config import StackConfig, TrafficConfig

TYPE_CERTIFICATE = "platform:traffic:RegionalCertificate"
TYPE_HEALTH_CHECK = "platform:traffic:RegionHealthCheck"
TYPE_WEB_ACL = "platform:traffic:RegionalWebAcl"
TYPE_PUBLIC_NAME = "platform:traffic:PublicNameValidation"

# ACM's DNS validation records: the CNAME ACM gives for a domain name is the same for every
# certificate of that name in the account, in every region ("Each record, created specifically
# for your domain and your account ... Since the CNAME validation token works for any AWS Region,
# you can re-create the same certificate in multiple Regions":
# https://docs.aws.amazon.com/acm/latest/userguide/dns-validation.html). So the public name's
# record is declared once (PublicNameValidation) and every region's validation waits for it;
# each region's own name has its own record. TTL as ACM's console writes them.
VALIDATION_RECORD_TTL = 300


def tags(config: StackConfig) -> dict[str, str]:
    return naming.base_tags(config.environment, config.tags)


@dataclass(frozen=True)
class RegionalCertificateArgs:
    traffic: TrafficConfig
    region: str
    tags: Mapping[str, str]
    provider: aws.Provider
    # Route 53 (global): the account's provider.
    zone_provider: aws.Provider


def _validation_record(
    name: str,
    certificate: aws.acm.Certificate,
    domain: str,
    zone_id: str,
    opts: pulumi.ResourceOptions,
) -> aws.route53.Record:
    option = certificate.domain_validation_options.apply(
        lambda options: next(o for o in options if o.domain_name == domain)
    )
    return aws.route53.Record(
        name,
        zone_id=zone_id,
        name=option.apply(lambda o: o.resource_record_name),
        type=option.apply(lambda o: o.resource_record_type),
        records=[option.apply(lambda o: o.resource_record_value)],
        ttl=VALIDATION_RECORD_TTL,
        # The record may already exist: ACM reuses it for every certificate of this name in the
        # account (a previous stack of this account, a certificate made by hand).
        allow_overwrite=True,
        opts=opts,
    )


class RegionalCertificate(pulumi.ComponentResource):
    """One region's ACM certificate for the public name and the region's name, validated by DNS
    in the stack's zone (https://docs.aws.amazon.com/acm/latest/userguide/dns-validation.html).

    ``certificate_arn`` resolves only once ACM has issued it (``aws.acm.CertificateValidation``
    waits), so the cluster Secret never hands the load balancer a pending certificate. The
    certificate is retained on delete: the ALB keeps using it until Argo CD renders the new ARN,
    and ACM refuses to delete a certificate in use (DeleteCertificate: ResourceInUseException).
    """

    def __init__(
        self, name: str, args: RegionalCertificateArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__(TYPE_CERTIFICATE, name, None, opts)
        public, regional = traffic.certificate_names(args.traffic, args.region)
        zone_id = args.traffic.hosted_zone_id
        self.certificate = aws.acm.Certificate(
            name,
            domain_name=public,
            subject_alternative_names=[regional],
            validation_method="DNS",
            tags=dict(args.tags),
            opts=pulumi.ResourceOptions(parent=self, provider=args.provider, retain_on_delete=True),
        )
        on_zone = pulumi.ResourceOptions(parent=self, provider=args.zone_provider)
        self.region_record = _validation_record(
            f"{name}-validation-region", self.certificate, regional, zone_id, on_zone
        )
        self._provider = args.provider
        self._name = name

    def validate(self, public_name: PublicNameValidation) -> pulumi.Output[str]:
        """Wait for ACM to issue the certificate once both validation records exist; the ARN of
        the issued certificate."""
        self.validation = aws.acm.CertificateValidation(
            self._name,
            certificate_arn=self.certificate.arn,
            validation_record_fqdns=[public_name.record.fqdn, self.region_record.fqdn],
            opts=pulumi.ResourceOptions(parent=self, provider=self._provider),
        )
        self.certificate_arn: pulumi.Output[str] = self.validation.certificate_arn
        self.register_outputs({"certificateArn": self.certificate_arn})
        return self.certificate_arn


@dataclass(frozen=True)
class PublicNameValidationArgs:
    traffic: TrafficConfig
    # Any region's certificate: ACM gives every certificate of the public name in this account the
    # same validation CNAME.
    certificate: aws.acm.Certificate
    # Route 53 (global): the account's provider.
    zone_provider: aws.Provider


class PublicNameValidation(pulumi.ComponentResource):
    """The public name's ACM validation record, declared once for every region's certificate.

    Its own component with a name of its own (not a child of one region's certificate), so which
    region's certificate it reads never changes its URN: removing that region from the stack
    reads the next one's (the same record), instead of deleting the record every certificate
    renews with.
    """

    def __init__(
        self, name: str, args: PublicNameValidationArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__(TYPE_PUBLIC_NAME, name, None, opts)
        self.record = _validation_record(
            name,
            args.certificate,
            args.traffic.host,
            args.traffic.hosted_zone_id,
            pulumi.ResourceOptions(parent=self, provider=args.zone_provider),
        )
        self.register_outputs({"fqdn": self.record.fqdn})


@dataclass(frozen=True)
class RegionHealthCheckArgs:
    config: StackConfig
    region: str
    # Route 53 (global): the account's provider.
    provider: aws.Provider


class RegionHealthCheck(pulumi.ComponentResource):
    """A Route 53 health check requesting ``https://<region>.<host><healthCheckPath>``; the region's
    latency record carries its ID (ExternalDNS ``aws-health-check-id``), so Route 53 stops
    answering with a region whose check fails
    (https://docs.aws.amazon.com/Route53/latest/DeveloperGuide/health-checks-how-route-53-chooses-records.html)."""

    def __init__(
        self, name: str, args: RegionHealthCheckArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__(TYPE_HEALTH_CHECK, name, None, opts)
        settings: dict[str, Any] = traffic.health_check_args(args.config, args.region)
        self.health_check = aws.route53.HealthCheck(
            name,
            **settings,
            tags={**tags(args.config), "Name": traffic.health_check_name(args.config, args.region)},
            opts=pulumi.ResourceOptions(parent=self, provider=args.provider),
        )
        self.health_check_id: pulumi.Output[str] = self.health_check.id
        self.register_outputs({"healthCheckId": self.health_check_id})


@dataclass(frozen=True)
class RegionalWebAclArgs:
    config: StackConfig
    region: str
    provider: aws.Provider


class RegionalWebAcl(pulumi.ComponentResource):
    """A regional AWS WAF web ACL of AWS managed rule groups (:data:`infra.traffic.MANAGED_RULE_GROUPS`),
    allowing what none of them blocks; the load balancer is associated with it through the
    Ingress annotation ``alb.ingress.kubernetes.io/wafv2-acl-arn`` (the controller associates it)."""

    def __init__(
        self, name: str, args: RegionalWebAclArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__(TYPE_WEB_ACL, name, None, opts)
        acl_name = traffic.web_acl_name(args.config, args.region)
        self.web_acl = aws.wafv2.WebAcl(
            name,
            name=acl_name,
            description=f"The storefront of {args.config.environment} in {args.region}",
            scope="REGIONAL",
            default_action={"allow": {}},
            rules=traffic.web_acl_rules(acl_name),
            visibility_config={
                "cloudwatch_metrics_enabled": True,
                "metric_name": acl_name,
                "sampled_requests_enabled": True,
            },
            tags=tags(args.config),
            opts=pulumi.ResourceOptions(parent=self, provider=args.provider),
        )
        self.web_acl_arn: pulumi.Output[str] = self.web_acl.arn
        self.register_outputs({"webAclArn": self.web_acl_arn})


@dataclass(frozen=True)
class RegionTraffic:
    """The facts of one region the cluster Secret carries (outputs)."""

    certificate_arn: pulumi.Output[str]
    health_check_id: pulumi.Output[str]
    waf_acl_arn: pulumi.Output[str] | None


def build_traffic(
    config: StackConfig, providers: Mapping[str, aws.Provider], account: aws.Provider
) -> dict[str, RegionTraffic]:
    """Each region's certificate, health check and (WAF on) web ACL; empty without platform:traffic.

    Regions in ``platform:unreachableRegions`` are still declared: their resources are in the
    state, and the lost region's provider is the one that can read them once it answers again.
    """
    settings = config.traffic
    if settings is None:
        return {}
    certificates = {
        region: RegionalCertificate(
            f"traffic-certificate-{region}",
            RegionalCertificateArgs(
                traffic=settings,
                region=region,
                tags=tags(config),
                provider=providers[region],
                zone_provider=account,
            ),
        )
        for region in config.region_names
    }
    public_name = PublicNameValidation(
        "traffic-public-name",
        PublicNameValidationArgs(
            traffic=settings,
            # The hub's: a rebuild of the hub already reaches every cluster Secret, while a spoke's
            # rebuild (its certificate a target) would drag this record, and through each region's
            # validation every cluster Secret, into --target-dependents (infra/dr.py rebuild_sets).
            certificate=certificates[config.hub_region].certificate,
            zone_provider=account,
        ),
    )
    out: dict[str, RegionTraffic] = {}
    for region in config.region_names:
        certificate_arn = certificates[region].validate(public_name)
        check = RegionHealthCheck(
            f"traffic-health-{region}", RegionHealthCheckArgs(config=config, region=region, provider=account)
        )
        acl = (
            RegionalWebAcl(
                f"traffic-waf-{region}",
                RegionalWebAclArgs(config=config, region=region, provider=providers[region]),
            )
            if settings.waf
            else None
        )
        out[region] = RegionTraffic(
            certificate_arn, check.health_check_id, acl.web_acl_arn if acl is not None else None
        )
    return out
