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
    repository (from the creation template). So the policy is the last thing of a region: a
    push while this stack's `up` runs can neither be refused after the policy exists nor make
    ECR create a repository this `up` then fails to create (RepositoryAlreadyExistsException)."""
    p = plan(stack)
    repos = _regional(p, REPOSITORY)
    templates = _regional(p, TEMPLATE)
    policies = _regional(p, REGISTRY_POLICY)
    assert set(policies) == set(p.config.region_names)
    for region, (policy,) in policies.items():
        assert {r.urn for r in repos[region]} <= set(policy.dependencies), region
        assert len(repos[region]) == len(p.config.services)
        assert {t.urn for t in templates[region]} <= set(policy.dependencies)


def _sources() -> list[str]:
    return [s for s in STACKS if load_stack_file(s).builds_images]


@pytest.mark.parametrize("stack", _sources())
def test_the_source_pushes_only_where_every_same_account_destination_exists(stack: str) -> None:
    """replication.html: within the account ECR replicates to a region whose repository is
    missing by creating it (service-linked role, ECR defaults). CI can push a service only to its
    primary-region repository, which the stack creates after that service's repositories in
    every other region: no push can create one of them first."""
    p = plan(stack)
    primary = p.config.ecr.primary_region
    repos = _regional(p, REPOSITORY)
    by_name = {(region, r.inputs["name"]): r for region, rs in repos.items() for r in rs}
    others = [r for r in p.config.region_names if r != primary]
    for (region, name), repo in by_name.items():
        if region != primary:
            continue
        for other in others:
            assert by_name[(other, name)].urn in repo.dependencies, (name, other)
    # The replication configuration lives in the primary region and sends to the peer account.
    (replication,) = p.of_type(REPLICATION)
    assert p.region_of(replication) == primary
    destinations = {
        d["registryId"]
        for rule in replication.inputs["replicationConfiguration"]["rules"]
        for d in rule["destinations"]
    }
    assert p.config.peer_account_id in destinations


@pytest.mark.parametrize("stack", _sources())
def test_replication_reaches_a_same_account_region_only_once_its_repositories_exist(stack: str) -> None:
    """replication.html: within the account ECR replicates to a region whose repository is
    missing by creating it with its own defaults. When a region is added to the source stack,
    its primary-region repositories already exist and CI keeps pushing, so the replication
    configuration that adds the region must wait for that region's repositories, or a push
    during the `up` makes ECR create one and the stack's create fails with
    RepositoryAlreadyExistsException."""
    p = plan(stack)
    primary = p.config.ecr.primary_region
    (replication,) = p.of_type(REPLICATION)
    for region, repos in _regional(p, REPOSITORY).items():
        if region == primary:
            continue
        for repo in repos:
            assert repo.urn in replication.dependencies, (region, repo.inputs["name"])


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
