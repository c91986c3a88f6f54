"""IAM rules: exact GitHub OIDC trusts, no ``*`` on ``*``, no image push role in prod.

The pack reads the JSON documents the program hands the AWS provider (``assumeRolePolicy``,
``policy``, ``inlinePolicies[].policy``). Documents still unknown during a first preview (a trust
that embeds the ARN of an OIDC provider created in the same update) are judged once known.
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Iterator, Mapping
from typing import Any

from policies.engine import (
    Finding,
    ResourceView,
    Rule,
    StackView,
    as_list,
    is_unknown,
    parse_json,
    refers_to,
    resource_rule,
    stack_rule,
)

ROLE = "aws:iam/role:Role"
POLICY = "aws:iam/policy:Policy"
ROLE_POLICY = "aws:iam/rolePolicy:RolePolicy"
USER_POLICY = "aws:iam/userPolicy:UserPolicy"
GROUP_POLICY = "aws:iam/groupPolicy:GroupPolicy"
ATTACHMENTS = (
    "aws:iam/rolePolicyAttachment:RolePolicyAttachment",
    "aws:iam/userPolicyAttachment:UserPolicyAttachment",
    "aws:iam/groupPolicyAttachment:GroupPolicyAttachment",
    "aws:iam/policyAttachment:PolicyAttachment",
)
ROLE_POLICY_ATTACHMENT = ATTACHMENTS[0]

GITHUB_HOST = "token.actions.githubusercontent.com"
AUD_KEY = f"{GITHUB_HOST}:aud"
SUB_KEY = f"{GITHUB_HOST}:sub"
WEB_IDENTITY = "sts:AssumeRoleWithWebIdentity"
# repo:OWNER/REPO:<context> or, with immutable subjects, repo:OWNER@ID/REPO@ID:<context>:
# https://docs.github.com/en/actions/reference/security/oidc#example-subject-claims
_SUBJECT_RE = re.compile(
    r"^repo:(?P<owner>[A-Za-z0-9][A-Za-z0-9-]*)(?:@[0-9]+)?/(?P<repo>[A-Za-z0-9._-]+?)(?:@[0-9]+)?:(?P<context>.+)$"
)
_WILDCARDS = ("*", "?")
# The one wildcard a GitHub trust may hold: the number of a pull request, whose job runs the
# workflow at refs/pull/<number>/merge when the repository's subject template carries
# job_workflow_ref (infra.documents.iam.PULL_REQUEST_REF).
# https://docs.github.com/en/actions/reference/security/oidc#customizing-the-subject-claims-for-an-organization-or-repository
_PULL_REQUEST_RE = re.compile(
    r"^repo:[A-Za-z0-9][A-Za-z0-9-]*(?:@[0-9]+)?/[A-Za-z0-9._-]+?(?:@[0-9]+)?:pull_request"
    r":job_workflow_ref:[A-Za-z0-9][A-Za-z0-9._/-]*/\.github/workflows/[A-Za-z0-9._-]+@refs/pull/\*/merge$"
)

# What `docker push` needs beyond reading:
# https://docs.aws.amazon.com/AmazonECR/latest/userguide/image-push-iam.html
ECR_PUSH_ACTIONS: tuple[str, ...] = (
    "ecr:PutImage",
    "ecr:InitiateLayerUpload",
    "ecr:UploadLayerPart",
    "ecr:CompleteLayerUpload",
)
# AWS managed policies that include those actions.
ECR_PUSH_MANAGED_POLICIES: tuple[str, ...] = (
    "AmazonEC2ContainerRegistryPowerUser",
    "AmazonEC2ContainerRegistryFullAccess",
    "EC2InstanceProfileForImageBuilderECRContainerBuilds",
)


def statements(document: Any) -> list[Mapping[str, Any]]:
    if not isinstance(document, Mapping):
        return []
    return [s for s in as_list(document.get("Statement")) if isinstance(s, Mapping)]


def _sid(statement: Mapping[str, Any], index: int) -> str:
    sid = statement.get("Sid")
    return str(sid) if sid else f"statement {index}"


# --- iam-github-trust-exact-subject ------------------------------------------------------------


def _is_github(statement: Mapping[str, Any]) -> bool:
    principal = statement.get("Principal")
    federated = as_list(principal.get("Federated")) if isinstance(principal, Mapping) else []
    if any(isinstance(f, str) and GITHUB_HOST in f for f in federated):
        return True
    conditions = statement.get("Condition")
    if isinstance(conditions, Mapping):
        return any(
            isinstance(keys, Mapping) and any(str(k).startswith(f"{GITHUB_HOST}:") for k in keys)
            for keys in conditions.values()
        )
    return False


def _condition_values(statement: Mapping[str, Any], key: str) -> Iterator[tuple[str, list[Any]]]:
    conditions = statement.get("Condition")
    if not isinstance(conditions, Mapping):
        return
    for operator, keys in conditions.items():
        if isinstance(keys, Mapping) and key in keys:
            yield str(operator), as_list(keys[key])


def github_trust_problems(document: Any) -> list[str]:
    """What makes a trust policy open a role to more than exact subjects of one repository."""
    problems: list[str] = []
    repositories: set[str] = set()
    for i, statement in enumerate(statements(document)):
        if statement.get("Effect") != "Allow" or not _is_github(statement):
            continue
        sid = _sid(statement, i)
        auds = list(_condition_values(statement, AUD_KEY))
        exact_auds = [v for op, values in auds if op == "StringEquals" for v in values]
        if not exact_auds:
            problems.append(f"{sid} does not require {AUD_KEY} with StringEquals")
        elif any(not isinstance(v, str) or any(w in v for w in _WILDCARDS) for v in exact_auds):
            problems.append(f"{sid} accepts a wildcard audience")
        subs = list(_condition_values(statement, SUB_KEY))
        for operator, values in subs:
            pull_requests = operator == "StringLike" and all(
                isinstance(v, str) and _PULL_REQUEST_RE.match(v) for v in values
            )
            if operator != "StringEquals" and not pull_requests:
                problems.append(f"{sid} matches {SUB_KEY} with {operator} instead of StringEquals")
            wild = [str(v) for v in values if any(w in str(v) for w in _WILDCARDS)]
            if wild and not pull_requests:
                problems.append(f"{sid} trusts the wildcard subject {', '.join(wild)}")
        exact = [
            v
            for op, values in subs
            for v in values
            if op == "StringEquals" or (op == "StringLike" and _PULL_REQUEST_RE.match(str(v)))
        ]
        if not exact:
            problems.append(f"{sid} does not require an exact {SUB_KEY}")
        for subject in exact:
            text = str(subject)
            if any(w in text for w in _WILDCARDS) and not _PULL_REQUEST_RE.match(text):
                continue
            match = _SUBJECT_RE.match(text)
            if not match:
                problems.append(f"{sid} trusts {text}, which is not repo:OWNER/REPO:<context>")
                continue
            repositories.add(f"{match['owner']}/{match['repo']}".lower())
    if len(repositories) > 1:
        problems.append(
            f"the trust spans {len(repositories)} repositories ({', '.join(sorted(repositories))})"
        )
    return problems


def _github_trust(view: ResourceView) -> list[str]:
    if view.type != ROLE:
        return []
    document = parse_json(view.get("assumeRolePolicy"))
    if is_unknown(document):
        return []
    problems = github_trust_problems(document)
    if not problems:
        return []
    name = view.get("name")
    return [
        f"IAM role {name if isinstance(name, str) else view.name} trusts GitHub Actions too broadly "
        f"({'; '.join(problems)}); require StringEquals on {AUD_KEY} (sts.amazonaws.com) and on "
        f"{SUB_KEY} with exact subjects of one repository, such as repo:OWNER/REPO:environment:prod."
    ]


# --- iam-no-star-on-star -----------------------------------------------------------------------


def _documents(view: ResourceView) -> list[tuple[str, Any]]:
    """(label, parsed document) of every permission document a resource carries."""
    if view.type in (POLICY, ROLE_POLICY, USER_POLICY, GROUP_POLICY):
        return [(view.name, parse_json(view.get("policy")))]
    if view.type == ROLE:
        inline = view.get("inlinePolicies")
        if not isinstance(inline, list):
            return []
        return [
            (f"{view.name} inline {p.get('name') or i}", parse_json(p.get("policy")))
            for i, p in enumerate(inline)
            if isinstance(p, Mapping)
        ]
    return []


def _star_on_star(statement: Mapping[str, Any]) -> bool:
    if statement.get("Effect") != "Allow":
        return False
    actions = [str(a) for a in as_list(statement.get("Action"))]
    resources = [str(r) for r in as_list(statement.get("Resource"))]
    return any(a in ("*", "*:*") for a in actions) and "*" in resources


def _boundary_only(policy: ResourceView, stack: StackView) -> bool:
    """A managed policy used only as a permissions boundary grants nothing by itself: a boundary
    caps what identity policies grant. https://docs.aws.amazon.com/IAM/latest/UserGuide/access_policies_boundaries.html"""
    principals = stack.of_type(ROLE, "aws:iam/user:User")
    as_boundary = any(refers_to(p, "permissionsBoundary", policy, "arn") for p in principals)
    attached = any(refers_to(a, "policyArn", policy, "arn") for a in stack.of_type(*ATTACHMENTS))
    return as_boundary and not attached


def _no_star(stack: StackView) -> list[Finding]:
    findings = []
    for view in stack.resources:
        if view.type == POLICY and _boundary_only(view, stack):
            continue
        for label, document in _documents(view):
            for i, statement in enumerate(statements(document)):
                if _star_on_star(statement):
                    findings.append(
                        Finding(
                            f"IAM policy {label} ({_sid(statement, i)}) allows every action on every resource; "
                            "name the actions and resources it needs (an AWS managed policy attached by ARN, "
                            "or a permissions boundary, is the place for broad grants).",
                            view.urn,
                        )
                    )
    return findings


# --- iam-no-push-role-in-prod ------------------------------------------------------------------


def push_actions(document: Any) -> list[str]:
    """The ECR push actions a permission document allows, wildcards expanded."""
    found: list[str] = []
    for statement in statements(document):
        if statement.get("Effect") != "Allow":
            continue
        for pattern in as_list(statement.get("Action")):
            for action in ECR_PUSH_ACTIONS:
                if fnmatch.fnmatchcase(action.lower(), str(pattern).lower()) and action not in found:
                    found.append(action)
    return found


def _role_grants(role: ResourceView, stack: StackView) -> list[str]:
    """What lets ``role`` push images: inline, role policies, attached customer or AWS policies."""
    reasons: list[str] = []
    for label, document in _documents(role):
        actions = push_actions(document)
        if actions:
            reasons.append(f"{label} allows {', '.join(actions)}")
    for rp in stack.of_type(ROLE_POLICY):
        if refers_to(rp, "role", role, "name", "id"):
            actions = push_actions(parse_json(rp.get("policy")))
            if actions:
                reasons.append(f"role policy {rp.name} allows {', '.join(actions)}")
    managed = [str(a) for a in as_list(role.get("managedPolicyArns")) if isinstance(a, str)]
    for attachment in stack.of_type(ROLE_POLICY_ATTACHMENT):
        if not refers_to(attachment, "role", role, "name", "id"):
            continue
        arn = attachment.get("policyArn")
        if isinstance(arn, str):
            managed.append(arn)
        for policy in stack.of_type(POLICY):
            if refers_to(attachment, "policyArn", policy, "arn"):
                actions = push_actions(parse_json(policy.get("policy")))
                if actions:
                    reasons.append(f"attached policy {policy.name} allows {', '.join(actions)}")
    for arn in managed:
        if arn.rsplit("/", 1)[-1] in ECR_PUSH_MANAGED_POLICIES:
            reasons.append(f"the AWS managed policy {arn.rsplit('/', 1)[-1]} is attached")
    return reasons


def _no_push_role(stack: StackView) -> list[Finding]:
    findings = []
    for role in stack.of_type(ROLE):
        name = role.get("name")
        shown = name if isinstance(name, str) else role.name
        reasons = _role_grants(role, stack)
        if isinstance(name, str) and name.endswith("-github-push"):
            reasons.insert(0, "it is named as the GitHub push role")
        if reasons:
            findings.append(
                Finding(
                    f"Prod IAM role {shown} can push images ({'; '.join(reasons)}); prod receives images only "
                    "by replication from staging, so remove the role or its ECR push permissions "
                    "(platform:registryRole replica).",
                    role.urn,
                )
            )
    return findings


# --- iam-github-trust-names-workflow -----------------------------------------------------------

# GitHub creates an environment, unprotected, the first time any workflow names it; a subject
# that carries the workflow (repository subject template repo, context, job_workflow_ref) is what
# ties a role to the workflow meant to use it.
# https://docs.github.com/en/actions/reference/security/oidc#customizing-the-subject-claims-for-an-organization-or-repository
_WORKFLOW_SUBJECT_RE = re.compile(r":job_workflow_ref:[^:]+/\.github/workflows/[A-Za-z0-9._-]+@refs/[^:]+$")


def _github_trust_names_workflow(view: ResourceView) -> list[str]:
    if view.type != ROLE:
        return []
    document = parse_json(view.get("assumeRolePolicy"))
    if is_unknown(document):
        return []
    unbound: list[str] = []
    for statement in statements(document):
        if statement.get("Effect") != "Allow" or not _is_github(statement):
            continue
        for _operator, values in _condition_values(statement, SUB_KEY):
            unbound.extend(str(v) for v in values if not _WORKFLOW_SUBJECT_RE.search(str(v)))
    if not unbound:
        return []
    name = view.get("name")
    return [
        f"IAM role {name if isinstance(name, str) else view.name} trusts GitHub subjects that name no "
        f"workflow ({', '.join(sorted(unbound))}); any workflow naming the same environment or branch "
        "would get it. Set the repository's OIDC subject template to repo, context, job_workflow_ref "
        "and trust ...:job_workflow_ref:OWNER/REPO/.github/workflows/<file>@<ref>."
    ]


_DOC_GITHUB = (
    "https://docs.github.com/en/actions/how-tos/secure-your-work/security-harden-deployments/oidc-in-aws"
)

RULES: tuple[Rule, ...] = (
    resource_rule(
        "iam-github-trust-exact-subject",
        "iam",
        "Every GitHub OIDC trust requires the audience and exact subjects of one repository.",
        "mandatory",
        _github_trust,
        resource_types=(ROLE,),
        url=_DOC_GITHUB,
    ),
    resource_rule(
        "iam-github-trust-names-workflow",
        "iam",
        "Every GitHub OIDC trust names the workflow file (job_workflow_ref) that may use the role.",
        "mandatory",
        _github_trust_names_workflow,
        resource_types=(ROLE,),
        url="https://docs.github.com/en/actions/reference/security/oidc#customizing-the-subject-claims-for-an-organization-or-repository",
    ),
    stack_rule(
        "iam-no-star-on-star",
        "iam",
        'No policy statement allows action "*" on resource "*" (permissions boundaries aside).',
        "mandatory",
        _no_star,
        resource_types=(POLICY, ROLE_POLICY, ROLE, USER_POLICY, GROUP_POLICY),
        url="https://docs.aws.amazon.com/IAM/latest/UserGuide/best-practices.html#grant-least-privilege",
    ),
    stack_rule(
        "iam-no-push-role-in-prod",
        "iam",
        "No IAM role in prod can push images to ECR.",
        "mandatory",
        _no_push_role,
        applies_to="prod",
        resource_types=(ROLE, ROLE_POLICY, ROLE_POLICY_ATTACHMENT, POLICY),
        url="https://docs.aws.amazon.com/AmazonECR/latest/userguide/image-push-iam.html",
    ),
)
