"""The GitHub roles as the real program declares them (infra.program.run under mocks)."""

from __future__ import annotations

import functools
import json

import pytest

from infra import naming, offline
from infra.documents import iam
from infra.offline import Plan

ROLE = "aws:iam/role:Role"
OIDC = "aws:iam/openIdConnectProvider:OpenIdConnectProvider"


@functools.cache
def plan(stack: str) -> Plan:
    return offline.run(stack)


def github_trusting_roles(p: Plan) -> dict[str, dict[str, object]]:
    out = {}
    for role in p.of_type(ROLE):
        doc = json.loads(role.inputs["assumeRolePolicy"])
        if any(
            iam.GITHUB_OIDC_HOST in json.dumps(s.get("Principal", {}))
            or iam.GITHUB_OIDC_HOST in json.dumps(s)
            for s in doc["Statement"]
        ):
            out[role.inputs["name"]] = doc
    return out


def test_the_stacks_export_their_roles_and_prod_has_no_push_role() -> None:
    staging = plan("staging").outputs[naming.OUTPUT_GITHUB_ROLES]
    prod = plan("prod").outputs[naming.OUTPUT_GITHUB_ROLES]
    assert set(staging) == {"push", "preview", "up", "verify"}
    assert set(prod) == {"preview", "up", "deploy"}
    assert staging["push"] == "arn:aws:iam::111122223333:role/platform-staging-github-push"
    assert prod["deploy"] == "arn:aws:iam::444455556666:role/platform-prod-github-deploy"
    assert not any(name.endswith("-push") for name in github_trusting_roles(plan("prod")))


@pytest.mark.parametrize("stack", ["staging", "prod"])
def test_every_role_in_the_stack_that_trusts_github_trusts_exact_subjects_of_this_repository(
    stack: str,
) -> None:
    p = plan(stack)
    trusting = github_trusting_roles(p)
    # No other component declares a GitHub trust: exactly the roles of the output.
    assert sorted(trusting) == sorted(
        naming.role_name(p.config.environment, f"github-{purpose}")
        for purpose in p.outputs[naming.OUTPUT_GITHUB_ROLES]
    )
    for name, doc in trusting.items():
        assert iam.assert_exact_subjects(doc, iam.subject_prefix(p.config.github)), name


@pytest.mark.parametrize("stack", ["staging", "prod"])
def test_one_github_provider_per_account(stack: str) -> None:
    p = plan(stack)
    providers = [r for r in p.of_type(OIDC) if r.inputs["url"] == iam.GITHUB_OIDC_URL]
    assert len(providers) == 1
    assert p.region_of(providers[0]) == p.config.hub_region


def test_the_push_role_may_use_the_registrys_primary_key_through_ecr_only() -> None:
    p = plan("staging")
    region = p.config.ecr.primary_region
    keys = [k for k in p.of_type("aws:kms/key:Key") if p.region_of(k) == region]
    assert len(keys) == 1, "the registry has one key per region"
    [push_policy] = [
        r
        for r in p.of_type("aws:iam/rolePolicy:RolePolicy")
        if r.inputs["name"].endswith("github-push-permissions")
    ]
    statements = {s["Sid"]: s for s in json.loads(push_policy.inputs["policy"])["Statement"]}
    assert statements["EcrKeyThroughEcrOnly"]["Resource"] == keys[0].outputs["arn"]
    assert statements["EcrKeyThroughEcrOnly"]["Condition"] == {
        "StringEquals": {"kms:ViaService": f"ecr.{region}.amazonaws.com"}
    }
