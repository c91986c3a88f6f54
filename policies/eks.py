"""EKS rules: supported version, API authentication, logging, secrets encryption, endpoint, nodes.

The program declares each control plane through pulumi-eks (``eks:index:Cluster``, a remote
component); in a real ``pulumi preview`` the pack also sees the component's child
``aws:eks/cluster:Cluster``, whose inputs have another shape. :func:`cluster_settings` reads
either into one :class:`ClusterSettings`, and every rule below judges only that, so the two
shapes cannot drift apart in what they allow.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from infra import versions
from policies.engine import UNKNOWN, ResourceView, Rule, is_unknown, resource_rule

EKS_COMPONENT = "eks:index:Cluster"
EKS_CLUSTER = "aws:eks/cluster:Cluster"
SUBNET = "aws:ec2/subnet:Subnet"
LAUNCH_TEMPLATE = "aws:ec2/launchTemplate:LaunchTemplate"
NODE_GROUP = "aws:eks/nodeGroup:NodeGroup"

# https://docs.aws.amazon.com/eks/latest/userguide/control-plane-logs.html
LOG_TYPES: tuple[str, ...] = ("api", "audit", "authenticator", "controllerManager", "scheduler")


def _today() -> dt.date:
    # Indirection so tests can move the clock instead of editing the version table.
    return dt.date.today()


@dataclass(frozen=True)
class ClusterSettings:
    """The security-relevant settings of one EKS control plane, whichever resource declared it.

    Each field is the value as declared, :data:`UNKNOWN` while it cannot be known, or ``None``
    when not set (the rules apply the AWS/pulumi-eks default themselves).
    """

    version: Any
    authentication_mode: Any
    log_types: Any
    # The KMS key that envelope-encrypts Secrets, or None without secrets encryption.
    secrets_key: Any
    endpoint_public_access: Any
    public_access_cidrs: Any


def cluster_settings(view: ResourceView) -> ClusterSettings | None:
    """Normalise ``eks:index:Cluster`` (pulumi-eks) and ``aws:eks/cluster:Cluster`` (pulumi-aws)."""
    if view.type == EKS_COMPONENT:
        return ClusterSettings(
            version=view.get("version"),
            # pulumi-eks 3+ takes it top-level; it also forwards an `accessConfig` block as is.
            authentication_mode=view.get("authenticationMode", view.get("accessConfig.authenticationMode")),
            log_types=view.get("enabledClusterLogTypes"),
            secrets_key=view.get("encryptionConfigKeyArn"),
            endpoint_public_access=view.get("endpointPublicAccess"),
            public_access_cidrs=view.get("publicAccessCidrs"),
        )
    if view.type == EKS_CLUSTER:
        encryption = view.get("encryptionConfig")
        key: Any = None
        if is_unknown(encryption):
            key = UNKNOWN
        elif encryption:
            resources = view.get("encryptionConfig.resources")
            covers_secrets = is_unknown(resources) or (isinstance(resources, list) and "secrets" in resources)
            key = view.get("encryptionConfig.provider.keyArn") if covers_secrets else None
        return ClusterSettings(
            version=view.get("version"),
            authentication_mode=view.get("accessConfig.authenticationMode"),
            log_types=view.get("enabledClusterLogTypes"),
            secrets_key=key,
            endpoint_public_access=view.get("vpcConfig.endpointPublicAccess"),
            public_access_cidrs=view.get("vpcConfig.publicAccessCidrs"),
        )
    return None


def _cluster_check(judge: Callable[[ResourceView, ClusterSettings], list[str]]) -> Callable[..., list[str]]:
    def check(view: ResourceView) -> list[str]:
        settings = cluster_settings(view)
        return [] if settings is None else judge(view, settings)

    return check


def _cluster_name(view: ResourceView) -> str:
    name = view.get("name")
    return name if isinstance(name, str) else view.name


def _supported() -> str:
    return ", ".join(versions.EKS_STANDARD_SUPPORT)


# --- eks-version-in-standard-support ----------------------------------------------------------


def _version(view: ResourceView, s: ClusterSettings) -> list[str]:
    name = _cluster_name(view)
    if is_unknown(s.version):
        return []
    if not s.version:
        return [
            f"EKS cluster {name} does not pin a Kubernetes version, so EKS picks its default and the "
            f"version drifts; set version to one in standard support: {_supported()} "
            "(infra/versions.py EKS_STANDARD_SUPPORT)."
        ]
    version = str(s.version)
    end = versions.EKS_STANDARD_SUPPORT.get(version)
    if end is None:
        return [
            f"EKS cluster {name} runs Kubernetes {version}, which is not in EKS standard support; "
            f"upgrade platform:regions.<region>.kubernetesVersion to one of: {_supported()}."
        ]
    if dt.date.fromisoformat(end) < _today():
        return [
            f"EKS cluster {name} runs Kubernetes {version}, whose standard support ended on {end}; "
            f"upgrade to a newer version and remove {version} from EKS_STANDARD_SUPPORT in infra/versions.py."
        ]
    return []


# --- eks-authentication-mode-api ---------------------------------------------------------------


def _auth(view: ResourceView, s: ClusterSettings) -> list[str]:
    mode = s.authentication_mode
    if is_unknown(mode) or mode == "API":
        return []
    shown = "not set (EKS then uses CONFIG_MAP)" if not mode else str(mode)
    return [
        f"EKS cluster {_cluster_name(view)} authentication mode is {shown}; set authenticationMode to API "
        "so cluster access is granted only through EKS access entries, never the aws-auth ConfigMap."
    ]


# --- eks-control-plane-logging -----------------------------------------------------------------


def _logs(view: ResourceView, s: ClusterSettings) -> list[str]:
    if is_unknown(s.log_types):
        return []
    enabled = set(s.log_types) if isinstance(s.log_types, list) else set()
    missing = [t for t in LOG_TYPES if t not in enabled]
    if not missing:
        return []
    return [
        f"EKS cluster {_cluster_name(view)} does not send the {', '.join(missing)} control-plane logs; "
        f"set enabledClusterLogTypes to all of: {', '.join(LOG_TYPES)}."
    ]


# --- eks-secrets-encryption --------------------------------------------------------------------


def _secrets(view: ResourceView, s: ClusterSettings) -> list[str]:
    if is_unknown(s.secrets_key) or s.secrets_key:
        return []
    return [
        f"EKS cluster {_cluster_name(view)} does not envelope-encrypt Kubernetes Secrets; set "
        "encryptionConfigKeyArn (pulumi-eks) or encryptionConfig with resources [secrets] to a KMS key."
    ]


# --- eks-endpoint-not-open-to-internet ---------------------------------------------------------


def open_to_internet(s: ClusterSettings) -> bool | None:
    """Whether the public endpoint accepts the whole internet; None while unknown.

    The public endpoint is on unless disabled (the default of both the EKS API and pulumi-eks),
    and with no CIDR list EKS allows 0.0.0.0/0:
    https://docs.aws.amazon.com/eks/latest/userguide/cluster-endpoint.html
    """
    public = s.endpoint_public_access
    if is_unknown(public):
        return None
    if public is False:
        return False
    cidrs = s.public_access_cidrs
    if is_unknown(cidrs):
        return None
    if not cidrs:
        return True
    for cidr in cidrs:
        if is_unknown(cidr):
            return None
        try:
            if ipaddress.ip_network(str(cidr), strict=False).prefixlen == 0:
                return True
        except ValueError:
            continue
    return False


def _endpoint(view: ResourceView, s: ClusterSettings) -> list[str]:
    if not open_to_internet(s):
        return []
    return [
        f"EKS cluster {_cluster_name(view)} has a public API endpoint open to 0.0.0.0/0; set "
        "endpointPublicAccess to false, or list the allowed networks in publicAccessCidrs "
        "(platform:regions.<region>.publicAccessCidrs)."
    ]


# --- eks-nodes-no-public-ip --------------------------------------------------------------------


def _truthy(value: Any) -> bool:
    # pulumi-aws takes some booleans as strings ("true"); both forms mean the same.
    return value is True or (isinstance(value, str) and value.lower() == "true")


def _no_public_ip(view: ResourceView) -> list[str]:
    if view.type == SUBNET:
        if _truthy(view.get("mapPublicIpOnLaunch")):
            return [
                f"Subnet {view.name} gives every instance launched in it a public IP; set "
                "mapPublicIpOnLaunch to false (nodes run in private subnets; NAT gateways and load "
                "balancers get their addresses explicitly)."
            ]
        return []
    if view.type == LAUNCH_TEMPLATE:
        interfaces = view.get("networkInterfaces")
        if isinstance(interfaces, list) and any(
            isinstance(i, dict) and _truthy(i.get("associatePublicIpAddress")) for i in interfaces
        ):
            return [
                f"Launch template {view.name} gives nodes a public IP; set "
                "networkInterfaces[].associatePublicIpAddress to false."
            ]
        return []
    if view.type == EKS_COMPONENT:
        # pulumi-eks's own default node group assigns public IPs unless told not to.
        skipped = view.get("skipDefaultNodeGroup")
        if is_unknown(skipped) or skipped is True or view.get("fargate") or view.get("autoMode"):
            return []
        if view.get("nodeAssociatePublicIpAddress") is not False:
            return [
                f"EKS cluster {_cluster_name(view)} creates pulumi-eks's default node group with public "
                "IPs; set skipDefaultNodeGroup to true (nodes are managed node groups) or "
                "nodeAssociatePublicIpAddress to false."
            ]
    return []


# --- eks-nodes-imdsv2 --------------------------------------------------------------------------


def _imdsv2(view: ResourceView) -> list[str]:
    # https://docs.aws.amazon.com/AWSEC2/latest/UserGuide/configuring-IMDS-new-instances.html
    if view.type == LAUNCH_TEMPLATE:
        tokens = view.get("metadataOptions.httpTokens")
        if is_unknown(tokens) or tokens == "required":
            return []
        shown = "not set" if tokens is None else str(tokens)
        return [
            f"Launch template {view.name} leaves IMDSv2 optional (httpTokens {shown}); set "
            "metadataOptions.httpTokens to required so node credentials need a session token."
        ]
    if view.type == NODE_GROUP:
        template = view.get("launchTemplate")
        if is_unknown(template) or (
            isinstance(template, dict) and (template.get("id") or template.get("name"))
        ):
            return []
        return [
            f"Node group {view.name} has no launch template, so its instance metadata settings are "
            "EKS's defaults; attach a launch template whose metadataOptions.httpTokens is required."
        ]
    return []


_CLUSTER_TYPES = (EKS_COMPONENT, EKS_CLUSTER)
_DOC_VERSIONS = "https://docs.aws.amazon.com/eks/latest/userguide/kubernetes-versions.html"

RULES: tuple[Rule, ...] = (
    resource_rule(
        "eks-version-in-standard-support",
        "eks",
        "Every EKS cluster pins a Kubernetes version that is in EKS standard support.",
        "mandatory",
        _cluster_check(_version),
        resource_types=_CLUSTER_TYPES,
        url=_DOC_VERSIONS,
    ),
    resource_rule(
        "eks-authentication-mode-api",
        "eks",
        "Every EKS cluster grants access through access entries only (authentication mode API).",
        "mandatory",
        _cluster_check(_auth),
        resource_types=_CLUSTER_TYPES,
        url="https://docs.aws.amazon.com/eks/latest/userguide/grant-k8s-access.html#set-cam",
    ),
    resource_rule(
        "eks-control-plane-logging",
        "eks",
        "Every EKS cluster sends all five control-plane log types to CloudWatch.",
        "mandatory",
        _cluster_check(_logs),
        resource_types=_CLUSTER_TYPES,
        url="https://docs.aws.amazon.com/eks/latest/userguide/control-plane-logs.html",
    ),
    resource_rule(
        "eks-secrets-encryption",
        "eks",
        "Every EKS cluster envelope-encrypts Kubernetes Secrets with a KMS key.",
        "mandatory",
        _cluster_check(_secrets),
        resource_types=_CLUSTER_TYPES,
        url="https://docs.aws.amazon.com/eks/latest/userguide/envelope-encryption.html",
    ),
    resource_rule(
        "eks-endpoint-not-open-to-internet-prod",
        "eks",
        "No prod EKS cluster has a public API endpoint open to 0.0.0.0/0.",
        "mandatory",
        _cluster_check(_endpoint),
        applies_to="prod",
        resource_types=_CLUSTER_TYPES,
        url="https://docs.aws.amazon.com/eks/latest/userguide/cluster-endpoint.html",
    ),
    resource_rule(
        "eks-endpoint-not-open-to-internet",
        "eks",
        "Outside prod, an EKS public API endpoint open to 0.0.0.0/0 is reported (same check as prod's).",
        "advisory",
        _cluster_check(_endpoint),
        applies_to="non-prod",
        resource_types=_CLUSTER_TYPES,
        url="https://docs.aws.amazon.com/eks/latest/userguide/cluster-endpoint.html",
    ),
    resource_rule(
        "eks-nodes-no-public-ip",
        "eks",
        "No subnet, launch template or default node group gives nodes a public IP address.",
        "mandatory",
        _no_public_ip,
        resource_types=(SUBNET, LAUNCH_TEMPLATE, EKS_COMPONENT),
        url="https://docs.aws.amazon.com/eks/latest/best-practices/subnets.html",
    ),
    resource_rule(
        "eks-nodes-imdsv2",
        "eks",
        "Every node group uses a launch template that requires IMDSv2.",
        "mandatory",
        _imdsv2,
        resource_types=(LAUNCH_TEMPLATE, NODE_GROUP),
        url="https://docs.aws.amazon.com/AWSEC2/latest/UserGuide/configuring-IMDS-new-instances.html",
    ),
)
