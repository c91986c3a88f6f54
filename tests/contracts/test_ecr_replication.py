"""Contracts: ECR replication and the order in which the two stacks make it safe.

Sources (AWS, Amazon ECR User Guide):
* https://docs.aws.amazon.com/AmazonECR/latest/userguide/replication.html - only content pushed
  after replication is configured is replicated; a replication action occurs once per push;
  cross-account replication needs the destination's registry policy.
* https://docs.aws.amazon.com/AmazonECR/latest/userguide/registry-permissions-create-replication.html
  - without the registry policy (ecr:ReplicateImage) replication fails; with
  ecr:CreateRepository ECR creates a missing destination repository; failures only show in
  CloudTrail.
* https://docs.aws.amazon.com/AmazonECR/latest/userguide/repository-creation-templates.html -
  a creation template shapes the repositories replication creates.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import Any

import botocore.session
import pytest
import yaml

from infra import offline
from infra.config import StackConfig, load_stack_file
from tests.contracts import aws_rules

ROOT = Path(__file__).resolve().parents[2]
REPOSITORY = "aws:ecr/repository:Repository"
REGISTRY_POLICY = "aws:ecr/registryPolicy:RegistryPolicy"
TEMPLATE = "aws:ecr/repositoryCreationTemplate:RepositoryCreationTemplate"
REPLICATION = "aws:ecr/replicationConfiguration:ReplicationConfiguration"
STACKS = ("staging", "prod")


@cache
def plan(stack: str) -> offline.Plan:
    return offline.run(stack)


def _regional(p: offline.Plan, type_: str) -> dict[str, list[offline.Resource]]:
    out: dict[str, list[offline.Resource]] = {}
    for r in p.of_type(type_):
        out.setdefault(str(p.region_of(r)), []).append(r)
    return out


def _receivers() -> list[str]:
    return [s for s in STACKS if not load_stack_file(s).builds_images]


@pytest.mark.parametrize("stack", _receivers())
def test_a_replica_region_admits_replication_only_once_its_repositories_exist(stack: str) -> None:
    """registry-permissions-create-replication.html: nothing replicates into an account before
    its registry policy allows it, and with ecr:CreateRepository ECR creates a missing
    repository; CreateRepository on an existing name fails (RepositoryAlreadyExistsException).
    Applied to this stack's plan (aws_rules.push_race): no push during its `up` can make ECR
    create a repository the `up` then fails to create; with the policy not waiting, one could."""
    p = plan(stack)
    repos = _regional(p, REPOSITORY)
    policies = _regional(p, REGISTRY_POLICY)
    assert set(policies) == set(p.config.region_names)
    cross_account = aws_rules.ReplicaDestination(
        same_account=False, repository_exists=False, allows_replicate=True, allows_create_repository=True
    )
    templates = _regional(p, TEMPLATE)
    for region, (policy,) in policies.items():
        for repo in repos[region]:
            assert aws_rules.push_race(p, policy.urn, repo.urn, cross_account) is None, (region, repo.name)
        # A repository the stack does not declare is created from the template only if the
        # template exists by then (repository-creation-templates.html), else with ECR's defaults.
        for template in templates[region]:
            assert not aws_rules.may_complete_before(p, policy.urn, template.urn), region
    some_policy = next(iter(policies.values()))[0]
    hasty = aws_rules.without_option(p, [some_policy.urn], dependencies=[])
    region = str(p.region_of(some_policy))
    assert {aws_rules.push_race(hasty, some_policy.urn, r.urn, cross_account) for r in repos[region]} == {
        aws_rules.ALREADY_EXISTS
    }


def _sources() -> list[str]:
    return [s for s in STACKS if load_stack_file(s).builds_images]


def _same_account_races(p: offline.Plan) -> list[str]:
    """Every (enabler, repository) pair of the source stack where a push during its `up` makes ECR
    create a same-account repository first: the enablers of a service's replication to another
    region are the primary-region repository CI pushes to (a new service) and the replication
    configuration (a new region: its update adds the destination while CI keeps pushing)."""
    primary = p.config.ecr.primary_region
    (replication,) = p.of_type(REPLICATION)
    repos = _regional(p, REPOSITORY)
    by_name = {r.inputs["name"]: r for r in repos[primary]}
    same_account = aws_rules.ReplicaDestination(same_account=True, repository_exists=False)
    races = []
    for region, rs in repos.items():
        if region == primary:
            continue
        for repo in rs:
            for enabler in (by_name[repo.inputs["name"]], replication):
                outcome = aws_rules.push_race(p, enabler.urn, repo.urn, same_account)
                if outcome is not None:
                    races.append(f"{enabler.name} before {repo.name}: {outcome}")
    return races


@pytest.mark.parametrize("stack", _sources())
def test_no_push_can_create_a_same_account_repository_first(stack: str) -> None:
    """replication.html: within the account ECR replicates to a region whose repository is
    missing by creating it (a replication action occurs once per push); CreateRepository on an
    existing name then fails (API_CreateRepository.html, RepositoryAlreadyExistsException).
    Applied to the source stack's plan (aws_rules.push_race), neither a new service (its
    primary-region repository, where CI pushes) nor a region added to a running stack (the
    replication configuration's update) can reach another region before its repositories exist.
    Without the replication configuration's wait (the add-a-region race), a push could."""
    p = plan(stack)
    assert _same_account_races(p) == []
    (replication,) = p.of_type(REPLICATION)
    hasty = aws_rules.without_option(p, [replication.urn], dependencies=[])
    races = _same_account_races(hasty)
    assert races and all(r.startswith(f"{replication.name} before") for r in races)


def _up_jobs() -> dict[str, Any]:
    wf = yaml.safe_load((ROOT / ".github" / "workflows" / "up.yml").read_text())
    return dict(wf["jobs"])


def _needs(job: dict[str, Any]) -> set[str]:
    needs = job.get("needs", [])
    return {needs} if isinstance(needs, str) else set(needs)


def test_up_yml_applies_every_receiving_stack_before_the_sending_one() -> None:
    """replication.html: only images pushed after the destination accepts them are replicated,
    once per push, and a failed replication is not retried. So the stack that receives images
    (registryRole replica: its registry policies) is applied before the stack whose replication
    sends to it, on day 0 and on every later `up` (a new service or region of the receiver
    exists before the sender can push it). docs/registry.md, "Bootstrap order"."""
    jobs = _up_jobs()
    configs: dict[str, StackConfig] = {s: load_stack_file(s) for s in STACKS}
    for sender, config in configs.items():
        if not config.builds_images:
            continue
        for receiver, other in configs.items():
            if other.builds_images or other.account_id != config.peer_account_id:
                continue
            assert receiver in _needs(jobs[sender]), (sender, receiver)
            assert sender not in _needs(jobs[receiver])


def test_ecr_has_a_replication_backfill_the_backfill_script_calls() -> None:
    """ECR API StartReplicationBackfill (botocore data ecr/2015-09-21/service-2.json, as installed;
    https://docs.aws.amazon.com/AmazonECR/latest/APIReference/API_StartReplicationBackfill.html):
    input ``destination`` {region, registryId} (required) and optional ``registryId``, output
    ``replicationBackfillId``; DescribeReplicationBackfillResults takes that id. The DR backfill
    script (infra.documents.ecr.backfill_commands) calls exactly these."""
    model = botocore.session.get_session().get_service_model("ecr")
    start = model.operation_model("StartReplicationBackfill")
    assert start.input_shape is not None and start.output_shape is not None
    assert set(start.input_shape.required_members) == {"destination"}
    assert "registryId" in start.input_shape.members
    destination = start.input_shape.members["destination"]
    assert set(destination.required_members) == {"region", "registryId"}  # type: ignore[attr-defined]
    assert "replicationBackfillId" in start.output_shape.members
    describe = model.operation_model("DescribeReplicationBackfillResults")
    assert describe.input_shape is not None
    assert "replicationBackfillId" in describe.input_shape.required_members
