"""The registry across the whole program and across the staging/prod pair.

Runs the real program (infra.program.run) under mocks for both example stacks, so it also sees
anything another section declares in ECR, and checks the two stacks fit together: every prod
region staging replicates to lets staging (and only staging) replicate into it.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from infra import config, naming, offline
from tests import changes
from tests.conftest import stack_config_map

REPO = "aws:ecr/repository:Repository"
REPLICATION = "aws:ecr/replicationConfiguration:ReplicationConfiguration"
REGISTRY_POLICY = "aws:ecr/registryPolicy:RegistryPolicy"
TEMPLATE = "aws:ecr/repositoryCreationTemplate:RepositoryCreationTemplate"
LIFECYCLE = "aws:ecr/lifecyclePolicy:LifecyclePolicy"
REPOSITORY_POLICY = "aws:ecr/repositoryPolicy:RepositoryPolicy"


@pytest.fixture(scope="module")
def staging() -> offline.Plan:
    return offline.run("staging")


@pytest.fixture(scope="module")
def prod() -> offline.Plan:
    return offline.run("prod")


def destinations(plan: offline.Plan) -> set[tuple[str, str]]:
    return {
        (d["registryId"], d["region"])
        for r in plan.of_type(REPLICATION)
        for rule in r.inputs["replicationConfiguration"]["rules"]
        for d in rule["destinations"]
    }


def replication_rules(plan: offline.Plan) -> list[Any]:
    return [r.inputs["replicationConfiguration"] for r in plan.of_type(REPLICATION)]


def test_one_replication_configuration_in_staging_none_in_prod(
    staging: offline.Plan, prod: offline.Plan
) -> None:
    assert len(staging.of_type(REPLICATION)) == 1
    assert prod.of_type(REPLICATION) == []


def test_destinations_are_stagings_other_regions_and_the_prod_accounts_regions(
    staging: offline.Plan, prod: offline.Plan
) -> None:
    own = staging.config.account_id
    (replication,) = staging.of_type(REPLICATION)
    source_region = staging.region_of(replication)
    prod_regions = {prod.region_of(r) for r in prod.of_type(REPO)}
    assert destinations(staging) == (
        {(own, r) for r in staging.config.region_names if r != source_region}
        | {(prod.config.account_id, r) for r in prod_regions if r}
    )


def test_every_prod_destination_accepts_replication_from_staging_only(
    staging: offline.Plan, prod: offline.Plan
) -> None:
    policies = {prod.region_of(p): json.loads(p.inputs["policy"]) for p in prod.of_type(REGISTRY_POLICY)}
    prod_destinations = {
        region for account, region in destinations(staging) if account == prod.config.account_id
    }
    assert prod_destinations == set(policies)
    for region, doc in policies.items():
        for statement in doc["Statement"]:
            assert statement["Effect"] == "Allow"
            assert statement["Principal"] == {"AWS": f"arn:aws:iam::{staging.config.account_id}:root"}
            actions = statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
            assert set(actions) <= {"ecr:ReplicateImage", "ecr:CreateRepository"}
            assert "ecr:ReplicateImage" in actions
            assert statement["Resource"].startswith(
                f"arn:aws:ecr:{region}:{prod.config.account_id}:repository/"
            )
    # Staging, the source, grants nobody anything at the registry level.
    assert staging.of_type(REGISTRY_POLICY) == []


def test_replicated_repositories_exist_with_the_same_names_on_both_sides(
    staging: offline.Plan, prod: offline.Plan
) -> None:
    def names(plan: offline.Plan) -> dict[str | None, set[str]]:
        out: dict[str | None, set[str]] = {}
        for r in plan.of_type(REPO):
            out.setdefault(plan.region_of(r), set()).add(r.inputs["name"])
        return out

    staging_names, prod_names = names(staging), names(prod)
    for account, region in destinations(staging):
        target = prod_names if account == prod.config.account_id else staging_names
        assert target[region] == staging_names[staging.config.ecr.primary_region]


def test_no_repository_anywhere_can_be_force_deleted_and_prod_keeps_them(
    staging: offline.Plan, prod: offline.Plan
) -> None:
    for plan in (staging, prod):
        for r in plan.of_type(REPO):
            assert not r.inputs.get("forceDelete"), r.urn
    for r in prod.of_type(REPO):
        assert r.protect and r.retain_on_delete, r.urn
    assert prod.of_type(REPOSITORY_POLICY) == []


def test_registries_output_matches_the_repository_urls(staging: offline.Plan, prod: offline.Plan) -> None:
    for plan in (staging, prod):
        hosts = {plan.region_of(r): r.outputs["repositoryUrl"].split("/", 1)[0] for r in plan.of_type(REPO)}
        assert plan.outputs[naming.OUTPUT_REGISTRIES] == hosts
        assert set(hosts) == set(plan.config.region_names)


@pytest.mark.parametrize("stack", ["staging", "prod"])
def test_adding_a_service_adds_repositories_and_leaves_replication_alone(
    stack: str, staging: offline.Plan, prod: offline.Plan
) -> None:
    before = staging if stack == "staging" else prod
    raw = stack_config_map(stack)
    service = changes.fresh_service(raw)
    changes.add_service(raw, service)
    after = offline.run(stack, flat_config=raw)
    new_name = naming.repository_name(after.config.ecr.prefix, service)

    added = {r.urn for r in after.of_type(REPO)} - {r.urn for r in before.of_type(REPO)}
    added_repos = [r for r in after.of_type(REPO) if r.urn in added]
    assert sorted(after.region_of(r) or "" for r in added_repos) == sorted(after.config.region_names)
    assert {r.inputs["name"] for r in added_repos} == {new_name}
    assert len(after.of_type(LIFECYCLE)) == len(before.of_type(LIFECYCLE)) + len(after.config.region_names)

    # Replication rules, registry policies and templates are the same documents as before:
    # nothing of the replication singleton is updated. Its only change is an ordering one (the
    # engine updates nothing for it): the source's replication configuration also waits for the
    # new service's repositories outside the primary region, so a region added later is never
    # reached before its repositories exist (tests/contracts/test_ecr_replication.py).
    assert replication_rules(after) == replication_rules(before)
    primary = after.config.ecr.primary_region
    new_outside_primary = {r.urn for r in added_repos if after.region_of(r) != primary}
    for b, a in zip(before.of_type(REPLICATION), after.of_type(REPLICATION), strict=True):
        assert set(a.dependencies) == set(b.dependencies) | new_outside_primary
    for kind in (REGISTRY_POLICY, TEMPLATE):
        assert sorted(json.dumps(r.inputs, sort_keys=True) for r in after.of_type(kind)) == sorted(
            json.dumps(r.inputs, sort_keys=True) for r in before.of_type(kind)
        )


def test_example_stacks_have_the_same_regions() -> None:
    # The replication rules assume it (documented in infra.documents.ecr.replication_destinations).
    assert set(config.load_stack_file("staging").region_names) == set(
        config.load_stack_file("prod").region_names
    )
