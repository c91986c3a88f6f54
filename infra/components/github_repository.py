"""The GitHub repository's settings the roles' trust depends on, as code (issue 15).

Prod's stack owns them, because prod's roles are what they protect:

* the repository's OIDC subject template ``repo, context, job_workflow_ref``
  (:data:`infra.documents.iam.SUBJECT_CLAIM_KEYS`), without which no subject any role trusts is
  ever issued, and with which each role names the one workflow file that may use it;
* prod's two environments, ``github.environment`` (approves ``up.yml``'s prod job) and
  ``github.deployEnvironment`` (approves ``deploy-prod.yml``): required reviewers from
  ``github.reviewers``, no self-review, no admin bypass, deployable from the release branch only;
* the ``up`` environment (``github.environment``) of every other stack file of the checkout on the
  same repository (staging's ``staging``): it holds that stack's write-capable Pulumi token
  (:func:`pulumi_token_secret`), so it gets the same release-branch-only rule, and its own
  stack's reviewers if it names any. Without the rule, a pull request that adds a job with
  ``environment: staging`` would receive the token: GitHub gives an environment's secrets to any
  job that names it and passes its protection rules, and an environment without a deployment
  branch rule admits every branch.
  https://docs.github.com/en/actions/reference/workflows-and-actions/deployments-and-environments#deployment-branches-and-tags
  https://docs.github.com/en/actions/reference/workflows-and-actions/deployments-and-environments#environment-secrets

Each of these is a plan feature that GitHub ignores where the repository's plan and visibility
lack it; ``platform:github.plan`` and ``visibility`` are checked against GitHub's availability
notes before anything is declared (:mod:`infra.documents.github_plans`), so no environment a
role trusts is declared without its protection.

The program declares the roles after these (``depends_on``), so a role that trusts an
environment is never created before the environment's protection: GitHub creates an unprotected
environment the first time a workflow names one.
https://docs.github.com/en/actions/reference/workflows-and-actions/deployments-and-environments

The provider is explicit (``owner`` from the stack config) and takes its token from the
``GITHUB_TOKEN`` environment variable of the process that runs ``pulumi up``, never from the stack:
a stack secret is readable by every holder of the stack's read credential (Pulumi Cloud's
"Stack Read" includes ``stack:decrypt``), pull-request previews included.
https://www.pulumi.com/registry/packages/github/installation-configuration/
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

import pulumi
import pulumi_github as github

from infra.config import StackConfig
from infra.documents import iam

TYPE = "platform:github:GitHubRepository"

# Approving reviews a pull request into the release branch needs (the ruleset below).
RELEASE_REVIEWS = 1

# The fine-grained token permission (repository permissions) each GitHub resource type this
# component declares needs, from GitHub's "Permissions required for fine-grained personal access
# tokens" (https://docs.github.com/en/rest/authentication/permissions-required-for-fine-grained-personal-access-tokens)
# and each endpoint's page:
# * PUT /repos/{o}/{r}/actions/oidc/customization/sub: "Actions" write
#   (https://docs.github.com/en/rest/actions/oidc#set-the-customization-template-for-an-oidc-subject-claim-for-a-repository);
# * PUT /repos/{o}/{r}/environments/{env} and its deployment-branch-policies: "Administration"
#   write (https://docs.github.com/en/rest/deployments/environments#create-or-update-an-environment,
#   https://docs.github.com/en/rest/deployments/branch-policies#create-a-deployment-branch-policy);
# * POST /repos/{o}/{r}/rulesets: "Administration" write (https://docs.github.com/en/rest/repos/rules#create-a-repository-ruleset);
# * PUT /repos/{o}/{r}/actions/permissions/workflow: "Administration" write
#   (https://docs.github.com/en/rest/actions/permissions#set-default-workflow-permissions-for-a-repository);
# * POST /repos/{o}/{r}/environments/{env}/variables and /repos/{o}/{r}/actions/variables:
#   "Environments" write and "Variables" write
#   (https://docs.github.com/en/rest/actions/variables).
# Re-read 2026-12-01 in the data that page is generated from (github/docs
# src/github-apps/data/fpt-2022-11-28/fine-grained-pat-permissions.json at 012beafe): the subject
# template's PUT under "actions" (write), and the environment PUT, the deployment-branch-policy
# POST, the repository ruleset POST and the workflow-permissions PUT under "administration"
# (write); the environment GET and its branch-policy GETs (the provider's reads) under "actions"
# (read), which "Actions: write" includes.
# Every token needs "Metadata" read (GitHub adds it to every fine-grained token). docs/github-actions.md
# ("REPOSITORY_ADMIN_TOKEN") renders this table; tests/components/test_github_repository.py checks
# that every GitHub type the program declares has a row.
TOKEN_PERMISSIONS: Mapping[str, tuple[str, ...]] = {
    "github:index/actionsRepositoryOidcSubjectClaimCustomizationTemplate:ActionsRepositoryOidcSubjectClaimCustomizationTemplate": (
        "Actions: write",
    ),
    "github:index/repositoryEnvironment:RepositoryEnvironment": ("Administration: write",),
    "github:index/repositoryEnvironmentDeploymentPolicy:RepositoryEnvironmentDeploymentPolicy": (
        "Administration: write",
    ),
    "github:index/repositoryRuleset:RepositoryRuleset": ("Administration: write",),
    "github:index/workflowRepositoryPermissions:WorkflowRepositoryPermissions": ("Administration: write",),
    "github:index/actionsEnvironmentVariable:ActionsEnvironmentVariable": ("Environments: write",),
    "github:index/actionsVariable:ActionsVariable": ("Variables: write",),
}


def token_permissions() -> tuple[str, ...]:
    """Every fine-grained permission REPOSITORY_ADMIN_TOKEN needs, sorted, "Metadata: read" first."""
    return ("Metadata: read", *sorted({p for perms in TOKEN_PERMISSIONS.values() for p in perms}))


@dataclass(frozen=True)
class ManagedEnvironment:
    """One GitHub environment this stack declares: its name, the stack whose jobs run in it, and
    its required reviewers (numeric team and user IDs; both empty: no reviewers)."""

    name: str
    stack: str
    reviewer_teams: tuple[int, ...]
    reviewer_users: tuple[int, ...]

    @property
    def has_reviewers(self) -> bool:
        return bool(self.reviewer_teams or self.reviewer_users)


def managed_environments(
    config: StackConfig, others: Iterable[StackConfig] = ()
) -> tuple[ManagedEnvironment, ...]:
    """Every environment the stack that owns the repository's settings declares, in order.

    ``config``'s own ``github.environment`` and ``github.deployEnvironment`` (with its reviewers),
    then the ``github.environment`` of each of ``others`` (the checkout's other stack files) on the
    same repository, with that stack's reviewers: each holds a write secret of its stack. A name
    already declared is not declared twice (the first declaration, prod's, wins). A stack that does
    not own the settings declares none.
    """
    if not owns_repository_settings(config):
        return ()
    gh = config.github
    out: dict[str, ManagedEnvironment] = {}
    for name in (gh.environment, gh.deploy_environment):
        out.setdefault(name, ManagedEnvironment(name, config.stack, gh.reviewer_teams, gh.reviewer_users))
    for other in sorted(others, key=lambda c: c.stack):
        o = other.github
        if other.stack == config.stack or (o.owner, o.repository) != (gh.owner, gh.repository):
            continue
        out.setdefault(
            o.environment, ManagedEnvironment(o.environment, other.stack, o.reviewer_teams, o.reviewer_users)
        )
    return tuple(out.values())


def protected_environments(config: StackConfig) -> tuple[str, ...]:
    """The environments whose protection this stack declares and its own roles trust (prod: up's
    and the deploy's)."""
    gh = config.github
    return (gh.environment, gh.deploy_environment) if config.is_prod else ()


def pulumi_token_secret(config: StackConfig) -> str:
    """The secret of the stack's ``github.environment`` that ``up.yml`` hands to ``pulumi up`` as
    ``PULUMI_ACCESS_TOKEN``: ``<STACK>_PULUMI_TOKEN``, one per stack, so each environment holds
    only its own stack's token (a team token whose team may write that stack alone, where the
    Pulumi Cloud edition offers team tokens: docs/github-actions.md, "The Pulumi tokens")."""
    return f"{config.stack.upper()}_PULUMI_TOKEN"


def role_variable(config: StackConfig, purpose: str) -> str:
    """The Actions variable a workflow reads a role's ARN from: ``<STACK>_<PURPOSE>_ROLE_ARN``."""
    return f"{config.stack.upper()}_{purpose.upper()}_ROLE_ARN"


def role_variable_scope(config: StackConfig, purpose: str) -> str | None:
    """Where the variable lives: the environment whose jobs assume the role, else the repository."""
    gh = config.github
    return {iam.UP: gh.environment, iam.DEPLOY: gh.deploy_environment}.get(purpose)


def owns_repository_settings(config: StackConfig) -> bool:
    """Whether this stack declares the repository's settings (one stack must: prod)."""
    return config.is_prod


@dataclass(frozen=True)
class GitHubRepositoryArgs:
    config: StackConfig
    # The checkout's other stack files (infra.stackset.load): their up environments are declared
    # here too (managed_environments).
    others: tuple[StackConfig, ...] = ()


class GitHubRepository(pulumi.ComponentResource):
    """The OIDC subject template and the protected environments of the platform's repository."""

    provider: github.Provider
    subject_template: github.ActionsRepositoryOidcSubjectClaimCustomizationTemplate
    environments: dict[str, github.RepositoryEnvironment]
    branch_policies: dict[str, github.RepositoryEnvironmentDeploymentPolicy]
    release_ruleset: github.RepositoryRuleset
    workflow_permissions: github.WorkflowRepositoryPermissions

    def __init__(
        self, name: str, args: GitHubRepositoryArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__(TYPE, name, None, opts)
        self._name = name
        gh = args.config.github
        # Token: GITHUB_TOKEN in the environment of `pulumi up` (see the module docstring).
        self.provider = github.Provider(
            f"{name}-github", owner=gh.owner, opts=pulumi.ResourceOptions(parent=self)
        )
        child = pulumi.ResourceOptions(parent=self, provider=self.provider)
        # PUT /repos/{owner}/{repo}/actions/oidc/customization/sub
        # https://docs.github.com/en/rest/actions/oidc#set-the-customization-template-for-an-oidc-subject-claim-for-a-repository
        self.subject_template = github.ActionsRepositoryOidcSubjectClaimCustomizationTemplate(
            f"{name}-oidc-subject",
            repository=gh.repository,
            use_default=False,
            include_claim_keys=list(iam.SUBJECT_CLAIM_KEYS),
            opts=child,
        )
        # The release branch every write environment admits is itself protected: a change reaches
        # it only through a pull request with an approving review, for everyone (no bypass
        # actors: an empty bypass list), and it can be neither force-pushed nor deleted. Without
        # this, anyone with write access pushes to `main` and the environments' branch rule
        # admits the push's jobs. Rulesets: https://docs.github.com/en/repositories/configuring-branches-and-merges-in-your-repository/managing-rulesets/available-rules-for-rulesets
        # (pull_request, non_fast_forward, deletion); pulumi-github 6.15.0 RepositoryRuleset.
        # https://www.pulumi.com/registry/packages/github/api-docs/repositoryruleset/
        self.release_ruleset = github.RepositoryRuleset(
            f"{name}-{iam.RELEASE_BRANCH}-ruleset",
            repository=gh.repository,
            name=f"protect-{iam.RELEASE_BRANCH}",
            target="branch",
            enforcement="active",
            bypass_actors=[],
            conditions=github.RepositoryRulesetConditionsArgs(
                ref_name=github.RepositoryRulesetConditionsRefNameArgs(
                    includes=[f"refs/heads/{iam.RELEASE_BRANCH}"], excludes=[]
                )
            ),
            rules=github.RepositoryRulesetRulesArgs(
                deletion=True,
                non_fast_forward=True,
                pull_request=github.RepositoryRulesetRulesPullRequestArgs(
                    required_approving_review_count=RELEASE_REVIEWS,
                    dismiss_stale_reviews_on_push=True,
                    require_last_push_approval=True,
                ),
            ),
            opts=child,
        )
        # The job token is read-only unless a workflow asks for more, and no workflow's token can
        # approve a pull request (else a workflow could supply the review the ruleset requires).
        # PUT /repos/{o}/{r}/actions/permissions/workflow
        # https://docs.github.com/en/rest/actions/permissions#set-default-workflow-permissions-for-a-repository
        self.workflow_permissions = github.WorkflowRepositoryPermissions(
            f"{name}-workflow-permissions",
            repository=gh.repository,
            default_workflow_permissions="read",
            can_approve_pull_request_reviews=False,
            opts=child,
        )
        self.environments = {}
        self.branch_policies = {}
        for env in managed_environments(args.config, args.others):
            environment = env.name
            # https://docs.github.com/en/rest/deployments/environments#create-or-update-an-environment
            # https://www.pulumi.com/registry/packages/github/api-docs/repositoryenvironment/
            # (pulumi-github 6.15.0): deploymentBranchPolicy {protectedBranches: false,
            # customBranchPolicies: true} is the console's "Selected branches and tags"; the
            # pattern itself is the RepositoryEnvironmentDeploymentPolicy below.
            self.environments[environment] = github.RepositoryEnvironment(
                f"{name}-{environment}",
                repository=gh.repository,
                environment=environment,
                reviewers=[
                    github.RepositoryEnvironmentReviewerArgs(
                        teams=list(env.reviewer_teams), users=list(env.reviewer_users)
                    )
                ]
                if env.has_reviewers
                else None,
                prevent_self_review=True if env.has_reviewers else None,
                can_admins_bypass=False,
                deployment_branch_policy=github.RepositoryEnvironmentDeploymentBranchPolicyArgs(
                    protected_branches=False, custom_branch_policies=True
                ),
                opts=child,
            )
            # https://docs.github.com/en/rest/deployments/branch-policies#create-a-deployment-branch-policy
            # https://www.pulumi.com/registry/packages/github/api-docs/repositoryenvironmentdeploymentpolicy/
            # A branch rule (REST `type: branch`, the default), and no tag rule.
            self.branch_policies[environment] = github.RepositoryEnvironmentDeploymentPolicy(
                f"{name}-{environment}-{iam.RELEASE_BRANCH}",
                repository=gh.repository,
                environment=environment,
                branch_pattern=iam.RELEASE_BRANCH,
                opts=pulumi.ResourceOptions.merge(
                    child, pulumi.ResourceOptions(depends_on=[self.environments[environment]])
                ),
            )
        self.register_outputs(
            {
                "subjectClaimKeys": list(iam.SUBJECT_CLAIM_KEYS),
                "environments": sorted(self.environments),
            }
        )

    def publish_role_arns(self, config: StackConfig, role_arns: Mapping[str, pulumi.Input[str]]) -> None:
        """This stack's role ARNs as the Actions variables the workflows read (one fewer thing
        set by hand each): the up and deploy roles' in their environment, so only jobs in it see
        them; the preview role's in the repository."""
        gh = config.github
        child = pulumi.ResourceOptions(parent=self, provider=self.provider)
        for purpose, arn in sorted(role_arns.items()):
            name = role_variable(config, purpose)
            scope = role_variable_scope(config, purpose)
            if scope is not None:
                github.ActionsEnvironmentVariable(
                    f"{self._name}-{name.lower()}",
                    repository=gh.repository,
                    environment=scope,
                    variable_name=name,
                    value=arn,
                    opts=pulumi.ResourceOptions.merge(
                        child, pulumi.ResourceOptions(depends_on=[self.environments[scope]])
                    ),
                )
            else:
                github.ActionsVariable(
                    f"{self._name}-{name.lower()}",
                    repository=gh.repository,
                    variable_name=name,
                    value=arn,
                    opts=child,
                )

    @property
    def protection(self) -> list[pulumi.Resource]:
        """What a role trusting this repository must be created after."""
        return [
            self.subject_template,
            self.release_ruleset,
            self.workflow_permissions,
            *self.environments.values(),
            *self.branch_policies.values(),
        ]
