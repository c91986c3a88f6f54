"""The repository's settings as code (infra.components.github_repository), in the real program.

Expectations come from the loaded stack config and from the roles' own trust policies: every
environment a prod role's subject names is declared, protected, and created before the role.
"""

from __future__ import annotations

import copy
import functools
import json
import re

import pytest

from infra import config, offline
from infra.components import github_repository
from infra.config import ConfigError
from infra.documents import iam
from infra.offline import Plan, Resource
from infra.plan import available_stacks
from tests.conftest import stack_config_map

ROLE = "aws:iam/role:Role"
TEMPLATE = "github:index/actionsRepositoryOidcSubjectClaimCustomizationTemplate:ActionsRepositoryOidcSubjectClaimCustomizationTemplate"
ENVIRONMENT = "github:index/repositoryEnvironment:RepositoryEnvironment"
BRANCH_POLICY = "github:index/repositoryEnvironmentDeploymentPolicy:RepositoryEnvironmentDeploymentPolicy"
GITHUB_PROVIDER = "pulumi:providers:github"


@functools.cache
def plan(stack: str) -> Plan:
    return offline.run(stack)


def github_roles(p: Plan) -> list[Resource]:
    return [r for r in p.of_type(ROLE) if iam.GITHUB_OIDC_HOST in r.inputs["assumeRolePolicy"]]


def trusted_environments(role: Resource) -> set[str]:
    doc = json.loads(role.inputs["assumeRolePolicy"])
    subjects = iam.assert_exact_subjects(doc)
    return {m.group(1) for s in subjects if (m := re.search(r":environment:([^:]+):job_workflow_ref:", s))}


def test_prod_sets_the_repository_subject_template_the_trusts_are_written_for() -> None:
    p = plan("prod")
    [template] = p.of_type(TEMPLATE)
    gh = p.config.github
    assert template.inputs["repository"] == gh.repository
    assert template.inputs["useDefault"] is False
    assert template.inputs["includeClaimKeys"] == ["repo", "context", "job_workflow_ref"]
    # And every subject a role trusts has exactly that shape: the default subject, then the workflow.
    for role in github_roles(p):
        for subject in iam.assert_exact_subjects(json.loads(role.inputs["assumeRolePolicy"])):
            assert ":job_workflow_ref:" in subject and subject.count(":job_workflow_ref:") == 1


def test_the_github_provider_is_explicit_and_holds_no_token() -> None:
    p = plan("prod")
    [provider] = p.of_type(GITHUB_PROVIDER)
    assert provider.inputs.get("owner") == p.config.github.owner
    # The token comes from GITHUB_TOKEN of the `pulumi up` process: a stack secret would be
    # readable by every holder of the stack's read credential, pull-request previews included.
    assert "token" not in provider.inputs and "appAuth" not in provider.inputs
    for r in p.resources:
        if r.type.startswith("github:"):
            assert r.provider == provider.urn, r.urn


@pytest.mark.parametrize("stack", ["staging", "prod"])
def test_every_environment_a_prod_role_trusts_is_protected_before_the_role_exists(stack: str) -> None:
    p = plan(stack)
    cfg = p.config
    environments = {r.inputs["environment"]: r for r in p.of_type(ENVIRONMENT)}
    policies = {r.inputs["environment"]: r for r in p.of_type(BRANCH_POLICY)}
    if not github_repository.owns_repository_settings(cfg):
        assert not environments and not p.of_type(TEMPLATE) and not p.of_type(GITHUB_PROVIDER)
        return
    trusted = set().union(*(trusted_environments(r) for r in github_roles(p)))
    assert trusted == {cfg.github.environment, cfg.github.deploy_environment}
    # Prod's own environments and every other stack's up environment (it holds that stack's
    # Pulumi token), each with the release-branch-only rule.
    others = {s: config.load_stack_file(s) for s in available_stacks() if s != stack}
    assert others, "the example has a second stack whose environment must be declared here"
    expected = trusted | {o.github.environment for o in others.values()}
    assert set(environments) == expected == set(policies)
    [template] = p.of_type(TEMPLATE)
    for name, env in environments.items():
        assert env.inputs["canAdminsBypass"] is False
        owner = cfg if name in trusted else next(o for o in others.values() if o.github.environment == name)
        teams, users = list(owner.github.reviewer_teams), list(owner.github.reviewer_users)
        if name in trusted:
            assert teams or users, name
        if teams or users:
            assert env.inputs["preventSelfReview"] is True
            [reviewers] = env.inputs["reviewers"]
            assert reviewers.get("teams", []) == teams
            assert reviewers.get("users", []) == users
        else:
            assert not env.inputs.get("reviewers"), name
        assert env.inputs["deploymentBranchPolicy"] == {
            "protectedBranches": False,
            "customBranchPolicies": True,
        }
        assert policies[name].inputs["branchPattern"] == iam.RELEASE_BRANCH
        assert "tagPattern" not in policies[name].inputs
        assert environments[name].urn in policies[name].dependencies
    for role in github_roles(p):
        for name in trusted_environments(role):
            needed = {template.urn, environments[name].urn, policies[name].urn}
            assert needed <= set(role.dependencies), (role.inputs["name"], needed - set(role.dependencies))


def _prod_map() -> dict[str, object]:
    return copy.deepcopy(stack_config_map("prod"))


def test_prod_without_reviewers_is_refused_before_anything_is_declared() -> None:
    flat = _prod_map()
    del flat["platform:github"]["reviewers"]  # type: ignore[attr-defined]
    with pytest.raises(ConfigError, match=r"platform:github.reviewers: .*at least one reviewer"):
        config.from_flat(config.as_pulumi_config(flat), "prod")


@pytest.mark.parametrize(
    ("reviewers", "message"),
    [
        ({"teams": ["platform"]}, r"github.reviewers.teams\[0\].*whole number"),
        ({"teams": list(range(1, 8))}, "at most 6 required reviewers"),
        ({"groups": [1]}, "unknown key|groups"),
    ],
)
def test_bad_reviewers_name_the_key(reviewers: dict[str, object], message: str) -> None:
    flat = _prod_map()
    flat["platform:github"]["reviewers"] = reviewers  # type: ignore[index]
    with pytest.raises(ConfigError, match=message):
        config.from_flat(config.as_pulumi_config(flat), "prod")


ENV_VARIABLE = "github:index/actionsEnvironmentVariable:ActionsEnvironmentVariable"
REPO_VARIABLE = "github:index/actionsVariable:ActionsVariable"


def test_prod_publishes_its_role_arns_where_the_workflows_read_them() -> None:
    p = plan("prod")
    cfg = p.config
    roles = {r.inputs["name"]: r for r in github_roles(p)}
    variables = {r.inputs["variableName"]: r for r in p.of_type(ENV_VARIABLE) + p.of_type(REPO_VARIABLE)}
    specs = iam.role_specs(cfg)
    assert set(variables) == {github_repository.role_variable(cfg, s.purpose) for s in specs}
    workflows = "\n".join(
        path.read_text() for path in (config.PROJECT_ROOT / ".github" / "workflows").glob("*.yml")
    )
    for spec in specs:
        variable = variables[github_repository.role_variable(cfg, spec.purpose)]
        assert f"vars.{variable.inputs['variableName']}" in workflows
        assert variable.inputs["value"] == roles[spec.role_name].outputs["arn"]
        scope = github_repository.role_variable_scope(cfg, spec.purpose)
        if scope is None:
            assert variable.type == REPO_VARIABLE
        else:
            # Only jobs in the environment that may assume the role see its ARN.
            assert variable.type == ENV_VARIABLE and variable.inputs["environment"] == scope
            assert variable.inputs["environment"] in trusted_environments(roles[spec.role_name])


def test_managed_environments_skip_other_repositories_and_keep_prods_own_first() -> None:
    prod = config.load_stack_file("prod")
    staging = config.load_stack_file("staging")
    names = [e.name for e in github_repository.managed_environments(prod, [staging, prod])]
    assert names == [prod.github.environment, prod.github.deploy_environment, staging.github.environment]
    # A stack of another repository holds its token there: not this repository's environment.
    raw = stack_config_map("staging")
    raw["platform:github"] = {**raw["platform:github"], "repository": "elsewhere"}
    elsewhere = config.from_flat(config.as_pulumi_config(raw), "staging")
    assert [e.name for e in github_repository.managed_environments(prod, [elsewhere])] == names[:2]
    # Only the stack that owns the settings declares any.
    assert github_repository.managed_environments(staging, [prod]) == ()


RULESET = "github:index/repositoryRuleset:RepositoryRuleset"
WORKFLOW_PERMISSIONS = "github:index/workflowRepositoryPermissions:WorkflowRepositoryPermissions"


def test_prod_protects_the_release_branch_with_review_and_no_bypass() -> None:
    """Rules: https://docs.github.com/en/repositories/configuring-branches-and-merges-in-your-repository/managing-rulesets/available-rules-for-rulesets"""
    p = plan("prod")
    [ruleset] = p.of_type(RULESET)
    assert ruleset.inputs["repository"] == p.config.github.repository
    assert ruleset.inputs["target"] == "branch"
    assert ruleset.inputs["enforcement"] == "active"
    assert not ruleset.inputs.get("bypassActors")
    assert ruleset.inputs["conditions"]["refName"]["includes"] == [f"refs/heads/{iam.RELEASE_BRANCH}"]
    rules = ruleset.inputs["rules"]
    assert rules["deletion"] is True and rules["nonFastForward"] is True
    assert rules["pullRequest"]["requiredApprovingReviewCount"] >= 1
    [perms] = p.of_type(WORKFLOW_PERMISSIONS)
    assert perms.inputs["defaultWorkflowPermissions"] == "read"
    assert perms.inputs["canApprovePullRequestReviews"] is False
    # Both exist before any role that trusts the repository.
    for role in github_roles(p):
        deps = set(role.dependencies)
        assert ruleset.urn in deps and perms.urn in deps, role.name


@pytest.mark.parametrize("stack", available_stacks())
def test_every_declared_github_type_has_a_token_permission_row(stack: str) -> None:
    """The REPOSITORY_ADMIN_TOKEN's list is derived from the declared types: a new GitHub resource
    type without a row fails here (permissions per endpoint: GitHub's "Permissions required for
    fine-grained personal access tokens")."""
    p = plan(stack)
    declared = {r.type for r in p.resources if r.type.startswith("github:index/")}
    assert declared <= set(github_repository.TOKEN_PERMISSIONS), declared - set(
        github_repository.TOKEN_PERMISSIONS
    )


def test_the_docs_list_exactly_the_token_permissions() -> None:
    from pathlib import Path

    text = (Path(__file__).resolve().parents[2] / "docs" / "github-actions.md").read_text()
    block = text.split("<!-- admin-token-permissions:begin -->")[1].split(
        "<!-- admin-token-permissions:end -->"
    )[0]
    listed = tuple(
        line.strip()[2:].strip() for line in block.strip().splitlines() if line.strip().startswith("- ")
    )
    assert listed == github_repository.token_permissions()
