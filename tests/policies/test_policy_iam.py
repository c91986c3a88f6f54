"""IAM rules: GitHub OIDC trusts, no * on *, no push role in prod."""

from __future__ import annotations

import json
from typing import Any

import pytest

from infra.documents import iam as iam_documents
from policies import iam
from policies.engine import UNKNOWN, Finding
from tests.policies.support import check, check_stack, doc, stack, tags, view

ACCOUNT = "444455556666"
PROVIDER = f"arn:aws:iam::{ACCOUNT}:oidc-provider/token.actions.githubusercontent.com"
AUD = "token.actions.githubusercontent.com:aud"
SUB = "token.actions.githubusercontent.com:sub"
ADVICE = (
    f"require StringEquals on {AUD} (sts.amazonaws.com) and on {SUB} with exact subjects of one repository, "
    "such as repo:OWNER/REPO:environment:prod."
)


def github_statement(
    subjects: Any = None, operator: str = "StringEquals", aud: Any = "sts.amazonaws.com"
) -> dict[str, Any]:
    condition: dict[str, Any] = {"StringEquals": {}}
    if aud is not None:
        condition["StringEquals"][AUD] = aud
    if subjects is not None:
        condition.setdefault(operator, {})[SUB] = subjects
    return {
        "Sid": "GitHubActionsUp",
        "Effect": "Allow",
        "Principal": {"Federated": PROVIDER},
        "Action": "sts:AssumeRoleWithWebIdentity",
        "Condition": condition,
    }


def role(trust: Any, name: str = "platform-prod-github-up", resource: str = "github-up", **extra: Any) -> Any:
    props = {"name": name, "assumeRolePolicy": trust, "tags": tags(), **extra}
    return view(iam.ROLE, resource, props)


def trust_messages(*statements: dict[str, Any]) -> list[str]:
    return check("iam-github-trust-exact-subject", role(doc(*statements)))


# --- GitHub trust ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "subjects",
    [
        ["repo:acme/platform:environment:prod"],
        "repo:acme/platform:pull_request",
        [
            "repo:acme/platform:ref:refs/heads/deploy/staging",
            "repo:acme/platform:ref:refs/heads/deploy/debug",
        ],
        ["repo:acme@1234/platform@5678:environment:prod"],
    ],
)
def test_exact_subjects_of_one_repository_pass(subjects: Any) -> None:
    assert trust_messages(github_statement(subjects)) == []


def test_the_trust_documents_the_program_builds_pass() -> None:
    from infra.config import load_stack_file

    for name in ("staging", "prod"):
        config = load_stack_file(name)
        for spec in iam_documents.role_specs(config):
            document = iam_documents.trust_policy(PROVIDER, spec.subjects)
            assert iam.github_trust_problems(document) == [], spec.purpose


def test_wildcard_repository_subject_is_refused() -> None:
    assert trust_messages(github_statement(["repo:acme/*:environment:prod"], operator="StringLike")) == [
        "IAM role platform-prod-github-up trusts GitHub Actions too broadly (GitHubActionsUp matches "
        f"{SUB} with StringLike instead of StringEquals; GitHubActionsUp trusts the wildcard subject "
        f"repo:acme/*:environment:prod; GitHubActionsUp does not require an exact {SUB}); " + ADVICE
    ]


def test_wildcard_owner_subject_under_string_equals_is_refused() -> None:
    assert trust_messages(github_statement(["repo:*/platform:ref:refs/heads/main"])) == [
        "IAM role platform-prod-github-up trusts GitHub Actions too broadly (GitHubActionsUp trusts the "
        "wildcard subject repo:*/platform:ref:refs/heads/main); " + ADVICE
    ]


def test_missing_subject_is_refused() -> None:
    assert trust_messages(github_statement(None)) == [
        "IAM role platform-prod-github-up trusts GitHub Actions too broadly (GitHubActionsUp does not require "
        f"an exact {SUB}); " + ADVICE
    ]


def test_missing_audience_is_refused() -> None:
    assert trust_messages(github_statement(["repo:acme/platform:pull_request"], aud=None)) == [
        "IAM role platform-prod-github-up trusts GitHub Actions too broadly (GitHubActionsUp does not require "
        f"{AUD} with StringEquals); " + ADVICE
    ]


def test_two_repositories_in_one_trust_are_refused() -> None:
    subjects = ["repo:acme/platform:pull_request", "repo:acme/other:pull_request"]
    assert trust_messages(github_statement(subjects)) == [
        "IAM role platform-prod-github-up trusts GitHub Actions too broadly (the trust spans 2 repositories "
        "(acme/other, acme/platform)); " + ADVICE
    ]


def test_subject_that_is_not_a_repository_is_refused() -> None:
    assert trust_messages(github_statement(["repository_owner:acme"])) == [
        "IAM role platform-prod-github-up trusts GitHub Actions too broadly (GitHubActionsUp trusts "
        "repository_owner:acme, which is not repo:OWNER/REPO:<context>); " + ADVICE
    ]


def test_non_github_trusts_and_unknown_documents_are_not_judged() -> None:
    service = {"Effect": "Allow", "Principal": {"Service": "ec2.amazonaws.com"}, "Action": "sts:AssumeRole"}
    assert check("iam-github-trust-exact-subject", role(doc(service))) == []
    assert check("iam-github-trust-exact-subject", role(UNKNOWN)) == []
    # A role without a trust document is the provider's error, not a GitHub trust.
    assert check("iam-github-trust-exact-subject", view(iam.ROLE, "r", {"name": "x"})) == []


def test_trust_recognised_by_its_condition_keys_while_the_provider_arn_is_unknown() -> None:
    statement = github_statement(["repo:acme/*:pull_request"], operator="StringLike")
    statement["Principal"] = {"Federated": UNKNOWN}
    assert iam.github_trust_problems({"Statement": [statement]}) != []


# --- no * on * ---------------------------------------------------------------------------------

ADMIN = {"Sid": "Everything", "Effect": "Allow", "Action": "*", "Resource": "*"}
SCOPED = {"Sid": "Pull", "Effect": "Allow", "Action": ["ecr:BatchGetImage"], "Resource": "*"}


def test_scoped_statements_pass() -> None:
    policy = view(iam.ROLE_POLICY, "pull", {"role": "r", "policy": doc(SCOPED)})
    assert check_stack("iam-no-star-on-star", stack(policy)) == []


@pytest.mark.parametrize(
    ("type_", "props"),
    [
        (iam.ROLE_POLICY, {"role": "r", "policy": doc(ADMIN)}),
        (iam.POLICY, {"name": "admin", "policy": doc(ADMIN)}),
        (
            iam.ROLE,
            {
                "name": "r",
                "assumeRolePolicy": doc(),
                "inlinePolicies": [{"name": "all", "policy": doc(ADMIN)}],
            },
        ),
    ],
)
def test_star_on_star_is_refused_wherever_it_is_written(type_: str, props: dict[str, Any]) -> None:
    resource = view(type_, "admin", props)
    found = check_stack("iam-no-star-on-star", stack(resource))
    assert len(found) == 1 and found[0].urn == resource.urn
    assert found[0].message.endswith(
        "(Everything) allows every action on every resource; name the actions and resources it needs (an AWS "
        "managed policy attached by ARN, or a permissions boundary, is the place for broad grants)."
    )


def test_statement_missing_effect_or_resource_is_not_star_on_star() -> None:
    no_resource = {"Sid": "X", "Effect": "Allow", "Action": "*"}
    deny = {"Sid": "Y", "Effect": "Deny", "Action": "*", "Resource": "*"}
    policy = view(iam.ROLE_POLICY, "p", {"role": "r", "policy": doc(no_resource, deny)})
    assert check_stack("iam-no-star-on-star", stack(policy)) == []


def test_permissions_boundary_may_allow_star_but_not_once_attached() -> None:
    boundary = view(iam.POLICY, "github-up-boundary", {"name": "b", "policy": doc(ADMIN)})
    up = view(
        iam.ROLE,
        "github-up",
        {"name": "up", "assumeRolePolicy": doc(), "permissionsBoundary": UNKNOWN},
        deps={"permissionsBoundary": (boundary.urn,)},
    )
    assert check_stack("iam-no-star-on-star", stack(boundary, up)) == []
    attached = view(
        "aws:iam/rolePolicyAttachment:RolePolicyAttachment",
        "attach",
        {"role": "up", "policyArn": UNKNOWN},
        deps={"policyArn": (boundary.urn,)},
    )
    assert [f.urn for f in check_stack("iam-no-star-on-star", stack(boundary, up, attached))] == [
        boundary.urn
    ]
    # Not a boundary of anything: an ordinary policy.
    assert [f.urn for f in check_stack("iam-no-star-on-star", stack(boundary))] == [boundary.urn]


# --- no push role in prod ----------------------------------------------------------------------

PUSH = {
    "Sid": "EcrPush",
    "Effect": "Allow",
    "Action": ["ecr:PutImage", "ecr:InitiateLayerUpload", "ecr:UploadLayerPart", "ecr:CompleteLayerUpload"],
    "Resource": "arn:aws:ecr:us-west-2:444455556666:repository/shop/*",
}
PULL = {
    "Sid": "Pull",
    "Effect": "Allow",
    "Action": ["ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer"],
    "Resource": "*",
}


def prod_role(name: str = "platform-prod-github-deploy") -> Any:
    return role(
        doc(github_statement(["repo:acme/platform:environment:production"])), name=name, resource=name
    )


def role_policy(target: Any, *statements: dict[str, Any]) -> Any:
    return view(
        iam.ROLE_POLICY, f"{target.name}-policy", {"role": target.props["name"], "policy": doc(*statements)}
    )


def test_prod_roles_that_only_pull_pass() -> None:
    r = prod_role()
    assert check_stack("iam-no-push-role-in-prod", stack(r, role_policy(r, PULL))) == []


def test_prod_role_with_a_push_policy_is_refused() -> None:
    r = prod_role()
    assert check_stack("iam-no-push-role-in-prod", stack(r, role_policy(r, PULL, PUSH))) == [
        Finding(
            "Prod IAM role platform-prod-github-deploy can push images (role policy "
            "platform-prod-github-deploy-policy allows ecr:PutImage, ecr:InitiateLayerUpload, ecr:UploadLayerPart, "
            "ecr:CompleteLayerUpload); prod receives images only by replication from staging, so remove the "
            "role or its ECR push permissions (platform:registryRole replica).",
            r.urn,
        )
    ]


def test_push_granted_by_wildcard_inline_or_managed_policy_is_refused() -> None:
    inline = role(
        doc(),
        name="platform-prod-builder",
        resource="builder",
        inlinePolicies=[
            {"name": "ecr", "policy": doc({"Effect": "Allow", "Action": "ecr:*", "Resource": "*"})}
        ],
    )
    found = check_stack("iam-no-push-role-in-prod", stack(inline))
    assert len(found) == 1 and "builder inline ecr allows ecr:PutImage" in found[0].message
    managed = prod_role("platform-prod-nodes")
    attachment = view(
        iam.ROLE_POLICY_ATTACHMENT,
        "power",
        {
            "role": "platform-prod-nodes",
            "policyArn": "arn:aws:iam::aws:policy/AmazonEC2ContainerRegistryPowerUser",
        },
    )
    found = check_stack("iam-no-push-role-in-prod", stack(managed, attachment))
    assert [f.urn for f in found] == [managed.urn]
    assert "the AWS managed policy AmazonEC2ContainerRegistryPowerUser is attached" in found[0].message


def test_prod_push_role_is_refused_by_its_name_even_without_policies() -> None:
    r = prod_role("platform-prod-github-push")
    found = check_stack("iam-no-push-role-in-prod", stack(r))
    assert [f.message.split(";")[0] for f in found] == [
        "Prod IAM role platform-prod-github-push can push images (it is named as the GitHub push role)"
    ]


def test_policy_of_another_role_is_not_counted() -> None:
    r = prod_role()
    other = prod_role("platform-prod-other")
    assert (
        check_stack("iam-no-push-role-in-prod", stack(r, other, role_policy(other, PUSH)))[0].urn == other.urn
    )
    assert len(check_stack("iam-no-push-role-in-prod", stack(r, other, role_policy(other, PUSH)))) == 1


def test_staging_may_have_a_push_role() -> None:
    r = view(iam.ROLE, "github-push", {"name": "platform-staging-github-push"}, environment="staging")
    rp = view(
        iam.ROLE_POLICY,
        "p",
        {"role": "platform-staging-github-push", "policy": doc(PUSH)},
        environment="staging",
    )
    assert check_stack("iam-no-push-role-in-prod", stack(r, rp, environment="staging")) == []


def test_push_actions_expand_wildcards() -> None:
    assert iam.push_actions({"Statement": [{"Effect": "Allow", "Action": "ecr:Put*"}]}) == ["ecr:PutImage"]
    assert iam.push_actions({"Statement": [{"Effect": "Allow", "Action": "*"}]}) == list(iam.ECR_PUSH_ACTIONS)
    assert iam.push_actions({"Statement": [{"Effect": "Deny", "Action": "*"}]}) == []
    assert iam.push_actions(json.loads(doc(PULL))) == []


# --- GitHub trust names the workflow (issue 15) --------------------------------------------------

WORKFLOW = ":job_workflow_ref:acme/platform/.github/workflows/up.yml@refs/heads/main"


def workflow_messages(*statements: dict[str, Any]) -> list[str]:
    return check("iam-github-trust-names-workflow", role(doc(*statements)))


def test_a_subject_with_the_workflow_passes() -> None:
    assert workflow_messages(github_statement([f"repo:acme/platform:environment:prod{WORKFLOW}"])) == []
    pull_request = "repo:acme/platform:pull_request:job_workflow_ref:acme/platform/.github/workflows/preview.yml@refs/pull/*/merge"
    assert workflow_messages(github_statement([pull_request], operator="StringLike")) == []


def test_a_subject_without_the_workflow_is_refused() -> None:
    # Any workflow that names the environment would get the role (GitHub creates the
    # environment, unprotected, the first time a workflow names it).
    [message] = workflow_messages(github_statement(["repo:acme/platform:environment:prod"]))
    assert "platform-prod-github-up" in message and "repo:acme/platform:environment:prod" in message
    assert "job_workflow_ref" in message


def test_every_role_the_program_builds_names_its_workflow() -> None:
    from infra.config import load_stack_file

    for name in ("staging", "prod"):
        for spec in iam_documents.role_specs(load_stack_file(name)):
            document = iam_documents.trust_policy(PROVIDER, spec.subjects)
            assert workflow_messages(*document["Statement"]) == [], spec.purpose
