"""GitHub Actions OIDC: which roles a stack has, whom they trust, what they may do. Pure functions.

Nothing here touches Pulumi. :func:`role_specs` decides, from the stack config alone, which
GitHub roles exist and which exact token subjects each trusts; the ``*_policy`` functions build
the trust and permission documents; :func:`assert_exact_subjects` is the check every GitHub trust
policy must pass (the tests run it on each role; the policy pack holds the live stack to the same
rule).

How GitHub's token meets AWS: https://docs.github.com/en/actions/how-tos/secure-your-work/security-harden-deployments/oidc-in-aws
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from infra import naming
from infra.config import ConfigError, GitHubConfig, StackConfig
from infra.manifests import rbac

# Every region the config accepts is in the commercial partition (infra.config.KNOWN_REGIONS).
PARTITION = "aws"

GITHUB_OIDC_HOST = "token.actions.githubusercontent.com"
GITHUB_OIDC_URL = f"https://{GITHUB_OIDC_HOST}"
# The audience aws-actions/configure-aws-credentials requests by default.
STS_AUDIENCE = "sts.amazonaws.com"
AUD_KEY = f"{GITHUB_OIDC_HOST}:aud"
SUB_KEY = f"{GITHUB_OIDC_HOST}:sub"
ASSUME_ACTION = "sts:AssumeRoleWithWebIdentity"
POLICY_VERSION = "2012-10-17"

PUSH = "push"
PREVIEW = "preview"
UP = "up"
DEPLOY = "deploy"
VERIFY = "verify"
PURPOSES: tuple[str, ...] = (PUSH, PREVIEW, UP, DEPLOY, VERIFY)

# The pull-request preview identity: resources and their metadata, no data. ReadOnlyAccess
# (what it had) reads S3 objects, DynamoDB items, log events and Lambda environment variables.
# https://docs.aws.amazon.com/aws-managed-policy/latest/reference/ViewOnlyAccess.html
VIEW_ONLY_ACCESS = f"arn:{PARTITION}:iam::aws:policy/job-function/ViewOnlyAccess"
ADMINISTRATOR_ACCESS = f"arn:{PARTITION}:iam::aws:policy/AdministratorAccess"

# What `docker push` calls, per https://docs.aws.amazon.com/AmazonECR/latest/userguide/image-push-iam.html
# (BatchGetImage is there because the client reads back manifests it has just pushed, and
# multi-arch index pushes HEAD each child manifest).
ECR_PUSH_ACTIONS: tuple[str, ...] = (
    "ecr:BatchCheckLayerAvailability",
    "ecr:BatchGetImage",
    "ecr:CompleteLayerUpload",
    "ecr:InitiateLayerUpload",
    "ecr:PutImage",
    "ecr:UploadLayerPart",
)
ECR_KMS_ACTIONS: tuple[str, ...] = ("kms:Decrypt", "kms:GenerateDataKey")

# Reads that return secret material. AWS's managed read policies are broad and change over time;
# the preview role denies these explicitly so that neither today's managed policy nor a future
# version of it can hand a pull request's workflow a secret.
SECRET_READ_ACTIONS: tuple[str, ...] = (
    "secretsmanager:GetSecretValue",
    "secretsmanager:BatchGetSecretValue",
    "kms:Decrypt",
    "ec2:GetPasswordData",
    "ecr:GetDownloadUrlForLayer",
    "ecr:BatchGetImage",
)
# Reads of data rather than of resources. ViewOnlyAccess grants none of these today; the preview
# role denies them explicitly so that no later version of the managed policy can hand a pull
# request the platform's data (the contract a reviewer checks: tests/unit/test_iam_documents.py).
DATA_READ_ACTIONS: tuple[str, ...] = (
    "s3:GetObject",
    "s3:GetObjectVersion",
    "dynamodb:GetItem",
    "dynamodb:BatchGetItem",
    "dynamodb:Query",
    "dynamodb:Scan",
    "logs:GetLogEvents",
    "logs:FilterLogEvents",
    "logs:StartQuery",
    "logs:GetQueryResults",
    "lambda:GetFunction",
    "lambda:GetFunctionConfiguration",
)
# The account's own SSM parameters may hold secrets; AWS's public parameters (EKS AMI ids under
# arn:aws:ssm:REGION::parameter/aws/service/..., no account) stay readable for previews.
SSM_PARAMETER_READ_ACTIONS: tuple[str, ...] = (
    "ssm:GetParameter",
    "ssm:GetParameters",
    "ssm:GetParametersByPath",
    "ssm:GetParameterHistory",
)

# The up role's permissions boundary: a guardrail on AdministratorAccess, not a wall (see
# up_boundary_policy).
LONG_LIVED_CREDENTIAL_ACTIONS: tuple[str, ...] = (
    "iam:CreateUser",
    "iam:CreateAccessKey",
    "iam:CreateLoginProfile",
    "iam:UpdateLoginProfile",
    "iam:CreateServiceSpecificCredential",
)
BOUNDARY_TAMPER_ROLE_ACTIONS: tuple[str, ...] = (
    "iam:DeleteRolePermissionsBoundary",
    "iam:PutRolePermissionsBoundary",
)
BOUNDARY_TAMPER_POLICY_ACTIONS: tuple[str, ...] = (
    "iam:CreatePolicyVersion",
    "iam:DeletePolicy",
    "iam:DeletePolicyVersion",
    "iam:SetDefaultPolicyVersion",
)


class UnsafeTrustPolicy(ValueError):
    """A trust policy would let more than the intended GitHub workflows assume a role."""


# ---------------------------------------------------------------------------------------------
# Subjects
# ---------------------------------------------------------------------------------------------


def subject_prefix(github: GitHubConfig) -> str:
    """``repo:OWNER/REPO`` or, for immutable subjects, ``repo:OWNER@OWNER_ID/REPO@REPO_ID``.

    The immutable form is GitHub's default for repositories created, renamed or transferred after
    2026-07-15, and opt-in before: https://docs.github.com/en/actions/reference/security/oidc#immutable-subject-claims
    (GitHub's changelog example of 2026-04-23 showed ``owner-ID``; the reference, which this
    follows, uses ``@`` because it cannot occur in owner or repository names).
    """
    if github.subject_form == "id":
        if github.owner_id is None or github.repository_id is None:
            raise ConfigError(
                "platform:github",
                {"ownerId": github.owner_id, "repositoryId": github.repository_id},
                "ownerId and repositoryId are required when subjectForm is id",
            )
        return f"repo:{github.owner}@{github.owner_id}/{github.repository}@{github.repository_id}"
    return f"repo:{github.owner}/{github.repository}"


def _escape(value: str) -> str:
    # GitHub replaces ':' inside metadata values with %3A in the subject.
    return value.replace(":", "%3A")


# The repository's OIDC subject template (declared by infra.components.github_repository): the
# default subject, then the workflow file and ref the job runs. With it a role names the workflow
# that may use it, so a job in another workflow that names the same environment (GitHub creates
# an environment the first time a workflow names it) gets a subject no role trusts.
# https://docs.github.com/en/actions/reference/security/oidc#customizing-the-subject-claims-for-an-organization-or-repository
# REST: PUT /repos/{owner}/{repo}/actions/oidc/customization/sub
# https://docs.github.com/en/rest/actions/oidc#set-the-customization-template-for-an-oidc-subject-claim-for-a-repository
SUBJECT_CLAIM_KEYS: tuple[str, ...] = ("repo", "context", "job_workflow_ref")
# The branch up.yml runs on and the only one from which prod's environments may deploy.
RELEASE_BRANCH = naming.RELEASE_BRANCH


def workflow_ref(github: GitHubConfig, workflow: str, ref: str) -> str:
    """``OWNER/REPO/.github/workflows/<workflow>@<ref>``: the ``job_workflow_ref`` claim."""
    return f"{github.slug}/{naming.WORKFLOWS_DIR}/{workflow}@{ref}"


def _with_workflow(subject: str, github: GitHubConfig, workflow: str, ref: str) -> str:
    return f"{subject}:job_workflow_ref:{_escape(workflow_ref(github, workflow, ref))}"


def branch_subject(github: GitHubConfig, branch: str, workflow: str = naming.WORKFLOW_BUILD) -> str:
    ref = f"refs/heads/{branch}"
    return _with_workflow(f"{subject_prefix(github)}:ref:{_escape(ref)}", github, workflow, ref)


# A pull request's job runs the workflow at refs/pull/<number>/merge, so its subject differs per
# pull request: the one subject a trust policy matches with StringLike, the number its only
# wildcard (assert_exact_subjects and the policy pack refuse any other).
PULL_REQUEST_REF = "refs/pull/*/merge"


def pull_request_subject(github: GitHubConfig, workflow: str = naming.WORKFLOW_PREVIEW) -> str:
    return _with_workflow(f"{subject_prefix(github)}:pull_request", github, workflow, PULL_REQUEST_REF)


def environment_subject(
    github: GitHubConfig, environment: str, workflow: str, ref: str = f"refs/heads/{RELEASE_BRANCH}"
) -> str:
    """A job of ``workflow`` at ``ref`` that names ``environment``."""
    return _with_workflow(
        f"{subject_prefix(github)}:environment:{_escape(environment)}", github, workflow, ref
    )


# ---------------------------------------------------------------------------------------------
# Which roles a stack has
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class HubAccessSpec:
    """What a role may do to the Argo CD Applications on its stack's hub cluster."""

    kubernetes_group: str
    kubernetes_role: str
    verbs: tuple[str, ...]


@dataclass(frozen=True)
class RoleSpec:
    purpose: str
    role_name: str
    subjects: tuple[str, ...]
    description: str
    managed_policy_arns: tuple[str, ...] = ()
    # An inline permission document built by inline_policy(); False for purely managed roles.
    has_inline_policy: bool = True
    permissions_boundary: bool = False
    hub_access: HubAccessSpec | None = None
    max_session_seconds: int = 3600


def role_specs(config: StackConfig) -> tuple[RoleSpec, ...]:
    """The GitHub roles of ``config``'s stack, in a stable order."""
    gh = config.github
    env = config.environment
    if config.is_prod and config.builds_images:
        # Prod runs only what staging verified; a push role in its account would let a branch
        # bypass that. Refused here so no combination of keys can declare one.
        raise ConfigError(
            "platform:registryRole",
            config.registry_role,
            "prod never builds images: expected replica, so that prod has no push role",
        )
    if config.is_prod and gh.environment == gh.deploy_environment:
        # The subjects differ by workflow, but one environment's reviewers would then approve
        # both a `pulumi up` of prod and a deploy: two gates would become one.
        raise ConfigError(
            "platform:github.deployEnvironment",
            gh.deploy_environment,
            "must differ from github.environment: one approval would open both the up and the "
            "deploy role; give each its own GitHub environment",
        )
    specs: list[RoleSpec] = []
    if config.builds_images:
        specs.append(
            RoleSpec(
                purpose=PUSH,
                role_name=naming.role_name(env, f"github-{PUSH}"),
                subjects=tuple(branch_subject(gh, b) for b in gh.deploy_branches),
                description=f"GitHub Actions on {gh.slug} deploy branches: push images to ECR",
            )
        )
    specs.append(
        RoleSpec(
            purpose=PREVIEW,
            role_name=naming.role_name(env, f"github-{PREVIEW}"),
            subjects=(pull_request_subject(gh),),
            description=f"GitHub Actions on {gh.slug} pull requests: view-only pulumi preview",
            managed_policy_arns=(VIEW_ONLY_ACCESS,),
        )
    )
    specs.append(
        RoleSpec(
            purpose=UP,
            role_name=naming.role_name(env, f"github-{UP}"),
            subjects=(environment_subject(gh, gh.environment, naming.WORKFLOW_UP),),
            description=f"GitHub Actions on {gh.slug}, environment {gh.environment}: pulumi up",
            managed_policy_arns=(ADMINISTRATOR_ACCESS,),
            has_inline_policy=False,
            permissions_boundary=True,
            # Three EKS clusters, their node groups and the Helm releases on top can outlast the
            # default one-hour session on a first `pulumi up`.
            max_session_seconds=7200,
        )
    )
    if config.is_prod:
        specs.append(
            RoleSpec(
                purpose=DEPLOY,
                role_name=naming.role_name(env, f"github-{DEPLOY}"),
                subjects=(environment_subject(gh, gh.deploy_environment, naming.WORKFLOW_DEPLOY),),
                description=f"GitHub Actions on {gh.slug}, environment {gh.deploy_environment}: "
                "sync prod's Argo CD Applications",
                hub_access=HubAccessSpec(rbac.DEPLOYER_GROUP, rbac.DEPLOYER_ROLE, rbac.DEPLOYER_VERBS),
            )
        )
    if config.builds_images:
        # The prod deploy job (environment deployEnvironment) reads what the source stack runs
        # before promoting it: the subject names the prod environment in this account on purpose.
        specs.append(
            RoleSpec(
                purpose=VERIFY,
                role_name=naming.role_name(env, f"github-{VERIFY}"),
                subjects=(environment_subject(gh, gh.deploy_environment, naming.WORKFLOW_DEPLOY),),
                description=f"GitHub Actions on {gh.slug}, environment {gh.deploy_environment}: "
                f"read {env}'s Argo CD Applications",
                hub_access=HubAccessSpec(rbac.VERIFIER_GROUP, rbac.VERIFIER_ROLE, rbac.VERIFIER_VERBS),
            )
        )
    _refuse_shared_subjects(specs)
    return tuple(specs)


def _refuse_shared_subjects(specs: Sequence[RoleSpec]) -> None:
    # A job whose token opens two roles holds the union of both: with github.environment equal
    # to github.deployEnvironment, every prod deploy job could assume the admin `up` role, and
    # the deploy role's least privilege would mean nothing.
    owner: dict[str, str] = {}
    for spec in specs:
        for subject in spec.subjects:
            if subject in owner:
                raise ConfigError(
                    "platform:github",
                    subject,
                    f"this subject would open both the {owner[subject]} and the {spec.purpose} role; "
                    "give each role its own GitHub environment (github.environment must differ from "
                    "github.deployEnvironment) so a job gets only the role it needs",
                )
            owner[subject] = spec.purpose


def oidc_provider_arn(account_id: str) -> str:
    return f"arn:{PARTITION}:iam::{account_id}:oidc-provider/{GITHUB_OIDC_HOST}"


def existing_provider_arn(config: StackConfig) -> str | None:
    """The configured existing provider's ARN, refused when it belongs to another account."""
    arn = config.github.existing_oidc_provider_arn
    if arn is not None and arn != oidc_provider_arn(config.account_id):
        raise ConfigError(
            "platform:github.oidcProviderArn",
            arn,
            f"expected the GitHub provider of this stack's account: {oidc_provider_arn(config.account_id)}",
        )
    return arn


# ---------------------------------------------------------------------------------------------
# Trust
# ---------------------------------------------------------------------------------------------


def trust_policy(provider_arn: str, subjects: Sequence[str], sid: str = "GitHubActions") -> dict[str, Any]:
    """Trust GitHub's tokens for exactly ``subjects``.

    Exact subjects are matched with StringEquals (no wildcard can match); a pull-request subject
    (:func:`pull_request_subject`, whose only wildcard is the pull request's number) goes into a
    statement of its own with StringLike, since IAM ANDs the operators of one statement.
    """
    if not subjects:
        raise ValueError("a GitHub role needs at least one subject; an empty list would trust none")
    exact = sorted({s for s in subjects if "*" not in s})
    patterns = sorted({s for s in subjects if "*" in s})
    statements: list[dict[str, Any]] = []
    for operator, values, suffix in (("StringEquals", exact, ""), ("StringLike", patterns, "PullRequests")):
        if not values:
            continue
        condition: dict[str, Any] = {"StringEquals": {AUD_KEY: STS_AUDIENCE}}
        condition.setdefault(operator, {})[SUB_KEY] = values
        statements.append(
            {
                "Sid": sid + suffix if exact and patterns else sid,
                "Effect": "Allow",
                "Principal": {"Federated": provider_arn},
                "Action": ASSUME_ACTION,
                "Condition": condition,
            }
        )
    doc = {"Version": POLICY_VERSION, "Statement": statements}
    assert_exact_subjects(doc)
    return doc


_NAME = r"[A-Za-z0-9][A-Za-z0-9._-]*"
_ID = r"[1-9][0-9]*"
_VALUE = r"[^\s*?:$]+"
_WORKFLOW_REF = rf"{_NAME}/{_NAME}/\.github/workflows/{_NAME}@"
EXACT_SUBJECT_RE = re.compile(
    rf"^repo:{_NAME}(@{_ID})?/{_NAME}(@{_ID})?:"
    rf"(ref:refs/(heads|tags)/{_VALUE}|environment:{_VALUE})"
    rf":job_workflow_ref:{_WORKFLOW_REF}refs/(heads|tags)/{_VALUE}$"
)
# The one wildcard subject: a pull request's number (see PULL_REQUEST_REF).
PULL_REQUEST_SUBJECT_RE = re.compile(
    rf"^repo:{_NAME}(@{_ID})?/{_NAME}(@{_ID})?:pull_request"
    rf":job_workflow_ref:{_WORKFLOW_REF}refs/pull/\*/merge$"
)


def _as_list(value: Any) -> list[Any]:
    return list(value) if isinstance(value, list | tuple) else [value]


def _github_keys(block: Any) -> list[str]:
    if not isinstance(block, Mapping):
        return []
    return [k for k in block if isinstance(k, str) and k.lower().startswith(GITHUB_OIDC_HOST + ":")]


def _is_github_statement(statement: Mapping[str, Any]) -> bool:
    principal = statement.get("Principal")
    federated = principal.get("Federated") if isinstance(principal, Mapping) else None
    if any(isinstance(f, str) and f.endswith(GITHUB_OIDC_HOST) for f in _as_list(federated)):
        return True
    condition = statement.get("Condition")
    return isinstance(condition, Mapping) and any(_github_keys(b) for b in condition.values())


def assert_exact_subjects(doc: Mapping[str, Any], expected_prefix: str | None = None) -> list[str]:
    """Refuse a trust policy that lets GitHub workflows other than exactly named ones in.

    For every statement trusting GitHub's provider: it allows only ``AssumeRoleWithWebIdentity``;
    it pins ``aud`` to ``sts.amazonaws.com`` with ``StringEquals``; and it pins ``sub`` to a
    non-empty list of subjects that each name one repository, one context and one workflow file
    (``repo:OWNER/REPO:<context>:job_workflow_ref:OWNER/REPO/.github/workflows/<file>@<ref>``, or
    ``repo:OWNER@ID/REPO@ID:...``), each under ``expected_prefix`` when given. ``sub`` uses
    ``StringEquals`` with no wildcard or policy variable, except a pull-request subject, which
    uses ``StringLike`` with the pull request's number as its only wildcard. No other operator
    (``ForAnyValue:``, ``IgnoreCase``, ...) touches a GitHub claim. Returns the subjects checked.
    """
    statements = _as_list(doc.get("Statement", []))
    subjects: list[str] = []
    for index, statement in enumerate(statements):
        if not isinstance(statement, Mapping) or not _is_github_statement(statement):
            continue
        where = f"Statement[{index}] ({statement.get('Sid', 'no Sid')})"
        if statement.get("Effect") != "Allow":
            continue  # a Deny can only narrow who gets in
        actions = _as_list(statement.get("Action"))
        if actions != [ASSUME_ACTION]:
            raise UnsafeTrustPolicy(f"{where}: expected Action {ASSUME_ACTION} only, got {actions}")
        if "NotPrincipal" in statement or "NotAction" in statement:
            raise UnsafeTrustPolicy(f"{where}: NotPrincipal/NotAction widen a GitHub trust")
        condition = statement.get("Condition")
        if not isinstance(condition, Mapping):
            raise UnsafeTrustPolicy(f"{where}: no Condition; every GitHub repository could assume it")
        # Condition keys are case-insensitive in IAM: compare them that way.
        blocks = {
            str(op): {str(k).lower(): v for k, v in block.items()}
            for op, block in condition.items()
            if isinstance(block, Mapping)
        }
        for operator, block in blocks.items():
            keys = _github_keys(block)
            if not keys or operator == "StringEquals":
                continue
            if operator != "StringLike" or keys != [SUB_KEY]:
                raise UnsafeTrustPolicy(
                    f"{where}: {operator} on {keys}; GitHub claims must use StringEquals "
                    f"(StringLike only for a pull request's {SUB_KEY})"
                )
        equals = blocks.get("StringEquals")
        if equals is None:
            raise UnsafeTrustPolicy(f"{where}: expected StringEquals on {AUD_KEY} and {SUB_KEY}")
        if _as_list(equals.get(AUD_KEY)) != [STS_AUDIENCE]:
            raise UnsafeTrustPolicy(
                f"{where}: expected {AUD_KEY} = {STS_AUDIENCE}, got {equals.get(AUD_KEY)}"
            )
        exact = _as_list(equals[SUB_KEY]) if SUB_KEY in equals else []
        like = _as_list(blocks["StringLike"][SUB_KEY]) if SUB_KEY in blocks.get("StringLike", {}) else []
        if exact and like:
            raise UnsafeTrustPolicy(f"{where}: StringEquals and StringLike on {SUB_KEY} in one statement")
        if not exact and not like:
            raise UnsafeTrustPolicy(f"{where}: no {SUB_KEY}; every GitHub repository could assume it")
        for sub in like:
            if not isinstance(sub, str) or not PULL_REQUEST_SUBJECT_RE.match(sub):
                raise UnsafeTrustPolicy(
                    f"{where}: StringLike {sub!r}; the only wildcard a GitHub subject may hold is a "
                    "pull request's number (...:pull_request:job_workflow_ref:.../<file>@refs/pull/*/merge)"
                )
        for sub in exact:
            if not isinstance(sub, str) or not EXACT_SUBJECT_RE.match(sub):
                raise UnsafeTrustPolicy(f"{where}: {sub!r} is not one exact GitHub subject of one workflow")
        for sub in exact + like:
            if expected_prefix is not None and not sub.startswith(expected_prefix + ":"):
                raise UnsafeTrustPolicy(f"{where}: {sub!r} is not a subject of {expected_prefix}")
        subjects.extend(exact + like)
    return subjects


# ---------------------------------------------------------------------------------------------
# Permissions
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class PolicyContext:
    """The values permission documents are built from, resolved."""

    account_id: str
    environment: str
    hub_region: str
    hub_cluster_name: str
    ecr_region: str
    ecr_prefix: str
    ecr_kms_key_arn: str | None = None


def policy_context(
    config: StackConfig, hub_cluster_name: str | None = None, ecr_kms_key_arn: str | None = None
) -> PolicyContext:
    return PolicyContext(
        account_id=config.account_id,
        environment=config.environment,
        hub_region=config.hub_region,
        hub_cluster_name=hub_cluster_name or naming.cluster_name(config.environment, config.hub_region),
        ecr_region=config.ecr.primary_region,
        ecr_prefix=config.ecr.prefix,
        ecr_kms_key_arn=ecr_kms_key_arn,
    )


def ecr_repositories_arn(account_id: str, region: str, prefix: str) -> str:
    return f"arn:{PARTITION}:ecr:{region}:{account_id}:repository/{prefix}/*"


def ecr_push_policy(
    account_id: str, region: str, prefix: str, kms_key_arn: str | None = None
) -> dict[str, Any]:
    """Log in to ECR and push to this project's repositories in the primary region, nothing else.

    Other regions (and prod's registry) receive images by replication, never by a push.
    """
    statements: list[dict[str, Any]] = [
        # GetAuthorizationToken has no resource-level permission: it must be "*".
        {"Sid": "EcrLogin", "Effect": "Allow", "Action": ["ecr:GetAuthorizationToken"], "Resource": "*"},
        {
            "Sid": "EcrPushProjectRepositories",
            "Effect": "Allow",
            "Action": list(ECR_PUSH_ACTIONS),
            "Resource": ecr_repositories_arn(account_id, region, prefix),
        },
    ]
    if kms_key_arn is not None:
        # The repositories' customer-managed key, usable only through ECR in that region:
        # https://docs.aws.amazon.com/kms/latest/developerguide/conditions-kms.html#conditions-kms-via-service
        statements.append(
            {
                "Sid": "EcrKeyThroughEcrOnly",
                "Effect": "Allow",
                "Action": list(ECR_KMS_ACTIONS),
                "Resource": kms_key_arn,
                "Condition": {"StringEquals": {"kms:ViaService": f"ecr.{region}.amazonaws.com"}},
            }
        )
    return {"Version": POLICY_VERSION, "Statement": statements}


def eks_cluster_arn(account_id: str, region: str, cluster_name: str) -> str:
    return f"arn:{PARTITION}:eks:{region}:{account_id}:cluster/{cluster_name}"


def describe_cluster_policy(account_id: str, region: str, cluster_name: str) -> dict[str, Any]:
    """All `aws eks update-kubeconfig` needs; what the role may do inside is Kubernetes RBAC."""
    return {
        "Version": POLICY_VERSION,
        "Statement": [
            {
                "Sid": "DescribeHubCluster",
                "Effect": "Allow",
                "Action": ["eks:DescribeCluster"],
                "Resource": eks_cluster_arn(account_id, region, cluster_name),
            }
        ],
    }


def preview_guard_policy(account_id: str) -> dict[str, Any]:
    """Explicit denies on top of ViewOnlyAccess: the preview role never reads a secret or data."""
    return {
        "Version": POLICY_VERSION,
        "Statement": [
            {
                "Sid": "NoDataReads",
                "Effect": "Deny",
                "Action": list(DATA_READ_ACTIONS),
                "Resource": "*",
            },
            {
                "Sid": "NoSecretReads",
                "Effect": "Deny",
                "Action": list(SECRET_READ_ACTIONS),
                "Resource": "*",
            },
            {
                "Sid": "NoAccountParameterReads",
                "Effect": "Deny",
                "Action": list(SSM_PARAMETER_READ_ACTIONS),
                "Resource": f"arn:{PARTITION}:ssm:*:{account_id}:parameter/*",
            },
        ],
    }


def boundary_policy_name(environment: str) -> str:
    return naming.role_name(environment, f"github-{UP}-boundary")


def up_boundary_policy(account_id: str, environment: str) -> dict[str, Any]:
    """The permissions boundary of the up role.

    AdministratorAccess is what building this platform takes (VPCs, EKS, IAM roles for clusters,
    nodes and controllers, ECR, KMS). The boundary keeps three things out of a CI job's reach:
    minting long-lived IAM credentials, loosening its own boundary, and the organization. It is
    a guardrail, not a wall: an administrator can create a new role without a boundary and
    assume it. Changing the boundary itself therefore takes a human admin's `pulumi up`.
    https://docs.aws.amazon.com/IAM/latest/UserGuide/access_policies_boundaries.html
    """
    up_role_arn = f"arn:{PARTITION}:iam::{account_id}:role/{naming.role_name(environment, f'github-{UP}')}"
    boundary_arn = f"arn:{PARTITION}:iam::{account_id}:policy/{boundary_policy_name(environment)}"
    return {
        "Version": POLICY_VERSION,
        "Statement": [
            {"Sid": "BuildThePlatform", "Effect": "Allow", "Action": "*", "Resource": "*"},
            {
                "Sid": "NoLongLivedCredentials",
                "Effect": "Deny",
                "Action": list(LONG_LIVED_CREDENTIAL_ACTIONS),
                "Resource": "*",
            },
            {
                "Sid": "KeepOwnBoundary",
                "Effect": "Deny",
                "Action": list(BOUNDARY_TAMPER_ROLE_ACTIONS),
                "Resource": up_role_arn,
            },
            {
                "Sid": "KeepBoundaryDocument",
                "Effect": "Deny",
                "Action": list(BOUNDARY_TAMPER_POLICY_ACTIONS),
                "Resource": boundary_arn,
            },
            {"Sid": "NoOrganizationChanges", "Effect": "Deny", "Action": "organizations:*", "Resource": "*"},
        ],
    }


def inline_policy(spec: RoleSpec, ctx: PolicyContext) -> dict[str, Any] | None:
    """The one inline permission document of ``spec``'s role (None for purely managed roles)."""
    if spec.purpose == PUSH:
        return ecr_push_policy(ctx.account_id, ctx.ecr_region, ctx.ecr_prefix, ctx.ecr_kms_key_arn)
    if spec.purpose == PREVIEW:
        return preview_guard_policy(ctx.account_id)
    if spec.purpose in (DEPLOY, VERIFY):
        return describe_cluster_policy(ctx.account_id, ctx.hub_region, ctx.hub_cluster_name)
    return None
