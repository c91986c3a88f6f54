"""The one typed model of a stack's configuration.

Everything the program reads from a stack file is parsed and validated here, once, before any
resource is declared. Components receive a frozen :class:`StackConfig`; nothing else in the
program reads Pulumi config.

Two entry points feed the same parser:

* :func:`load` reads the config the Pulumi engine hands to the program (``pulumi up``/``preview``
  and the offline plan, which sets the same values through the mock runtime);
* :func:`load_stack_file` reads a ``Pulumi.<stack>.yaml`` directly (tests, the deploy and DR
  commands).

Every rule raises :class:`ConfigError`, whose message names the key, the bad value and what is
allowed.
"""

from __future__ import annotations

import ipaddress
import json
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, TypeVar

import yaml

from infra import versions

NAMESPACE = "platform"
PROJECT_ROOT = Path(__file__).resolve().parent.parent

Environment = str
SubjectForm = Literal["name", "id"]
NatMode = Literal["single", "perAz"]
CapacityType = Literal["ON_DEMAND", "SPOT"]
RegistryRole = Literal["source", "replica"]
SyncMode = Literal["automated", "manual"]
WriteBackMethod = Literal["argocd", "git"]
UpdateStrategy = Literal["semver", "newest-build", "alphabetical", "digest"]
ScanMode = Literal["basic", "enhanced"]

# The regions EKS and ECR are offered in that this platform accepts; a typo such as
# "us-west2" is refused rather than becoming a provider that fails half-way through an update.
KNOWN_REGIONS: tuple[str, ...] = (
    "us-east-1",
    "us-east-2",
    "us-west-1",
    "us-west-2",
    "ca-central-1",
    "sa-east-1",
    "eu-west-1",
    "eu-west-2",
    "eu-west-3",
    "eu-central-1",
    "eu-central-2",
    "eu-north-1",
    "eu-south-1",
    "eu-south-2",
    "ap-south-1",
    "ap-south-2",
    "ap-northeast-1",
    "ap-northeast-2",
    "ap-northeast-3",
    "ap-southeast-1",
    "ap-southeast-2",
    "ap-southeast-3",
    "ap-southeast-4",
    "ap-east-1",
    "me-south-1",
    "me-central-1",
    "il-central-1",
    "af-south-1",
)

_ENV_RE = re.compile(r"^[a-z][a-z0-9]{1,11}$")
_ACCOUNT_RE = re.compile(r"^[0-9]{12}$")
_SERVICE_RE = re.compile(r"^[a-z][a-z0-9-]{0,30}[a-z0-9]$")
_PREFIX_RE = re.compile(r"^[a-z][a-z0-9-]{0,30}[a-z0-9]$")
_GH_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")
_GH_ID_RE = re.compile(r"^[1-9][0-9]{0,19}$")
_BRANCH_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._/-]{0,199}$")
_ROLE_ARN_RE = re.compile(r"^arn:aws:iam::([0-9]{12}):role/[A-Za-z0-9+=,.@_/-]{1,512}$")
_OIDC_ARN_RE = re.compile(r"^arn:aws:iam::([0-9]{12}):oidc-provider/token\.actions\.githubusercontent\.com$")
_INSTANCE_RE = re.compile(r"^[a-z][a-z0-9-]*\.[a-z0-9]+$")
_K8S_NAME_RE = re.compile(r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")
_TAG_KEY_RE = re.compile(r"^[A-Za-z0-9 _.:/=+@-]{1,128}$")
_HOST_RE = re.compile(r"^(?=.{1,253}$)([a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?\.)+[a-z]{2,63}$")


class ConfigError(ValueError):
    """A stack configuration value is missing or not allowed.

    The message always names the key (``platform:...``), the value that was given and what is
    allowed, so the person reading it at 3 a.m. can fix the stack file without reading code.
    """

    def __init__(self, key: str, value: Any, allowed: str) -> None:
        self.key = key
        self.value = value
        self.allowed = allowed
        super().__init__(f"{key}: {_show(value)} is not allowed; {allowed}")


def _show(value: Any) -> str:
    if value is _MISSING:
        return "(missing)"
    text = json.dumps(value, sort_keys=True, default=str)
    return text if len(text) <= 120 else text[:117] + "..."


class _Missing:
    def __repr__(self) -> str:  # pragma: no cover - debugging aid
        return "<missing>"


_MISSING: Any = _Missing()


# --------------------------------------------------------------------------------------------
# The model
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class NodeGroupConfig:
    instance_types: tuple[str, ...]
    min_size: int
    desired_size: int
    max_size: int
    capacity_type: CapacityType
    disk_size_gib: int


@dataclass(frozen=True)
class RegionConfig:
    name: str
    vpc_cidr: str
    availability_zones: tuple[str, ...]
    kubernetes_version: str
    nat_gateways: NatMode
    public_access_cidrs: tuple[str, ...]
    node_group: NodeGroupConfig


@dataclass(frozen=True)
class EcrConfig:
    prefix: str
    untagged_expiry_days: int
    keep_tagged_count: int
    scanning: ScanMode
    # Where the staging registry's single replication configuration lives, and where CI pushes.
    primary_region: str


@dataclass(frozen=True)
class GitHubConfig:
    owner: str
    repository: str
    owner_id: str | None
    repository_id: str | None
    subject_form: SubjectForm
    deploy_branches: tuple[str, ...]
    environment: str
    deploy_environment: str
    existing_oidc_provider_arn: str | None

    @property
    def slug(self) -> str:
        return f"{self.owner}/{self.repository}"


@dataclass(frozen=True)
class ArgoCdConfig:
    chart_version: str
    ha: bool
    sync: SyncMode
    hostname: str | None


@dataclass(frozen=True)
class ImageUpdaterConfig:
    chart_version: str
    update_strategy: UpdateStrategy
    allow_tags: str
    write_back_method: WriteBackMethod
    git_branch: str | None


@dataclass(frozen=True)
class ApplicationConfig:
    name: str
    repo_url: str
    chart: str
    revision: str
    namespace: str

    @property
    def path(self) -> str:
        return f"charts/{self.chart}"


@dataclass(frozen=True)
class DeployConfig:
    region_order: tuple[str, ...]
    timeout_seconds: int


@dataclass(frozen=True)
class StackConfig:
    stack: str
    environment: Environment
    account_id: str
    peer_account_id: str
    registry_role: RegistryRole
    hub_region: str
    regions: tuple[RegionConfig, ...]
    cluster_admin_role_arn: str
    services: tuple[str, ...]
    sentinel_service: str
    ecr: EcrConfig
    github: GitHubConfig
    argocd: ArgoCdConfig
    image_updater: ImageUpdaterConfig
    application: ApplicationConfig
    deploy: DeployConfig
    tags: Mapping[str, str] = field(default_factory=dict)

    @property
    def region_names(self) -> tuple[str, ...]:
        return tuple(r.name for r in self.regions)

    def region(self, name: str) -> RegionConfig:
        for r in self.regions:
            if r.name == name:
                return r
        raise KeyError(name)

    @property
    def spoke_regions(self) -> tuple[str, ...]:
        return tuple(r.name for r in self.regions if r.name != self.hub_region)

    @property
    def is_prod(self) -> bool:
        return self.environment == "prod"

    @property
    def builds_images(self) -> bool:
        """True for the account whose CI builds and pushes images (staging, debug, ...)."""
        return self.registry_role == "source"


# --------------------------------------------------------------------------------------------
# Declared keys: the single list that Pulumi.yaml, the README table and the unknown-key check
# are held to (tests compare them).
# --------------------------------------------------------------------------------------------

TOP_LEVEL_KEYS: dict[str, str] = {
    "environment": "Environment name: staging, prod, or another lower-case name (e.g. debug).",
    "accountId": "The 12-digit AWS account this stack deploys into.",
    "peerAccountId": "The other account of the promotion pair: prod's account for staging "
    "(replication target), staging's account for prod (replication source).",
    "registryRole": "source (this account builds and pushes images; default for every "
    "environment but prod) or replica (receives images only by replication; default for prod).",
    "hubRegion": "The region whose cluster runs Argo CD and Image Updater. Default us-west-2.",
    "regions": "Map of region name to its settings: vpcCidr, availabilityZones, "
    "kubernetesVersion, natGateways, publicAccessCidrs, nodeGroup.",
    "clusterAdminRoleArn": "IAM role granted cluster-admin on every cluster through an EKS access entry.",
    "services": "The services (one ECR repository each), in build order.",
    "sentinelService": "The service whose image is pushed last; Image Updater watches it.",
    "ecr": "Registry settings: prefix, untaggedExpiryDays, keepTaggedCount, scanning, primaryRegion.",
    "github": "GitHub settings: owner, repository, ownerId, repositoryId, subjectForm, "
    "deployBranches, environment, deployEnvironment, oidcProviderArn.",
    "argocd": "Argo CD settings: chartVersion, ha, sync (automated|manual), hostname.",
    "imageUpdater": "Image Updater settings: chartVersion, updateStrategy, allowTags, "
    "writeBackMethod (argocd|git), gitBranch.",
    "application": "What the ApplicationSet deploys: name, repoUrl, chart, revision, namespace.",
    "deploy": "The prod deploy command: regionOrder, timeoutSeconds.",
    "tags": "Extra tags applied to every taggable AWS resource.",
}

REGION_KEYS = (
    "vpcCidr",
    "availabilityZones",
    "kubernetesVersion",
    "natGateways",
    "publicAccessCidrs",
    "nodeGroup",
)
NODE_GROUP_KEYS = ("instanceTypes", "minSize", "desiredSize", "maxSize", "capacityType", "diskSizeGiB")
ECR_KEYS = ("prefix", "untaggedExpiryDays", "keepTaggedCount", "scanning", "primaryRegion")
GITHUB_KEYS = (
    "owner",
    "repository",
    "ownerId",
    "repositoryId",
    "subjectForm",
    "deployBranches",
    "environment",
    "deployEnvironment",
    "oidcProviderArn",
)
ARGOCD_KEYS = ("chartVersion", "ha", "sync", "hostname")
IMAGE_UPDATER_KEYS = ("chartVersion", "updateStrategy", "allowTags", "writeBackMethod", "gitBranch")
APPLICATION_KEYS = ("name", "repoUrl", "chart", "revision", "namespace")
DEPLOY_KEYS = ("regionOrder", "timeoutSeconds")

# The tag scheme CI writes (build-images.yml): YYYYMMDD.HHMMSS-<short sha>. Sortable as text,
# unique per build, never reused: what an immutable repository and Image Updater both need.
DEFAULT_ALLOW_TAGS = r"regexp:^[0-9]{8}\.[0-9]{6}-[0-9a-f]{7,40}$"


# --------------------------------------------------------------------------------------------
# Small typed readers. Each takes the full key path so every message names it.
# --------------------------------------------------------------------------------------------

T = TypeVar("T")


def _k(key: str) -> str:
    return f"{NAMESPACE}:{key}"


def _mapping(value: Any, key: str, allowed_keys: Sequence[str]) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise ConfigError(_k(key), value, f"expected an object with keys {', '.join(allowed_keys)}")
    for sub in value:
        if sub not in allowed_keys:
            raise ConfigError(
                _k(f"{key}.{sub}"),
                value[sub],
                f"unknown key '{sub}'; allowed keys: {', '.join(allowed_keys)}",
            )
    return value


def _str(value: Any, key: str, pattern: re.Pattern[str] | None = None, what: str = "") -> str:
    if not isinstance(value, str) or not value:
        raise ConfigError(_k(key), value, f"expected a non-empty string{' (' + what + ')' if what else ''}")
    if pattern is not None and not pattern.match(value):
        raise ConfigError(_k(key), value, f"expected {what or pattern.pattern}")
    return value


def _choice(value: Any, key: str, choices: Sequence[str]) -> Any:
    if value not in choices:
        raise ConfigError(_k(key), value, f"expected one of: {', '.join(choices)}")
    return value


def _int(value: Any, key: str, low: int, high: int) -> int:
    # YAML gives ints; Pulumi CLI config of a top-level scalar gives strings: accept both,
    # but never a bool (True is an int in Python) or a float.
    if isinstance(value, str) and re.fullmatch(r"-?[0-9]+", value):
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int):
        raise ConfigError(_k(key), value, f"expected a whole number from {low} to {high}")
    if not low <= value <= high:
        raise ConfigError(_k(key), value, f"expected a whole number from {low} to {high}")
    return value


def _bool(value: Any, key: str) -> bool:
    if isinstance(value, bool):
        return value
    if value in ("true", "false"):
        return value == "true"
    raise ConfigError(_k(key), value, "expected true or false")


def _list(
    value: Any,
    key: str,
    item: Callable[[Any, str], T],
    *,
    min_items: int = 0,
    unique: bool = True,
    what: str = "items",
) -> tuple[T, ...]:
    if not isinstance(value, list):
        raise ConfigError(_k(key), value, f"expected a list of {what}")
    if len(value) < min_items:
        raise ConfigError(_k(key), value, f"expected at least {min_items} {what}")
    out = tuple(item(v, f"{key}[{i}]") for i, v in enumerate(value))
    if unique:
        seen: set[Any] = set()
        for i, v in enumerate(out):
            if v in seen:
                raise ConfigError(_k(f"{key}[{i}]"), v, f"duplicate entry; each of the {what} must be unique")
            seen.add(v)
    return out


def _cidr(value: Any, key: str) -> str:
    if isinstance(value, str):
        try:
            net = ipaddress.ip_network(value, strict=True)
        except ValueError:
            net = None
        if net is not None and net.version == 4:
            return value
    raise ConfigError(_k(key), value, "expected an IPv4 network in CIDR form, such as 10.10.0.0/16")


def _region(value: Any, key: str) -> str:
    if value not in KNOWN_REGIONS:
        raise ConfigError(_k(key), value, f"expected an AWS region, one of: {', '.join(KNOWN_REGIONS)}")
    return str(value)


def _optional(raw: Mapping[str, Any], name: str, default: Any) -> Any:
    value = raw.get(name, _MISSING)
    return default if value is _MISSING or value is None else value


def _required(raw: Mapping[str, Any], name: str, key: str) -> Any:
    value = raw.get(name, _MISSING)
    if value is _MISSING or value is None:
        raise ConfigError(_k(key), _MISSING, "this key is required")
    return value


# --------------------------------------------------------------------------------------------
# Section parsers
# --------------------------------------------------------------------------------------------


def _parse_node_group(raw: Any, key: str, environment: str) -> NodeGroupConfig:
    m = _mapping(raw, key, NODE_GROUP_KEYS)
    instance_types = _list(
        _required(m, "instanceTypes", f"{key}.instanceTypes"),
        f"{key}.instanceTypes",
        lambda v, k: _str(v, k, _INSTANCE_RE, "an EC2 instance type such as m6i.large"),
        min_items=1,
        what="EC2 instance types",
    )
    min_size = _int(_required(m, "minSize", f"{key}.minSize"), f"{key}.minSize", 1, 450)
    desired = _int(_required(m, "desiredSize", f"{key}.desiredSize"), f"{key}.desiredSize", 1, 450)
    max_size = _int(_required(m, "maxSize", f"{key}.maxSize"), f"{key}.maxSize", 1, 450)
    if not min_size <= desired <= max_size:
        raise ConfigError(
            _k(key),
            {"minSize": min_size, "desiredSize": desired, "maxSize": max_size},
            "expected minSize <= desiredSize <= maxSize",
        )
    default_capacity = "ON_DEMAND"
    capacity = _choice(
        _optional(m, "capacityType", default_capacity), f"{key}.capacityType", ("ON_DEMAND", "SPOT")
    )
    if environment == "prod" and capacity != "ON_DEMAND":
        raise ConfigError(
            _k(f"{key}.capacityType"), capacity, "prod nodes must be ON_DEMAND (spot capacity can vanish)"
        )
    disk = _int(_optional(m, "diskSizeGiB", 50), f"{key}.diskSizeGiB", 20, 1000)
    return NodeGroupConfig(instance_types, min_size, desired, max_size, capacity, disk)


def _parse_region(name: str, raw: Any, environment: str) -> RegionConfig:
    key = f"regions.{name}"
    m = _mapping(raw, key, REGION_KEYS)
    cidr = _cidr(_required(m, "vpcCidr", f"{key}.vpcCidr"), f"{key}.vpcCidr")
    prefix = ipaddress.ip_network(cidr).prefixlen
    if not 16 <= prefix <= 20:
        raise ConfigError(
            _k(f"{key}.vpcCidr"), cidr, "expected a VPC network from /16 to /20 (room for six subnets)"
        )
    azs = _list(
        _required(m, "availabilityZones", f"{key}.availabilityZones"),
        f"{key}.availabilityZones",
        lambda v, k: _az(v, k, name),
        what="availability zones",
    )
    if len(azs) < 2:
        raise ConfigError(
            _k(f"{key}.availabilityZones"),
            list(azs),
            "expected at least 2 availability zones (EKS needs subnets in two zones)",
        )
    if len(azs) > 6:
        raise ConfigError(_k(f"{key}.availabilityZones"), list(azs), "expected at most 6 availability zones")
    version = _required(m, "kubernetesVersion", f"{key}.kubernetesVersion")
    if not isinstance(version, str) or version not in versions.EKS_STANDARD_SUPPORT:
        raise ConfigError(
            _k(f"{key}.kubernetesVersion"),
            version,
            "expected a Kubernetes version in EKS standard support: "
            + ", ".join(versions.EKS_STANDARD_SUPPORT),
        )
    nat = _choice(
        _optional(m, "natGateways", "perAz" if environment == "prod" else "single"),
        f"{key}.natGateways",
        ("single", "perAz"),
    )
    public = _list(
        _optional(m, "publicAccessCidrs", []),
        f"{key}.publicAccessCidrs",
        _cidr,
        what="CIDRs allowed to reach the public API endpoint",
    )
    for i, c in enumerate(public):
        if ipaddress.ip_network(c).prefixlen == 0 and environment == "prod":
            raise ConfigError(
                _k(f"{key}.publicAccessCidrs[{i}]"),
                c,
                "prod's public API endpoint must never be open to the internet; list office/VPN CIDRs "
                "or leave publicAccessCidrs empty for a private-only endpoint",
            )
    node_group = _parse_node_group(
        _required(m, "nodeGroup", f"{key}.nodeGroup"), f"{key}.nodeGroup", environment
    )
    return RegionConfig(name, cidr, azs, str(version), nat, public, node_group)


def _az(value: Any, key: str, region: str) -> str:
    if not isinstance(value, str) or not re.fullmatch(re.escape(region) + r"[a-z]", value):
        raise ConfigError(_k(key), value, f"expected an availability zone of {region}, such as {region}a")
    return value


def _parse_regions(raw: Any, environment: str) -> tuple[RegionConfig, ...]:
    if not isinstance(raw, Mapping) or not raw:
        raise ConfigError(_k("regions"), raw, "expected a non-empty map of AWS region name to its settings")
    regions = []
    for name, value in raw.items():
        _region(name, f"regions.{name}")
        regions.append(_parse_region(name, value, environment))
    nets = [(r.name, ipaddress.ip_network(r.vpc_cidr)) for r in regions]
    for i, (a, na) in enumerate(nets):
        for b, nb in nets[i + 1 :]:
            if na.overlaps(nb):
                raise ConfigError(
                    _k(f"regions.{b}.vpcCidr"),
                    str(nb),
                    f"overlaps regions.{a}.vpcCidr ({na}); every region needs its own address range "
                    "so the networks can be peered or routed later",
                )
    return tuple(regions)


def _parse_ecr(raw: Any, hub: str, regions: Sequence[str], default_prefix: str) -> EcrConfig:
    m = _mapping(_optional({"v": raw}, "v", {}), "ecr", ECR_KEYS)
    prefix = _str(
        _optional(m, "prefix", default_prefix), "ecr.prefix", _PREFIX_RE, "a lower-case name such as shop"
    )
    expiry = _int(_optional(m, "untaggedExpiryDays", 14), "ecr.untaggedExpiryDays", 1, 365)
    keep = _int(_optional(m, "keepTaggedCount", 100), "ecr.keepTaggedCount", 10, 10000)
    scanning = _choice(_optional(m, "scanning", "basic"), "ecr.scanning", ("basic", "enhanced"))
    primary = _optional(m, "primaryRegion", hub)
    if primary not in regions:
        raise ConfigError(
            _k("ecr.primaryRegion"), primary, f"expected one of the stack's regions: {', '.join(regions)}"
        )
    return EcrConfig(prefix, expiry, keep, scanning, primary)


def _parse_github(raw: Any, environment: str) -> GitHubConfig:
    m = _mapping(_required({"v": raw}, "v", "github"), "github", GITHUB_KEYS)
    owner = _str(
        _required(m, "owner", "github.owner"),
        "github.owner",
        _GH_NAME_RE,
        "a GitHub owner name (no wildcards)",
    )
    repo = _str(
        _required(m, "repository", "github.repository"),
        "github.repository",
        _GH_NAME_RE,
        "a GitHub repository name (no wildcards)",
    )
    form = _choice(_optional(m, "subjectForm", "name"), "github.subjectForm", ("name", "id"))
    owner_id = m.get("ownerId")
    repo_id = m.get("repositoryId")
    if owner_id is not None:
        owner_id = _str(str(owner_id), "github.ownerId", _GH_ID_RE, "the owner's numeric GitHub ID")
    if repo_id is not None:
        repo_id = _str(str(repo_id), "github.repositoryId", _GH_ID_RE, "the repository's numeric GitHub ID")
    if form == "id" and (owner_id is None or repo_id is None):
        missing = "github.ownerId" if owner_id is None else "github.repositoryId"
        raise ConfigError(
            _k(missing),
            _MISSING,
            "required when github.subjectForm is id (subjects look like repo:OWNER@ID/REPO@ID:...)",
        )
    default_branches = [] if environment == "prod" else ["deploy/staging", "deploy/debug"]
    branches = _list(
        _optional(m, "deployBranches", default_branches),
        "github.deployBranches",
        lambda v, k: _str(v, k, _BRANCH_RE, "a branch name without wildcards, such as deploy/staging"),
        what="branch names",
    )
    env_name = _str(
        _optional(m, "environment", environment),
        "github.environment",
        _BRANCH_RE,
        "a GitHub environment name",
    )
    deploy_env = _str(
        _optional(m, "deployEnvironment", "production"),
        "github.deployEnvironment",
        _BRANCH_RE,
        "a GitHub environment name",
    )
    existing = m.get("oidcProviderArn")
    if existing is not None:
        existing = _str(
            existing,
            "github.oidcProviderArn",
            _OIDC_ARN_RE,
            "the ARN of an existing token.actions.githubusercontent.com OIDC provider",
        )
    return GitHubConfig(owner, repo, owner_id, repo_id, form, branches, env_name, deploy_env, existing)


def _parse_argocd(raw: Any, environment: str) -> ArgoCdConfig:
    m = _mapping(_optional({"v": raw}, "v", {}), "argocd", ARGOCD_KEYS)
    version = _str(
        _optional(m, "chartVersion", versions.ARGO_CD_CHART_VERSION),
        "argocd.chartVersion",
        versions.SEMVER_RE,
        "an exact chart version such as 10.1.1",
    )
    ha = _bool(_optional(m, "ha", environment == "prod"), "argocd.ha")
    sync = _choice(
        _optional(m, "sync", "manual" if environment == "prod" else "automated"),
        "argocd.sync",
        ("automated", "manual"),
    )
    host = m.get("hostname")
    if host is not None:
        host = _str(host, "argocd.hostname", _HOST_RE, "a DNS name such as argocd.example.com")
    return ArgoCdConfig(version, ha, sync, host)


def _parse_image_updater(raw: Any) -> ImageUpdaterConfig:
    m = _mapping(_optional({"v": raw}, "v", {}), "imageUpdater", IMAGE_UPDATER_KEYS)
    version = _str(
        _optional(m, "chartVersion", versions.IMAGE_UPDATER_CHART_VERSION),
        "imageUpdater.chartVersion",
        versions.SEMVER_RE,
        "an exact chart version such as 1.2.4",
    )
    strategy = _choice(
        _optional(m, "updateStrategy", "alphabetical"),
        "imageUpdater.updateStrategy",
        ("semver", "newest-build", "alphabetical", "digest"),
    )
    allow = _optional(m, "allowTags", DEFAULT_ALLOW_TAGS)
    if not isinstance(allow, str) or not allow.startswith("regexp:"):
        raise ConfigError(
            _k("imageUpdater.allowTags"), allow, "expected 'regexp:<pattern>' matching the CI tag scheme"
        )
    try:
        pattern = re.compile(allow[len("regexp:") :])
    except re.error as exc:
        raise ConfigError(
            _k("imageUpdater.allowTags"), allow, f"expected a valid regular expression ({exc})"
        ) from None
    if not pattern.fullmatch("20261122.063000-0123abc"):
        raise ConfigError(
            _k("imageUpdater.allowTags"),
            allow,
            "expected a pattern that accepts the CI tag scheme YYYYMMDD.HHMMSS-<short sha>, "
            "e.g. 20261122.063000-0123abc",
        )
    method = _choice(
        _optional(m, "writeBackMethod", "argocd"), "imageUpdater.writeBackMethod", ("argocd", "git")
    )
    branch = m.get("gitBranch")
    if branch is not None:
        branch = _str(branch, "imageUpdater.gitBranch", _BRANCH_RE, "a branch name")
    if method == "argocd" and branch is not None:
        raise ConfigError(
            _k("imageUpdater.gitBranch"), branch, "only allowed when imageUpdater.writeBackMethod is git"
        )
    return ImageUpdaterConfig(version, strategy, allow, method, branch)


def _parse_application(raw: Any) -> ApplicationConfig:
    m = _mapping(_required({"v": raw}, "v", "application"), "application", APPLICATION_KEYS)
    name = _str(
        _required(m, "name", "application.name"),
        "application.name",
        _K8S_NAME_RE,
        "a DNS-1123 label such as shop",
    )
    repo_url = _str(_required(m, "repoUrl", "application.repoUrl"), "application.repoUrl")
    if not re.fullmatch(r"https://[A-Za-z0-9.-]+/[A-Za-z0-9._/-]+?(\.git)?", repo_url) or "*" in repo_url:
        raise ConfigError(
            _k("application.repoUrl"),
            repo_url,
            "expected an https Git URL without wildcards, such as https://github.com/acme/platform.git",
        )
    chart = _str(
        _optional(m, "chart", name), "application.chart", _K8S_NAME_RE, "a chart directory name under charts/"
    )
    revision = _str(
        _optional(m, "revision", "main"), "application.revision", _BRANCH_RE, "a branch, tag or commit"
    )
    namespace = _str(
        _optional(m, "namespace", name), "application.namespace", _K8S_NAME_RE, "a Kubernetes namespace name"
    )
    if namespace in ("argocd", "kube-system", "default", "kube-public"):
        raise ConfigError(
            _k("application.namespace"), namespace, "expected a namespace of the application's own"
        )
    return ApplicationConfig(name, repo_url, chart, revision, namespace)


def _parse_tags(raw: Any) -> Mapping[str, str]:
    if raw is None:
        return {}
    if not isinstance(raw, Mapping):
        raise ConfigError(_k("tags"), raw, "expected a map of tag name to string value")
    out: dict[str, str] = {}
    for key, value in raw.items():
        if not isinstance(key, str) or not _TAG_KEY_RE.match(key) or key.lower().startswith("aws:"):
            raise ConfigError(
                _k(f"tags.{key}"), key, "expected a tag key of 1-128 characters not starting with aws:"
            )
        if not isinstance(value, str) or len(value) > 256:
            raise ConfigError(
                _k(f"tags.{key}"), value, "expected a string tag value of at most 256 characters"
            )
        out[key] = value
    return out


def parse(raw: Mapping[str, Any], stack: str) -> StackConfig:
    """Validate ``raw`` (the ``platform:`` keys without their namespace) into a StackConfig."""
    if not isinstance(raw, Mapping):
        raise ConfigError(_k("*"), raw, "expected a map of configuration keys")
    for key in raw:
        if key not in TOP_LEVEL_KEYS:
            raise ConfigError(
                _k(key), raw[key], f"unknown key '{key}'; allowed keys: {', '.join(TOP_LEVEL_KEYS)}"
            )
    environment = _str(
        _required(raw, "environment", "environment"),
        "environment",
        _ENV_RE,
        "staging, prod, or another lower-case name of 2-12 letters and digits",
    )
    account = _str(
        _required(raw, "accountId", "accountId"),
        "accountId",
        _ACCOUNT_RE,
        "a 12-digit AWS account ID (quote it in YAML)",
    )
    peer = _str(
        _required(raw, "peerAccountId", "peerAccountId"),
        "peerAccountId",
        _ACCOUNT_RE,
        "a 12-digit AWS account ID: the other account of the staging/prod pair (quote it in YAML)",
    )
    if peer == account:
        raise ConfigError(
            _k("peerAccountId"),
            peer,
            "must differ from platform:accountId: staging and prod live in separate accounts, and an "
            "account cannot be its own replication target",
        )
    registry_role = _choice(
        _optional(raw, "registryRole", "replica" if environment == "prod" else "source"),
        "registryRole",
        ("source", "replica"),
    )
    regions = _parse_regions(_required(raw, "regions", "regions"), environment)
    names = tuple(r.name for r in regions)
    hub = _optional(raw, "hubRegion", "us-west-2")
    if hub not in names:
        raise ConfigError(_k("hubRegion"), hub, f"expected one of the stack's regions: {', '.join(names)}")
    admin = _str(
        _required(raw, "clusterAdminRoleArn", "clusterAdminRoleArn"),
        "clusterAdminRoleArn",
        _ROLE_ARN_RE,
        "an IAM role ARN such as arn:aws:iam::111122223333:role/PlatformAdmin",
    )
    admin_account = _ROLE_ARN_RE.match(admin).group(1)  # type: ignore[union-attr]
    if admin_account != account:
        raise ConfigError(
            _k("clusterAdminRoleArn"), admin, f"expected a role in this stack's account {account}"
        )
    services = _list(
        _required(raw, "services", "services"),
        "services",
        lambda v, k: _str(v, k, _SERVICE_RE, "a lower-case service name such as api"),
        min_items=1,
        what="service names",
    )
    sentinel = _required(raw, "sentinelService", "sentinelService")
    if sentinel not in services:
        raise ConfigError(
            _k("sentinelService"), sentinel, f"expected one of platform:services: {', '.join(services)}"
        )
    application = _parse_application(raw.get("application"))
    ecr = _parse_ecr(raw.get("ecr"), hub, names, application.name)
    github = _parse_github(raw.get("github"), environment)
    if registry_role == "source" and not github.deploy_branches:
        raise ConfigError(
            _k("github.deployBranches"),
            [],
            "a source registry needs at least one deploy branch for CI to push images from",
        )
    if registry_role == "replica" and github.deploy_branches:
        raise ConfigError(
            _k("github.deployBranches"),
            list(github.deploy_branches),
            "a replica registry (prod) receives images only by replication; leave deployBranches empty",
        )
    argocd = _parse_argocd(raw.get("argocd"), environment)
    image_updater = _parse_image_updater(raw.get("imageUpdater"))
    deploy = _parse_deploy(raw.get("deploy"), names, hub)
    tags = _parse_tags(raw.get("tags"))
    return StackConfig(
        stack=stack,
        environment=environment,
        account_id=account,
        peer_account_id=peer,
        registry_role=registry_role,
        hub_region=hub,
        regions=regions,
        cluster_admin_role_arn=admin,
        services=services,
        sentinel_service=sentinel,
        ecr=ecr,
        github=github,
        argocd=argocd,
        image_updater=image_updater,
        application=application,
        deploy=deploy,
        tags=tags,
    )


def _parse_deploy(raw: Any, regions: Sequence[str], hub: str) -> DeployConfig:
    m = _mapping(_optional({"v": raw}, "v", {}), "deploy", DEPLOY_KEYS)
    # Default: spokes first, the hub last, so a bad release is caught before it reaches the
    # region that also runs the control plane of the deploys.
    default_order = [r for r in regions if r != hub] + [hub]
    order = _list(_optional(m, "regionOrder", default_order), "deploy.regionOrder", _region, what="regions")
    for i, region in enumerate(order):
        if region not in regions:
            raise ConfigError(
                _k(f"deploy.regionOrder[{i}]"),
                region,
                f"expected one of the stack's regions: {', '.join(regions)}",
            )
    # A region added to the stack but not yet to the order deploys after the listed ones, so
    # adding a region needs nothing but its entry under platform:regions.
    order = (*order, *(r for r in default_order if r not in order))
    timeout = _int(_optional(m, "timeoutSeconds", 900), "deploy.timeoutSeconds", 30, 7200)
    return DeployConfig(order, timeout)


# --------------------------------------------------------------------------------------------
# Loading
# --------------------------------------------------------------------------------------------


def _decode(value: Any) -> Any:
    """Pulumi hands structured config to the program as JSON text; scalars stay strings."""
    if isinstance(value, str) and value[:1] in ("{", "["):
        try:
            return json.loads(value)
        except json.JSONDecodeError:
            return value
    return value


def from_flat(flat: Mapping[str, Any], stack: str) -> StackConfig:
    """Parse a flat ``{"platform:key": value}`` map (the shape Pulumi and stack files use)."""
    raw: dict[str, Any] = {}
    for full_key, value in flat.items():
        ns, _, key = full_key.partition(":")
        if ns == NAMESPACE:
            raw[key] = _decode(value)
    return parse(raw, stack)


def load() -> StackConfig:
    """Load the running Pulumi stack's configuration (inside ``pulumi up``/``preview``/mocks)."""
    import pulumi
    from pulumi.runtime import config as runtime_config

    flat: dict[str, Any] = dict(runtime_config.get_config_env())
    flat.update(runtime_config.CONFIG.get())
    return from_flat(flat, pulumi.get_stack())


def stack_file(stack: str, root: Path = PROJECT_ROOT) -> Path:
    return root / f"Pulumi.{stack}.yaml"


def read_stack_file(path: Path) -> dict[str, Any]:
    """The ``config:`` map of a stack file, as written (YAML types kept)."""
    try:
        # libyaml's loader where the wheel has it (it does on common platforms): same result, faster.
        doc = yaml.load(path.read_text(), Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
    except FileNotFoundError:
        raise ConfigError("stack file", str(path), "expected an existing Pulumi.<stack>.yaml") from None
    config = (doc or {}).get("config") or {}
    if not isinstance(config, dict):
        raise ConfigError("config", config, f"expected a map under 'config:' in {path.name}")
    return config


def load_stack_file(stack: str, root: Path = PROJECT_ROOT) -> StackConfig:
    # Encoded exactly as the Pulumi CLI hands it to the program, so a file that loads here loads
    # the same way under `pulumi up`.
    return from_flat(as_pulumi_config(read_stack_file(stack_file(stack, root))), stack)


def as_pulumi_config(config: Mapping[str, Any]) -> dict[str, str]:
    """Encode a stack file's config map as the Pulumi CLI passes it to a program.

    Objects and lists become JSON text, booleans ``true``/``false``, everything else ``str``.
    The offline plan uses this so the program reads exactly what ``pulumi up`` would give it.
    """
    out: dict[str, str] = {}
    for key, value in config.items():
        if isinstance(value, dict | list):
            out[key] = json.dumps(value)
        elif isinstance(value, bool):
            out[key] = "true" if value else "false"
        else:
            out[key] = str(value)
    return out
