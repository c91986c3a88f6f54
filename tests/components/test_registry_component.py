"""The registry component under Pulumi mocks (infra.offline), on its own.

A minimal program (providers + Registry) keeps these tests about this component; the whole
program's view is tests/stack/test_registry.py.
"""

from __future__ import annotations

import ipaddress
import json
from collections.abc import Mapping
from typing import Any

import pytest

from infra import config, naming, offline, providers
from infra.components.registry import TYPE_REGIONAL_REGISTRY, TYPE_REGISTRY, Registry, RegistryArgs
from infra.documents import ecr
from tests import changes
from tests.conftest import stack_config_map

REPO = "aws:ecr/repository:Repository"
LIFECYCLE = "aws:ecr/lifecyclePolicy:LifecyclePolicy"
KEY = "aws:kms/key:Key"
REPLICATION = "aws:ecr/replicationConfiguration:ReplicationConfiguration"
REGISTRY_POLICY = "aws:ecr/registryPolicy:RegistryPolicy"
TEMPLATE = "aws:ecr/repositoryCreationTemplate:RepositoryCreationTemplate"
SCANNING = "aws:ecr/registryScanningConfiguration:RegistryScanningConfiguration"
REPOSITORY_POLICY = "aws:ecr/repositoryPolicy:RepositoryPolicy"
TAGGABLE = (REPO, KEY, "aws:iam/role:Role")


def registry_only(c: config.StackConfig) -> Mapping[str, Any]:
    registry = Registry("registry", RegistryArgs(config=c, providers=providers.aws_providers(c)))
    return {naming.OUTPUT_REGISTRIES: registry.registries}


def run(stack: str, raw: dict[str, Any] | None = None) -> offline.Plan:
    return offline.run(stack, flat_config=raw, program=registry_only)


@pytest.fixture(scope="module")
def staging() -> offline.Plan:
    return run("staging")


@pytest.fixture(scope="module")
def prod() -> offline.Plan:
    return run("prod")


def parse(value: Any) -> Any:
    return json.loads(value) if isinstance(value, str) else value


def key_arns_by_region(plan: offline.Plan) -> dict[str | None, str]:
    return {plan.region_of(k): k.outputs["arn"] for k in plan.of_type(KEY)}


# --------------------------------------------------------------------------------------------
# Shape: components, parents, providers
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("stack", ["staging", "prod"])
def test_every_child_has_a_component_parent_and_an_explicit_provider(
    stack: str, staging: offline.Plan, prod: offline.Plan
) -> None:
    plan = staging if stack == "staging" else prod
    index = plan.by_urn()
    (top,) = plan.of_type(TYPE_REGISTRY)
    regional = plan.of_type(TYPE_REGIONAL_REGISTRY)
    assert len(regional) == len(plan.config.region_names)
    assert all(r.parent == top.urn for r in regional)
    for r in plan.resources:
        if r.is_provider or r.type.startswith("platform:"):
            continue
        assert r.parent in index, f"{r.name} has no component parent"
        assert index[r.parent].type in (TYPE_REGISTRY, TYPE_REGIONAL_REGISTRY)
        assert r.provider, f"{r.type} {r.name} has no explicit provider"
        assert index[r.provider].type == "pulumi:providers:aws"


def test_regional_children_live_in_their_region(prod: offline.Plan) -> None:
    index = prod.by_urn()
    for r in prod.resources:
        if r.custom and not r.is_provider and r.parent and index[r.parent].type == TYPE_REGIONAL_REGISTRY:
            assert index[r.parent].name == f"registry-{prod.region_of(r)}"


# --------------------------------------------------------------------------------------------
# Repositories: one per service and region, four settings each
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("stack", ["staging", "prod"])
def test_one_repository_per_service_in_every_region(
    stack: str, staging: offline.Plan, prod: offline.Plan
) -> None:
    plan = staging if stack == "staging" else prod
    got = sorted((plan.region_of(r), r.inputs["name"]) for r in plan.of_type(REPO))
    want = sorted(
        (region, naming.repository_name(plan.config.ecr.prefix, s))
        for region in plan.config.region_names
        for s in plan.config.services
    )
    assert got == want


@pytest.mark.parametrize("stack", ["staging", "prod"])
def test_every_repository_has_the_four_settings(
    stack: str, staging: offline.Plan, prod: offline.Plan
) -> None:
    plan = staging if stack == "staging" else prod
    keys = key_arns_by_region(plan)
    scanners = {plan.region_of(s): s for s in plan.of_type(SCANNING)}
    lifecycles = {(plan.region_of(p), p.inputs["repository"]): p for p in plan.of_type(LIFECYCLE)}
    for repo in plan.of_type(REPO):
        region, name = plan.region_of(repo), repo.inputs["name"]
        # 1. immutable tags
        assert repo.inputs["imageTagMutability"] == "IMMUTABLE"
        # 2. scanning: on push, or the region's enhanced registry scanning covers the repository
        if plan.config.ecr.scanning == "basic":
            assert repo.inputs["imageScanningConfiguration"] == {"scanOnPush": True}
        else:
            rules = scanners[region].inputs["rules"]
            assert scanners[region].inputs["scanType"] == "ENHANCED"
            assert any(
                name.startswith(f["filter"].rstrip("*")) for rule in rules for f in rule["repositoryFilters"]
            )
        # 3. KMS with the customer managed key of the repository's own region
        assert repo.inputs["encryptionConfigurations"] == [{"encryptionType": "KMS", "kmsKey": keys[region]}]
        # 4. the lifecycle policy of the stack
        policy = lifecycles[(region, name)]
        assert parse(policy.inputs["policy"]) == ecr.stack_lifecycle_policy(plan.config)
        # and never force_delete: a non-empty repository must not be deletable
        assert not repo.inputs.get("forceDelete")


def test_keys_rotate_and_wait_the_longest_before_deletion(staging: offline.Plan, prod: offline.Plan) -> None:
    for plan in (staging, prod):
        keys = plan.of_type(KEY)
        assert sorted(plan.region_of(k) or "" for k in keys) == sorted(plan.config.region_names)
        for k in keys:
            assert k.inputs["enableKeyRotation"] is True
            assert k.inputs["deletionWindowInDays"] == 30
            assert parse(k.inputs["policy"]) == ecr.kms_key_policy(
                plan.config.account_id, deny_key_deletion=plan.config.is_prod
            )


def test_prod_repositories_and_keys_are_protected_and_retained(prod: offline.Plan) -> None:
    for r in prod.of_type(REPO) + prod.of_type(KEY):
        assert r.protect and r.retain_on_delete, r.name


def test_staging_repositories_are_retained_but_not_protected(staging: offline.Plan) -> None:
    for r in staging.of_type(REPO) + staging.of_type(KEY):
        assert r.retain_on_delete and not r.protect, r.name


@pytest.mark.parametrize("stack", ["staging", "prod"])
def test_taggable_resources_carry_the_base_tags(
    stack: str, staging: offline.Plan, prod: offline.Plan
) -> None:
    plan = staging if stack == "staging" else prod
    want = naming.base_tags(plan.config.environment, plan.config.tags)
    for r in plan.resources:
        if r.type in TAGGABLE:
            assert r.inputs.get("tags") == want, r.name
    for t in plan.of_type(TEMPLATE):
        assert t.inputs["resourceTags"] == want


# --------------------------------------------------------------------------------------------
# Replication: staging's one configuration; prod's registry policies and templates
# --------------------------------------------------------------------------------------------


def test_staging_has_exactly_one_replication_configuration_in_its_primary_region(
    staging: offline.Plan,
) -> None:
    (replication,) = staging.of_type(REPLICATION)
    assert staging.region_of(replication) == staging.config.ecr.primary_region
    (top,) = staging.of_type(TYPE_REGISTRY)
    assert replication.parent == top.urn
    dests = {
        (d["registryId"], d["region"])
        for rule in replication.inputs["replicationConfiguration"]["rules"]
        for d in rule["destinations"]
    }
    config = staging.config
    assert dests == {
        (config.account_id, r) for r in config.region_names if r != config.ecr.primary_region
    } | {(config.peer_account_id, r) for r in config.region_names}
    assert not staging.of_type(REGISTRY_POLICY) and not staging.of_type(TEMPLATE)


def test_a_primary_region_elsewhere_moves_the_replication_configuration() -> None:
    raw = stack_config_map("staging")
    primary = changes.other_region(raw, raw["platform:ecr"].get("primaryRegion"), raw["platform:hubRegion"])
    raw["platform:ecr"]["primaryRegion"] = primary
    plan = run("staging", raw)
    (replication,) = plan.of_type(REPLICATION)
    assert plan.region_of(replication) == primary


def test_prod_has_no_replication_configuration_and_one_registry_policy_per_region(prod: offline.Plan) -> None:
    assert not prod.of_type(REPLICATION)
    policies = prod.of_type(REGISTRY_POLICY)
    assert sorted(prod.region_of(p) or "" for p in policies) == sorted(prod.config.region_names)
    for p in policies:
        region = prod.region_of(p)
        doc = parse(p.inputs["policy"])
        principals = {json.dumps(s["Principal"], sort_keys=True) for s in doc["Statement"]}
        source = prod.config.peer_account_id  # the stack files' accounts, not the example's
        assert principals == {json.dumps({"AWS": f"arn:aws:iam::{source}:root"})}
        actions = {
            a
            for s in doc["Statement"]
            for a in ([s["Action"]] if isinstance(s["Action"], str) else s["Action"])
        }
        assert actions == {"ecr:ReplicateImage", "ecr:CreateRepository"}
        assert {s["Effect"] for s in doc["Statement"]} == {"Allow"}
        resources = {s["Resource"] for s in doc["Statement"]}
        prefix = prod.config.ecr.prefix
        assert resources == {f"arn:aws:ecr:{region}:{prod.config.account_id}:repository/{prefix}/*"}


def test_prod_templates_carry_the_repository_settings(prod: offline.Plan) -> None:
    keys = key_arns_by_region(prod)
    templates = {prod.region_of(t): t for t in prod.of_type(TEMPLATE)}
    assert sorted(r or "" for r in templates) == sorted(prod.config.region_names)
    repos = {prod.region_of(r): r for r in prod.of_type(REPO)}
    (role,) = prod.of_type("aws:iam/role:Role")
    for region, t in templates.items():
        assert t.inputs["appliedFors"] == ["REPLICATION"]
        assert t.inputs["prefix"] + "/" == ecr.replication_filter(prod.config.ecr.prefix)
        assert t.inputs["imageTagMutability"] == repos[region].inputs["imageTagMutability"] == "IMMUTABLE"
        assert t.inputs["encryptionConfigurations"] == repos[region].inputs["encryptionConfigurations"]
        assert t.inputs["encryptionConfigurations"][0]["kmsKey"] == keys[region]
        assert parse(t.inputs["lifecyclePolicy"]) == ecr.stack_lifecycle_policy(prod.config)
        assert t.inputs["customRoleArn"] == role.outputs["arn"]
        assert "repositoryPolicy" not in t.inputs
    # CreateRepository is granted only once the template exists.
    policies = {prod.region_of(p): p for p in prod.of_type(REGISTRY_POLICY)}
    for region, p in policies.items():
        assert templates[region].urn in p.dependencies


def test_the_template_role_is_an_account_singleton_scoped_to_the_keys(prod: offline.Plan) -> None:
    (role,) = prod.of_type("aws:iam/role:Role")
    (policy,) = prod.of_type("aws:iam/rolePolicy:RolePolicy")
    assert parse(role.inputs["assumeRolePolicy"]) == ecr.template_role_trust_policy()
    doc = parse(policy.inputs["policy"])
    kms = next(s for s in doc["Statement"] if s["Sid"] == "UseRegistryKeys")
    assert sorted(kms["Resource"]) == sorted(key_arns_by_region(prod).values())


def test_nothing_in_prod_grants_a_push(prod: offline.Plan) -> None:
    assert not prod.of_type(REPOSITORY_POLICY)
    push = {"ecr:PutImage", "ecr:InitiateLayerUpload", "ecr:UploadLayerPart", "ecr:CompleteLayerUpload"}
    for p in prod.of_type(REGISTRY_POLICY):
        text = p.inputs["policy"]
        assert not any(a in text for a in push) and '"ecr:*"' not in text


# --------------------------------------------------------------------------------------------
# Scanning: a registry singleton per region, only for enhanced
# --------------------------------------------------------------------------------------------


def _scanning_follows_the_mode(plan: offline.Plan) -> None:
    """Enhanced: one registry scanning configuration per region of the stack; basic: none (each
    repository scans on push: test_every_repository_has_the_four_settings)."""
    scanners = plan.of_type(SCANNING)
    if plan.config.ecr.scanning == "enhanced":
        assert sorted(plan.region_of(s) or "" for s in scanners) == sorted(plan.config.region_names)
        assert {s.inputs["scanType"] for s in scanners} == {"ENHANCED"}
    else:
        assert plan.config.ecr.scanning == "basic" and not scanners


def test_scanning_configuration_per_mode(staging: offline.Plan, prod: offline.Plan) -> None:
    for plan in (staging, prod):
        _scanning_follows_the_mode(plan)


@pytest.mark.parametrize("mode", ["basic", "enhanced"])
def test_each_scanning_mode_set_in_staging_with_more_services(mode: str) -> None:
    """Both modes, whatever the example's stack files choose; enhanced stays one per region."""
    raw = stack_config_map("staging")
    raw["platform:ecr"]["scanning"] = mode
    for stem in ("search", "mail"):
        changes.add_service(raw, changes.fresh_service(raw, stem=stem))
    plan = run("staging", raw)
    assert plan.config.ecr.scanning == mode
    _scanning_follows_the_mode(plan)


# --------------------------------------------------------------------------------------------
# Limits and outputs
# --------------------------------------------------------------------------------------------


def test_too_many_destinations_fail_the_program_with_ecrs_limit() -> None:
    raw = stack_config_map("staging")
    template = next(iter(raw["platform:regions"].values()))
    hub = raw["platform:hubRegion"]
    names = [hub, *[r for r in config.KNOWN_REGIONS if r != hub]][:14]
    raw["platform:regions"] = {
        n: {
            **template,
            "vpcCidr": str(ipaddress.ip_network(f"10.{100 + i}.0.0/16")),
            "availabilityZones": [f"{n}a", f"{n}b"],
        }
        for i, n in enumerate(names)
    }
    del raw["platform:deploy"]
    with pytest.raises(
        ecr.ReplicationLimitError, match="27 unique destinations across its rules; ECR allows at most 25"
    ):
        run("staging", raw)


def test_registries_match_the_repository_urls(prod: offline.Plan) -> None:
    hosts = {prod.region_of(r): r.outputs["repositoryUrl"].split("/", 1)[0] for r in prod.of_type(REPO)}
    assert prod.outputs[naming.OUTPUT_REGISTRIES] == hosts
