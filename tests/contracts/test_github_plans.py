"""Contracts of GitHub's plans: which of the protections prod's stack declares exist on which plan
and repository visibility, and that the config refuses every combination where one would not.

Each test transcribes one of GitHub's availability notes (github/docs, read 2026-12-01; the
"Who can use this feature?" box of the page named) independently of
``infra/documents/github_plans.py``, and checks the loaded config against it for every plan,
visibility and reviewer setting: a stack is accepted exactly when everything it relies on exists.
"""

from __future__ import annotations

import copy
import itertools
from typing import Any

import pytest

from infra import config
from infra.components import github_repository
from infra.documents import github_plans
from tests.conftest import fixture_config_map

PLANS = ("free", "pro", "team", "enterprise")
VISIBILITIES = ("public", "private", "internal")


def _accepted(stack: str, plan: str, visibility: str, *, reviewers: bool) -> bool:
    raw: dict[str, Any] = copy.deepcopy(fixture_config_map(stack))
    gh = raw["platform:github"]
    gh.update({"plan": plan, "visibility": visibility})
    if reviewers:
        gh["reviewers"] = {"teams": [1234567]}
    else:
        gh.pop("reviewers", None)
    try:
        config.from_flat(config.as_pulumi_config(raw), stack)
    except config.ConfigError as e:
        assert "platform:github.plan" in str(e) or "platform:github.visibility" in str(e), str(e)
        return False
    return True


def _internal_exists(plan: str) -> bool:
    """github/docs data/reusables/gated-features/internal-repos.md: "Internal repositories are
    available on GitHub Enterprise Cloud for organizations that are owned by an enterprise account"."""
    return plan == "enterprise"


def _environments_with_branch_rules(plan: str, visibility: str) -> bool:
    """ "Managing environments for deployment"
    (https://docs.github.com/en/actions/how-tos/deploy/configure-and-manage-deployments/manage-environments;
    github/docs data/reusables/gated-features/environments.md): "Environments, environment secrets,
    and deployment protection rules are available in public repositories for all current GitHub
    plans. [...] For access to environments, environment secrets, and deployment branches in
    private or internal repositories, you must use GitHub Pro, GitHub Team, or GitHub Enterprise."
    The page adds: "If you convert a repository from public to private, any configured protection
    rules or environment secrets will be ignored"."""
    return visibility == "public" or plan in ("pro", "team", "enterprise")


def _required_reviewers(plan: str, visibility: str) -> bool:
    """The same note: "If you are on a GitHub Free, GitHub Pro, or GitHub Team plan, other
    deployment protection rules, such as a wait timer or required reviewers, are only available for
    public repositories." """
    return visibility == "public" or plan == "enterprise"


def _rulesets(plan: str, visibility: str) -> bool:
    """ "About rulesets"
    (https://docs.github.com/en/repositories/configuring-branches-and-merges-in-your-repository/managing-rulesets/about-rulesets;
    github/docs data/reusables/gated-features/repo-rules.md): "Rulesets are available in public
    repositories with GitHub Free and GitHub Free for organizations, and in public and private
    repositories with GitHub Pro, GitHub Team, and GitHub Enterprise Cloud." (An internal
    repository exists on Enterprise Cloud only.)"""
    return visibility == "public" or plan in ("pro", "team", "enterprise")


COMBINATIONS = list(itertools.product(PLANS, VISIBILITIES))


@pytest.mark.parametrize(("plan", "visibility"), COMBINATIONS)
def test_a_stack_without_reviewers_needs_environments_branch_rules_and_the_ruleset(
    plan: str, visibility: str
) -> None:
    """Staging (no reviewers): its environment's main-only branch rule and the ruleset on main
    must exist (the gated-features notes on environments and rulesets, see the helpers)."""
    exists = (
        (visibility != "internal" or _internal_exists(plan))
        and _environments_with_branch_rules(plan, visibility)
        and _rulesets(plan, visibility)
    )
    assert _accepted("staging", plan, visibility, reviewers=False) is exists


@pytest.mark.parametrize(("plan", "visibility"), COMBINATIONS)
def test_a_stack_with_reviewers_needs_required_reviewers_too(plan: str, visibility: str) -> None:
    """Prod (reviewers required) and any stack that names reviewers: required reviewers must exist
    too, which outside public repositories is GitHub Enterprise only (the environments note)."""
    exists = (
        (visibility != "internal" or _internal_exists(plan))
        and _environments_with_branch_rules(plan, visibility)
        and _required_reviewers(plan, visibility)
        and _rulesets(plan, visibility)
    )
    assert _accepted("prod", plan, visibility, reviewers=True) is exists
    assert _accepted("staging", plan, visibility, reviewers=True) is exists


def test_a_public_repository_on_github_free_has_every_protection() -> None:
    """The environments note: "available in public repositories for all current GitHub plans";
    the rulesets note: "available in public repositories with GitHub Free"."""
    assert _accepted("prod", "free", "public", reviewers=True)
    assert github_plans.missing("free", "public", reviewers=True) == ()


def test_every_protection_prod_declares_is_one_the_plan_check_knows() -> None:
    """The GitHub resource types of prod's stack that protect a trusted environment map onto the
    protections :func:`infra.documents.github_plans.required` checks, so a protection added to
    ``GitHubRepository`` without a plan rule fails here."""
    import inspect

    source = inspect.getsource(github_repository.GitHubRepository.__init__)
    declared = {
        "github.RepositoryEnvironment(": "environments",
        "github.RepositoryEnvironmentDeploymentPolicy(": "environments",
        "reviewers=": "reviewers",
        "github.RepositoryRuleset(": "ruleset",
    }
    assert all(marker in source for marker in declared)
    assert set(declared.values()) == set(github_plans.required(reviewers=True))
    # Protection types the component might grow: each needs its own availability rule first.
    for unchecked in ("wait_timer=", "github.BranchProtection(", "github.RepositoryEnvironmentCustomRule"):
        assert unchecked not in source, unchecked
