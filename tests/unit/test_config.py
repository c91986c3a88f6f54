"""The stack config loader: every validation rule, with its exact message.

Each case starts from a synthetic stack file (``tests/fixtures/stacks``, not the project's own,
which users change), breaks one thing, and asserts the message names the key, the bad value and
what is allowed. The tests of the project's own stack files check invariants only.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Callable
from typing import Any

import pytest
import yaml

from infra import config, config_schema
from tests import changes
from tests.conftest import ROOT, fixture_config_map, stack_config_map
from tests.conftest import config_error as error
from tests.conftest import load_map as load

# ---------------------------------------------------------------------------------------------
# The examples
# ---------------------------------------------------------------------------------------------


def test_example_stacks_load_with_their_environment_differences() -> None:
    staging = config.load_stack_file("staging")
    prod = config.load_stack_file("prod")
    assert staging.environment == "staging" and prod.environment == "prod"
    assert staging.account_id != prod.account_id
    assert staging.peer_account_id == prod.account_id and prod.peer_account_id == staging.account_id
    # Prod runs no region staging does not replicate into (infra/stackset.py refuses it).
    assert set(prod.region_names) <= set(staging.region_names)
    assert staging.hub_region in staging.region_names and prod.hub_region in prod.region_names
    assert staging.builds_images and not prod.builds_images
    # deploy-prod.yml's command deploys only a manual-sync stack (infra/deploy.py refuses others).
    assert prod.argocd.sync == "manual"
    assert staging.sentinel_service in staging.services
    # The config refuses spot capacity in prod.
    assert {r.node_group.capacity_type for r in prod.regions} == {"ON_DEMAND"}


def test_config_is_frozen() -> None:
    c = config.load_stack_file("prod")
    with pytest.raises(AttributeError):
        c.environment = "staging"  # type: ignore[misc]


def test_a_third_stack_needs_nothing_but_a_stack_file(tmp_path: Any) -> None:
    raw = stack_config_map("staging")
    raw["platform:environment"] = "debug"
    (tmp_path / "Pulumi.debug.yaml").write_text(yaml.safe_dump({"config": raw}))
    debug = config.load_stack_file("debug", root=tmp_path)
    assert debug.environment == "debug" and debug.stack == "debug"
    staging = config.load_stack_file("staging")
    assert debug.builds_images is staging.builds_images and debug.argocd == staging.argocd


def test_pulumi_yaml_declares_the_typable_keys_with_type_description_and_default() -> None:
    """Pulumi's project schema types a key as string, integer, boolean or array only, and makes a
    declared key without default required (see infra/config_schema.py): Pulumi.yaml declares the
    typable keys the model requires or gives a constant default; the JSON Schema describes all."""
    project = yaml.safe_load((ROOT / "Pulumi.yaml").read_text())
    assert project["name"] == "platform"
    declared = project["config"]
    schema = config_schema.model_schema()
    props, required = schema["properties"], set(schema["required"])
    assert set(declared) <= set(config.TOP_LEVEL_KEYS)
    for key, prop in props.items():
        typable = prop.get("type") in ("string", "integer", "boolean", "array")
        assert (key in declared) == (typable and (key in required or "default" in prop)), key
    for key, spec in declared.items():
        assert spec["description"] == config.TOP_LEVEL_KEYS[key], key
        assert spec["type"] == props[key]["type"], key
        assert spec.get("default") == props[key].get("default"), key
    for key in config.TOP_LEVEL_KEYS:
        assert props[key]["description"] == config.TOP_LEVEL_KEYS[key], key


def test_every_stack_file_disables_default_providers() -> None:
    for path in sorted(ROOT.glob("Pulumi.*.yaml")):
        raw = config.read_stack_file(path)
        assert raw.get("pulumi:disable-default-providers") == ["*"], path.name
        for key in raw:
            if key.startswith("platform:"):
                assert key.split(":", 1)[1] in config.TOP_LEVEL_KEYS, key


# ---------------------------------------------------------------------------------------------
# One rule, one exact message
# ---------------------------------------------------------------------------------------------

Case = tuple[str, Callable[[dict[str, Any]], None], str]


def _set(key: str, value: Any) -> Callable[[dict[str, Any]], None]:
    def apply(raw: dict[str, Any]) -> None:
        raw[key] = value

    return apply


def _region(region: str, field: str, value: Any) -> Callable[[dict[str, Any]], None]:
    def apply(raw: dict[str, Any]) -> None:
        raw["platform:regions"][region][field] = value

    return apply


def _nodes(region: str, **values: Any) -> Callable[[dict[str, Any]], None]:
    def apply(raw: dict[str, Any]) -> None:
        raw["platform:regions"][region]["nodeGroup"].update(values)

    return apply


def _section(section: str, field: str, value: Any) -> Callable[[dict[str, Any]], None]:
    def apply(raw: dict[str, Any]) -> None:
        raw[f"platform:{section}"][field] = value

    return apply


def _github_plan(plan: str, visibility: str) -> Callable[[dict[str, Any]], None]:
    def apply(raw: dict[str, Any]) -> None:
        raw["platform:github"].update({"plan": plan, "visibility": visibility})

    return apply


def _delete(key: str) -> Callable[[dict[str, Any]], None]:
    def apply(raw: dict[str, Any]) -> None:
        del raw[key]

    return apply


def _add_region(name: str, body: dict[str, Any]) -> Callable[[dict[str, Any]], None]:
    def apply(raw: dict[str, Any]) -> None:
        raw["platform:regions"][name] = body

    return apply


_EU_CENTRAL = {
    "vpcCidr": "10.13.0.0/16",
    "availabilityZones": ["eu-central-1a", "eu-central-1b"],
    "kubernetesVersion": "1.35",
    "nodeGroup": {"instanceTypes": ["m6i.large"], "minSize": 1, "desiredSize": 1, "maxSize": 2},
}

STAGING_CASES: list[Case] = [
    (
        "unknown top-level key (a typo)",
        _set("platform:hubRegoin", "us-east-1"),
        "platform:hubRegoin: \"us-east-1\" is not allowed; unknown key 'hubRegoin'; did you mean 'hubRegion'? "
        "allowed keys: " + ", ".join(config.TOP_LEVEL_KEYS),
    ),
    (
        "unknown nested key",
        _nodes("us-east-1", desiredSise=3),
        "platform:regions.us-east-1.nodeGroup.desiredSise: 3 is not allowed; unknown key 'desiredSise'; "
        "did you mean 'desiredSize'? allowed keys: " + ", ".join(config.NODE_GROUP_KEYS),
    ),
    (
        "environment with upper case",
        _set("platform:environment", "Staging"),
        'platform:environment: "Staging" is not allowed; expected staging, prod, or another lower-case '
        "name of 2-12 letters and digits",
    ),
    (
        "missing environment",
        _delete("platform:environment"),
        "platform:environment: (missing) is not allowed; this key is required",
    ),
    (
        "account id of 11 digits",
        _set("platform:accountId", "11112222333"),
        'platform:accountId: "11112222333" is not allowed; expected a 12-digit AWS account ID (quote it in YAML)',
    ),
    (
        "missing peer account",
        _delete("platform:peerAccountId"),
        "platform:peerAccountId: (missing) is not allowed; this key is required",
    ),
    (
        "staging and prod in the same account (its own replication target)",
        _set("platform:peerAccountId", "111122223333"),
        'platform:peerAccountId: "111122223333" is not allowed; must differ from platform:accountId: '
        "staging and prod live in separate accounts, and an account cannot be its own replication target",
    ),
    (
        "unknown region",
        _add_region("us-west2", _EU_CENTRAL),
        "platform:regions.us-west2: \"us-west2\" is not allowed; did you mean 'us-west-2'? expected an AWS region, one of: "
        + ", ".join(config.KNOWN_REGIONS),
    ),
    (
        "empty regions",
        _set("platform:regions", {}),
        "platform:regions: {} is not allowed; expected a non-empty map of AWS region name to its settings",
    ),
    (
        "hub not among the regions",
        _set("platform:hubRegion", "eu-central-1"),
        'platform:hubRegion: "eu-central-1" is not allowed; expected one of the stack\'s regions: '
        "us-west-2, us-east-1, eu-west-1",
    ),
    (
        "overlapping CIDRs",
        _region("eu-west-1", "vpcCidr", "10.10.128.0/17"),
        'platform:regions.eu-west-1.vpcCidr: "10.10.128.0/17" is not allowed; overlaps '
        "regions.us-west-2.vpcCidr (10.10.0.0/16); every region needs its own address range so the "
        "networks can be peered or routed later",
    ),
    (
        "malformed CIDR",
        _region("us-east-1", "vpcCidr", "10.11.0.0/33"),
        'platform:regions.us-east-1.vpcCidr: "10.11.0.0/33" is not allowed; expected an IPv4 network in '
        "CIDR form, such as 10.10.0.0/16",
    ),
    (
        "VPC too small",
        _region("us-east-1", "vpcCidr", "10.11.0.0/24"),
        'platform:regions.us-east-1.vpcCidr: "10.11.0.0/24" is not allowed; expected a VPC network from /16 '
        "to /20 (room for six subnets)",
    ),
    (
        "availability zone of another region",
        _region("us-east-1", "availabilityZones", ["us-east-1a", "us-west-2b"]),
        'platform:regions.us-east-1.availabilityZones[1]: "us-west-2b" is not allowed; expected an '
        "availability zone of us-east-1, such as us-east-1a",
    ),
    (
        "fewer than two availability zones",
        _region("us-east-1", "availabilityZones", ["us-east-1a"]),
        'platform:regions.us-east-1.availabilityZones: ["us-east-1a"] is not allowed; expected at least 2 '
        "availability zones (EKS needs subnets in two zones)",
    ),
    (
        "duplicate availability zone",
        _region("us-east-1", "availabilityZones", ["us-east-1a", "us-east-1a"]),
        'platform:regions.us-east-1.availabilityZones[1]: "us-east-1a" is not allowed; duplicate entry; '
        "each of the availability zones must be unique",
    ),
    (
        "Kubernetes version out of standard support",
        _region("us-west-2", "kubernetesVersion", "1.29"),
        'platform:regions.us-west-2.kubernetesVersion: "1.29" is not allowed; expected a Kubernetes version '
        "in EKS standard support: " + ", ".join(config.versions.EKS_STANDARD_SUPPORT),
    ),
    (
        "node sizes out of order",
        _nodes("us-west-2", minSize=4, desiredSize=3, maxSize=6),
        'platform:regions.us-west-2.nodeGroup: {"desiredSize": 3, "maxSize": 6, "minSize": 4} is not '
        "allowed; expected minSize <= desiredSize <= maxSize",
    ),
    (
        "node count as a string",
        _nodes("us-west-2", maxSize="six"),
        'platform:regions.us-west-2.nodeGroup.maxSize: "six" is not allowed; expected a whole number from 1 to 450',
    ),
    (
        "empty instance types",
        _nodes("us-west-2", instanceTypes=[]),
        "platform:regions.us-west-2.nodeGroup.instanceTypes: [] is not allowed; expected at least 1 EC2 "
        "instance types",
    ),
    (
        "NAT mode typo",
        _region("us-west-2", "natGateways", "per-az"),
        'platform:regions.us-west-2.natGateways: "per-az" is not allowed; expected one of: single, perAz',
    ),
    (
        "x86 and Graviton types in one node group",
        _nodes("us-east-1", instanceTypes=["m6i.large", "a1.large", "m7g.large"]),
        'platform:regions.us-east-1.nodeGroup.instanceTypes: ["m6i.large", "a1.large", "m7g.large"] is not '
        "allowed; expected instance types of one CPU architecture (a node group runs one AMI type), got "
        "arm64: a1.large, m7g.large; x86_64: m6i.large",
    ),
    (
        "an EC2 Mac type as a node",
        _nodes("us-east-1", instanceTypes=["mac2.metal"]),
        'platform:regions.us-east-1.nodeGroup.instanceTypes[0]: "mac2.metal" is not allowed; EC2 Mac instances '
        "run only on Dedicated Hosts and cannot be EKS managed nodes; expected a Linux instance type such as "
        "m6i.large or m7g.large",
    ),
    (
        "empty service list",
        _set("platform:services", []),
        "platform:services: [] is not allowed; expected at least 1 service names",
    ),
    (
        "duplicate service",
        _set("platform:services", ["web", "catalog", "web"]),
        'platform:services[2]: "web" is not allowed; duplicate entry; each of the service names must be unique',
    ),
    (
        "sentinel that is not a service",
        _set("platform:sentinelService", "frontend"),
        'platform:sentinelService: "frontend" is not allowed; expected one of platform:services: '
        "catalog, checkout, payments, web",
    ),
    (
        "admin role in another account",
        _set("platform:clusterAdminRoleArn", "arn:aws:iam::444455556666:role/PlatformAdmin"),
        'platform:clusterAdminRoleArn: "arn:aws:iam::444455556666:role/PlatformAdmin" is not allowed; '
        "expected a role in this stack's account 111122223333",
    ),
    (
        "wildcard GitHub owner",
        _section("github", "owner", "*"),
        'platform:github.owner: "*" is not allowed; expected a GitHub owner name (no wildcards)',
    ),
    (
        "id subject form without the ids",
        _section("github", "subjectForm", "id"),
        "platform:github.ownerId: (missing) is not allowed; required when github.subjectForm is id "
        "(subjects look like repo:OWNER@ID/REPO@ID:...)",
    ),
    (
        "source registry without deploy branches",
        _section("github", "deployBranches", []),
        "platform:github.deployBranches: [] is not allowed; a source registry needs at least one deploy "
        "branch for CI to push images from",
    ),
    (
        "wildcard deploy branch",
        _section("github", "deployBranches", ["deploy/*"]),
        'platform:github.deployBranches[0]: "deploy/*" is not allowed; expected a branch name without '
        "wildcards, such as deploy/staging",
    ),
    (
        "unknown GitHub plan",
        _section("github", "plan", "gold"),
        'platform:github.plan: "gold" is not allowed; expected one of: free, pro, team, enterprise',
    ),
    (
        "GitHub plan missing",
        lambda raw: raw["platform:github"].pop("plan"),
        "platform:github.plan: (missing) is not allowed; this key is required",
    ),
    (
        "a private repository on GitHub Free",
        _github_plan("free", "private"),
        'platform:github.plan: "free" is not allowed; on GitHub free a private repository has no '
        "environments (their secrets, their deployment branch rules) and no rulesets (protect-main): "
        "the environments this stack's roles trust would be unprotected; allowed: pro, team, enterprise, "
        "or visibility public",
    ),
    (
        "an internal repository outside Enterprise Cloud",
        _github_plan("team", "internal"),
        'platform:github.visibility: "internal" is not allowed; a team plan has no internal repositories '
        "(GitHub Enterprise Cloud only); allowed: public or private, or plan enterprise",
    ),
    (
        "git write-back onto the protected release branch",
        _section("imageUpdater", "writeBackMethod", "git"),
        "platform:imageUpdater.gitBranch: (missing) is not allowed; Image Updater's git write-back would "
        "push to main of acme/platform, which prod's protect-main ruleset admits through reviewed pull "
        "requests only; allowed: writeBackMethod argocd, or an application.revision (the branch Argo CD "
        "tracks) and gitBranch other than main",
    ),
    (
        "sync mode typo",
        _section("argocd", "sync", "auto"),
        'platform:argocd.sync: "auto" is not allowed; expected one of: automated, manual',
    ),
    (
        "chart version range",
        _section("argocd", "chartVersion", "10.x"),
        'platform:argocd.chartVersion: "10.x" is not allowed; expected an exact chart version such as 10.1.1',
    ),
    (
        "allowTags that rejects the CI tags",
        _section("imageUpdater", "allowTags", "regexp:^v[0-9]+$"),
        'platform:imageUpdater.allowTags: "regexp:^v[0-9]+$" is not allowed; expected a pattern that '
        "accepts the CI tag scheme YYYYMMDD.HHMMSS-<short sha>, e.g. 20261122.063000-0123abc",
    ),
    (
        "write-back method typo",
        _section("imageUpdater", "writeBackMethod", "github"),
        'platform:imageUpdater.writeBackMethod: "github" is not allowed; expected one of: argocd, git',
    ),
    (
        "application repository over http",
        _section("application", "repoUrl", "http://github.com/acme/platform.git"),
        'platform:application.repoUrl: "http://github.com/acme/platform.git" is not allowed; expected an '
        "https Git URL without wildcards, such as https://github.com/acme/platform.git",
    ),
    (
        "application in a system namespace",
        _section("application", "namespace", "kube-system"),
        'platform:application.namespace: "kube-system" is not allowed; expected a namespace of the '
        "application's own",
    ),
    (
        "deploy order naming a region the stack does not have",
        _section("deploy", "regionOrder", ["us-east-1", "eu-central-1"]),
        'platform:deploy.regionOrder[1]: "eu-central-1" is not allowed; expected one of the stack\'s regions: us-west-2, us-east-1, eu-west-1',
    ),
    (
        "deploy order naming a region twice",
        _section("deploy", "regionOrder", ["us-east-1", "us-east-1"]),
        'platform:deploy.regionOrder[1]: "us-east-1" is not allowed; duplicate entry; each of the regions must be unique',
    ),
    (
        "a tag in the aws: namespace",
        _set("platform:tags", {"aws:owner": "me"}),
        'platform:tags.aws:owner: "aws:owner" is not allowed; expected a tag key of 1-128 characters not '
        "starting with aws:",
    ),
    (
        "ECR primary region outside the stack",
        _section("ecr", "primaryRegion", "eu-central-1"),
        'platform:ecr.primaryRegion: "eu-central-1" is not allowed; expected one of the stack\'s regions: '
        "us-west-2, us-east-1, eu-west-1",
    ),
]

PROD_CASES: list[Case] = [
    (
        "public endpoint open to the internet in prod",
        _region("us-east-1", "publicAccessCidrs", ["0.0.0.0/0"]),
        'platform:regions.us-east-1.publicAccessCidrs[0]: "0.0.0.0/0" is not allowed; prod\'s public API '
        "endpoint must never be open to the internet; list office/VPN CIDRs or leave publicAccessCidrs "
        "empty for a private-only endpoint",
    ),
    (
        "spot nodes in prod",
        _nodes("eu-west-1", capacityType="SPOT"),
        'platform:regions.eu-west-1.nodeGroup.capacityType: "SPOT" is not allowed; prod nodes must be '
        "ON_DEMAND (spot capacity can vanish)",
    ),
    (
        "prod's reviewers in a private repository on GitHub Team",
        _github_plan("team", "private"),
        'platform:github.plan: "team" is not allowed; on GitHub team a private repository has no required '
        "reviewers of environments: the environments this stack's roles trust would be unprotected; "
        "allowed: enterprise, or visibility public",
    ),
    (
        "push branches on a replica registry",
        _section("github", "deployBranches", ["deploy/prod"]),
        'platform:github.deployBranches: ["deploy/prod"] is not allowed; a replica registry (prod) receives '
        "images only by replication; leave deployBranches empty",
    ),
]


@pytest.mark.parametrize(
    ("stack", "case"),
    [("staging", c) for c in STAGING_CASES] + [("prod", c) for c in PROD_CASES],
    ids=lambda v: v[0] if isinstance(v, tuple) else v,
)
def test_each_rule_has_an_exact_message(stack: str, case: Case) -> None:
    _, mutate, expected = case
    raw = fixture_config_map(stack)
    mutate(raw)
    assert error(raw, stack) == expected


def test_a_manual_sync_deploy_that_outlasts_its_session_is_refused_up_front() -> None:
    """Four regions x 900 s + 600 s of set-up no longer fit deploy-prod.yml's 3600 s sessions: the
    config says so (keys and arithmetic), instead of the deploy failing when its tokens expire."""
    raw = fixture_config_map("prod")
    changes.add_region(raw, changes.fresh_region(raw))
    raw["platform:deploy"]["timeoutSeconds"] = 900  # a region added without the walk-through's step 3
    regions = len(raw["platform:regions"])
    timeout = raw["platform:deploy"]["timeoutSeconds"]
    most = (config.DEPLOY_SESSION_SECONDS - config.DEPLOY_SETUP_SECONDS) // regions
    assert regions * timeout + config.DEPLOY_SETUP_SECONDS > config.DEPLOY_SESSION_SECONDS
    assert error(raw, "prod") == (
        f"platform:deploy.timeoutSeconds: {timeout} is not allowed; the deploy command waits up to "
        f"timeoutSeconds in each of the {regions} regions (platform:regions) plus 600 s of set-up, and "
        "must end within one 3600 s AWS session (role-duration-seconds in deploy-prod.yml): "
        f"{regions} x {timeout} + 600 = {regions * timeout + 600} s > 3600 s; expected at most {most} "
        f"with {regions} regions"
    )
    raw["platform:deploy"]["timeoutSeconds"] = most
    assert load(raw, "prod").deploy.timeout_seconds == most
    # Staging (deploy-prod.yml never deploys it), even forced to manual sync, is not held to it.
    staging = fixture_config_map("staging")
    changes.add_region(staging, changes.fresh_region(staging))
    staging["platform:argocd"]["sync"] = "manual"
    assert len(load(staging).regions) * staging["platform:deploy"]["timeoutSeconds"] + 600 > 3600


def test_regions_missing_from_the_deploy_order_follow_the_listed_ones() -> None:
    raw = fixture_config_map("prod")
    raw["platform:deploy"]["regionOrder"] = ["us-east-1"]
    assert load(raw, "prod").deploy.region_order == ("us-east-1", "eu-west-1", "us-west-2")


def test_public_endpoint_open_to_the_internet_is_allowed_in_staging_only() -> None:
    raw = fixture_config_map("staging")
    raw["platform:regions"]["us-east-1"]["publicAccessCidrs"] = ["0.0.0.0/0"]
    assert load(raw).region("us-east-1").public_access_cidrs == ("0.0.0.0/0",)


def test_the_error_names_key_value_and_allowed() -> None:
    exc = config.ConfigError("platform:x", 5, "expected a string")
    assert (exc.key, exc.value, exc.allowed) == ("platform:x", 5, "expected a string")
    assert str(exc) == "platform:x: 5 is not allowed; expected a string"


def test_numbers_arrive_as_strings_from_the_cli_and_are_still_checked() -> None:
    raw = fixture_config_map("staging")
    raw["platform:accountId"] = 111122223333  # unquoted in YAML: the CLI passes "111122223333"
    assert load(raw).account_id == "111122223333"


# ---------------------------------------------------------------------------------------------
# Property: any malformed config is a ConfigError, never another exception, and declares nothing
# ---------------------------------------------------------------------------------------------

from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from infra import offline  # noqa: E402

_BASE = stack_config_map("staging")

# Values of a type no leaf of the config accepts where it stands (a leaf of another type).
_JUNK = st.one_of(
    st.none().map(lambda _: {"unexpected": True}),
    st.lists(st.integers(), min_size=1, max_size=3).map(lambda v: {"list": v}),
    st.floats(allow_nan=False, allow_infinity=False).map(lambda f: f + 0.5),
    st.text(alphabet="!@#$%^&*() ", min_size=1, max_size=8),
)


def _paths(value: Any, path: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Every path to a leaf or container that the parser validates (not free-form tag values)."""
    out = [path] if path else []
    if path[:1] == ("platform:tags",):
        return out
    if isinstance(value, dict):
        for k, v in value.items():
            out += _paths(v, (*path, k))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            out += _paths(v, (*path, i))
    return out


_VALIDATED = [p for p in _paths(_BASE) if p[0].startswith("platform:")]


def _mutate(raw: dict[str, Any], path: tuple[Any, ...], kind: str, junk: Any) -> None:
    parent: Any = raw
    for step in path[:-1]:
        parent = parent[step]
    last = path[-1]
    if kind == "junk":
        parent[last] = junk
    elif kind == "unknown-key":
        target = parent[last]
        if isinstance(target, dict):
            target["zzUnknown"] = 1
        else:
            raw["platform:zzUnknown"] = 1
    elif kind == "delete-required":
        for key in ("platform:environment", "platform:accountId", "platform:regions", "platform:services"):
            raw.pop(key, None)


@settings(max_examples=250, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    path=st.sampled_from(_VALIDATED),
    kind=st.sampled_from(["junk", "unknown-key", "delete-required"]),
    junk=_JUNK,
)
def test_malformed_configs_are_rejected_with_config_error_and_declare_nothing(
    path: tuple[Any, ...], kind: str, junk: Any
) -> None:
    raw = copy.deepcopy(_BASE)
    _mutate(raw, path, kind, junk)
    sink: list[offline.RecordingMonitor] = []
    with pytest.raises(config.ConfigError) as info:
        offline.run_encoded("staging", config.as_pulumi_config(raw), monitor_sink=sink)
    assert re.match(r"^platform:\S+: ", str(info.value)), str(info.value)
    assert sink and sink[0].recorded == [], "a resource was declared before the config was validated"
