"""The pack over the whole program: both example stacks pass, and stacks made unsafe on purpose
are caught (through config where config allows it, through the program where config refuses it)."""

from __future__ import annotations

import copy
import json
from collections.abc import Mapping
from functools import cache
from pathlib import Path
from typing import Any

import pulumi
import pulumi_aws as aws
import pytest
from semver import Version

from infra import config as cfg
from infra import naming, offline, stackset
from infra import program as infra_program
from infra.config import ConfigError
from policies import offline as policy_offline
from policies.catalog import ALL_RULES
from policies.engine import Result
from policies.gitops import STAGED_RULE
from tests.walkthroughs.steps import Checkout

STACKS = ("staging", "prod")


@cache
def plan(stack: str) -> offline.Plan:
    return offline.run(stack)


@cache
def results(stack: str) -> tuple[Result, ...]:
    return tuple(policy_offline.evaluate(plan(stack)))


def stack_config(stack: str) -> dict[str, Any]:
    return copy.deepcopy(cfg.read_stack_file(cfg.stack_file(stack)))


def rows(found: list[Result]) -> list[tuple[str, str, str, str]]:
    return policy_offline.format_results(found)


@pytest.mark.parametrize("stack", STACKS)
def test_example_stack_passes_every_mandatory_rule(stack: str) -> None:
    assert rows(policy_offline.mandatory(list(results(stack)))) == []


@pytest.mark.parametrize("stack", STACKS)
def test_example_stack_has_no_advisories_either(stack: str) -> None:
    assert rows(list(results(stack))) == []


@pytest.mark.parametrize("stack", STACKS)
def test_stack_names_are_the_environments_the_pack_assumes(stack: str) -> None:
    # The pack takes the environment from the stack name (policies/engine.py).
    assert cfg.load_stack_file(stack).environment == stack


def test_every_rule_reads_resource_types_the_program_declares() -> None:
    """A rule whose type tokens match nothing would pass vacuously: each must meet a declared type."""
    declared = {r.type for s in STACKS for r in plan(s).resources}
    vacuous = [r.name for r in ALL_RULES if r.resource_types and not set(r.resource_types) & declared]
    assert vacuous == []


def test_program_inputs_reach_the_rules_with_the_expected_properties() -> None:
    """Spot checks that the rules read the property names the components really send."""
    prod = plan("prod")
    repos = prod.of_type("aws:ecr/repository:Repository")
    assert repos and all(r.inputs["imageTagMutability"] == "IMMUTABLE" for r in repos)
    clusters = prod.of_type("eks:index:Cluster")
    assert clusters and all(c.inputs["authenticationMode"] == "API" for c in clusters)
    templates = prod.of_type("aws:ec2/launchTemplate:LaunchTemplate")
    assert templates and all(t.inputs["metadataOptions"]["httpTokens"] == "required" for t in templates)


def test_format_results_gives_print_ready_rows() -> None:
    raw = stack_config("prod")
    raw["platform:argocd"]["sync"] = "automated"
    found = policy_offline.evaluate(offline.run("prod", flat_config=raw))
    table = policy_offline.format_results(found)
    assert table and all(len(row) == 4 and all(isinstance(c, str) for c in row) for row in table)
    assert table[0][1] == "mandatory"


# --- unsafe on purpose, through config ---------------------------------------------------------


def evaluate_variant(stack: str, edit: Any) -> list[Result]:
    raw = stack_config(stack)
    edit(raw)
    return policy_offline.evaluate(offline.run(stack, flat_config=raw))


def test_prod_forced_to_sync_automatically_is_caught() -> None:
    found = evaluate_variant("prod", lambda raw: raw["platform:argocd"].update(sync="automated"))
    assert rows(policy_offline.mandatory(found)) == [
        (
            "gitops-prod-manual-sync",
            "mandatory",
            "kubernetes:argoproj.io/v1alpha1:ApplicationSet::application-set",
            "ApplicationSet shop-prod in prod syncs its Applications automatically; remove "
            "spec.template.spec.syncPolicy.automated (and any templatePatch that adds it) so prod changes only "
            "through the deploy command (platform:argocd.sync manual).",
        )
    ]


def test_prod_without_ha_argocd_is_caught() -> None:
    found = evaluate_variant("prod", lambda raw: raw["platform:argocd"].update(ha=False))
    assert [r.policy for r in policy_offline.mandatory(found)] == ["gitops-argocd-ha-in-prod"]


def test_staging_forced_to_manual_sync_is_caught() -> None:
    found = evaluate_variant("staging", lambda raw: raw["platform:argocd"].update(sync="manual"))
    assert [r.policy for r in policy_offline.mandatory(found)] == ["gitops-non-prod-automated-sync"]


def test_staging_endpoint_open_to_the_internet_is_reported_not_blocked() -> None:
    # A spoke of the loaded stack file (the hub's endpoint has rules of its own), not the example's.
    loaded = cfg.load_stack_file("staging")
    spoke = next(r for r in loaded.region_names if r != loaded.hub_region)
    found = evaluate_variant(
        "staging", lambda raw: raw["platform:regions"][spoke].update(publicAccessCidrs=["0.0.0.0/0"])
    )
    assert [(r.policy, r.level, r.resource) for r in found] == [
        ("eks-endpoint-not-open-to-internet", "advisory", f"eks:index:Cluster::eks-{spoke}")
    ]


def test_git_write_back_needs_no_ignore_rule_and_passes() -> None:
    found = evaluate_variant(
        # A branch of its own: a push to main is refused by the config (prod's ruleset rejects it).
        "staging",
        lambda raw: raw["platform:imageUpdater"].update(writeBackMethod="git", gitBranch="image-updates"),
    )
    assert rows(policy_offline.mandatory(found)) == []


# --- unsafe on purpose, where config refuses it: a wildcard GitHub subject ---------------------


@pytest.mark.parametrize(
    ("key", "value"),
    [("owner", "*"), ("repository", "plat*"), ("deployBranches", ["deploy/*"]), ("environment", "*")],
)
def test_config_refuses_every_wildcard_in_the_github_subject(key: str, value: Any) -> None:
    raw = stack_config("staging")
    raw["platform:github"][key] = value
    with pytest.raises(ConfigError, match=f"platform:github.{key}"):
        cfg.from_flat(cfg.as_pulumi_config(raw), "staging")


def test_a_program_that_declares_a_wildcard_trust_is_caught() -> None:
    """Config cannot express it, so a program declares it: the real program plus one role whose
    trust accepts any repository of the owner, as a hand-written component might."""

    def unsafe(config: cfg.StackConfig) -> Mapping[str, Any]:
        outputs = infra_program.run(config)
        provider = aws.Provider(
            "unsafe-iam", region=config.hub_region, allowed_account_ids=[config.account_id]
        )
        trust = {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Effect": "Allow",
                    "Principal": {
                        "Federated": f"arn:aws:iam::{config.account_id}:oidc-provider/token.actions.githubusercontent.com"
                    },
                    "Action": "sts:AssumeRoleWithWebIdentity",
                    "Condition": {
                        "StringEquals": {"token.actions.githubusercontent.com:aud": "sts.amazonaws.com"},
                        "StringLike": {"token.actions.githubusercontent.com:sub": "repo:acme/*"},
                    },
                }
            ],
        }
        aws.iam.Role(
            "unsafe-github",
            name="platform-prod-unsafe-github",
            assume_role_policy=json.dumps(trust),
            tags=naming.base_tags(config.environment, config.tags),
            opts=pulumi.ResourceOptions(provider=provider),
        )
        return outputs

    found = policy_offline.evaluate(offline.run("prod", program=unsafe))
    mandatory = rows(policy_offline.mandatory(found))
    # The same role also names no workflow (issue 15's rule), reported on its own.
    assert [r[0] for r in mandatory if r[2] == "aws:iam/role:Role::unsafe-github"] == [
        "iam-github-trust-exact-subject",
        "iam-github-trust-names-workflow",
    ]
    assert [r for r in mandatory if r[0] == "iam-github-trust-exact-subject"] == [
        (
            "iam-github-trust-exact-subject",
            "mandatory",
            "aws:iam/role:Role::unsafe-github",
            "IAM role platform-prod-unsafe-github trusts GitHub Actions too broadly (statement 0 matches "
            "token.actions.githubusercontent.com:sub with StringLike instead of StringEquals; statement 0 trusts "
            "the wildcard subject repo:acme/*; statement 0 does not require an exact "
            "token.actions.githubusercontent.com:sub); require StringEquals on token.actions.githubusercontent.com:aud (sts.amazonaws.com) and "
            "on token.actions.githubusercontent.com:sub with exact subjects of one repository, such as "
            "repo:OWNER/REPO:environment:prod.",
        )
    ]


# --- an add-on upgrade, the order docs/addons.md "Versions per environment" gives -----------------


def test_an_addon_bumped_in_staging_first_then_in_prod_passes_and_prod_ahead_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The documented walk-through on copies of the project's stack files, where the offline plan
    reads staging's versions (policies/offline.py staged_from_checkout): staging alone bumped ->
    both plans pass (prod stays behind); prod bumped to the same -> passes; prod a patch ahead
    of staging -> gitops-addon-staged-before-prod refuses it, naming the file, key and value."""
    copy = Checkout(tmp_path)
    for path in cfg.PROJECT_ROOT.glob("Pulumi.*.yaml"):
        (tmp_path / path.name).write_text(path.read_text())
    real_load = stackset.load
    monkeypatch.setattr(stackset, "load", lambda root=tmp_path: real_load(root))
    prod, staging = cfg.load_stack_file("prod"), cfg.load_stack_file("staging")
    # An add-on both environments run at the same version, from the loaded files.
    addon = next(
        a
        for a, s in prod.addons.items()
        if prod.addon_regions(a)
        and a in staging.addons
        and staging.addons[a].chart_version == s.chart_version
    )
    current = prod.addons[addon].chart_version
    bumped = str(Version.parse(current).bump_patch())
    ahead = str(Version.parse(bumped).bump_patch())

    def set_version(stack: str, version: str) -> list[Result]:
        raw = copy.config(stack)
        raw["platform:addons"][addon]["chartVersion"] = version
        copy.write_config(stack, raw)
        return policy_offline.mandatory(policy_offline.evaluate(offline.run(stack, flat_config=raw)))

    # 1. Staging first: staging's plan passes, and prod's, unchanged and now behind, too.
    assert rows(set_version("staging", bumped)) == []
    assert policy_offline.staged_from_checkout(prod) is not None
    assert rows(policy_offline.mandatory(policy_offline.evaluate(plan("prod")))) == []
    # 2. Prod follows, to the version staging runs.
    assert rows(set_version("prod", bumped)) == []
    # 3. Prod ahead of staging is refused.
    found = set_version("prod", ahead)
    assert [(r.policy, str(r.resource).split("::")[0]) for r in found] == [
        (STAGED_RULE, "kubernetes:argoproj.io/v1alpha1:ApplicationSet")
    ]
    assert (
        f"Pulumi.prod.yaml platform:addons.{addon}.chartVersion: {ahead}, but staging runs {bumped}, older; "
        f"allowed: {bumped} or older"
    ) in found[0].message
