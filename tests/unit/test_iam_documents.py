"""GitHub OIDC trust and permission documents (infra.documents.iam), without Pulumi.

Subjects are checked against the formats GitHub documents
(https://docs.github.com/en/actions/reference/security/oidc), written out literally here; the
permission documents are checked by evaluating them (a small model of IAM's Allow/Deny with
wildcards) against requests the role must and must not be able to make.
"""

from __future__ import annotations

import copy
import fnmatch
from collections.abc import Mapping
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from infra import config, naming
from infra.config import ConfigError, StackConfig
from infra.documents import iam
from infra.manifests import rbac
from tests.conftest import stack_config_map

OWNER_ID = "1234567"
REPO_ID = "987654321"


def load(flat: Mapping[str, Any], stack: str) -> StackConfig:
    return config.from_flat(config.as_pulumi_config(flat), stack)


def with_id_form(flat: dict[str, Any]) -> dict[str, Any]:
    out = copy.deepcopy(flat)
    out["platform:github"].update({"subjectForm": "id", "ownerId": OWNER_ID, "repositoryId": REPO_ID})
    return out


@pytest.fixture(params=["name", "id"])
def form(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def stack(name: str, form: str = "name") -> StackConfig:
    flat = stack_config_map(name)
    return load(with_id_form(flat) if form == "id" else flat, name)


def prefix(form: str) -> str:
    return "repo:acme/platform" if form == "name" else f"repo:acme@{OWNER_ID}/platform@{REPO_ID}"


# ---------------------------------------------------------------------------------------------
# A small model of IAM policy evaluation: explicit Deny wins, then any Allow, else implicit deny.
# Enough for Action/Resource with * and ? wildcards and StringEquals/StringLike conditions.
# ---------------------------------------------------------------------------------------------


def _matches(patterns: Any, value: str, case_insensitive: bool = False) -> bool:
    items = patterns if isinstance(patterns, list) else [patterns]
    if case_insensitive:
        return any(fnmatch.fnmatchcase(value.lower(), str(p).lower()) for p in items)
    return any(fnmatch.fnmatchcase(value, str(p)) for p in items)


def _conditions_hold(statement: Mapping[str, Any], context: Mapping[str, str]) -> bool:
    for operator, block in statement.get("Condition", {}).items():
        assert operator in ("StringEquals", "StringLike"), f"the model does not know {operator}"
        for key, wanted in block.items():
            values = wanted if isinstance(wanted, list) else [wanted]
            got = context.get(key)
            if got is None:
                return False
            # StringLike: * matches any run of characters (/ and : included), ? one character.
            # https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_elements_condition_operators.html#Conditions_String
            if operator == "StringEquals" and got not in values:
                return False
            if operator == "StringLike" and not any(fnmatch.fnmatchcase(got, str(v)) for v in values):
                return False
    return True


def decide(
    doc: Mapping[str, Any], action: str, resource: str, context: Mapping[str, str] | None = None
) -> str:
    context = context or {}
    applicable = [
        s
        for s in doc["Statement"]
        if _matches(s["Action"], action, case_insensitive=True)
        and _matches(s["Resource"], resource)
        and _conditions_hold(s, context)
    ]
    if any(s["Effect"] == "Deny" for s in applicable):
        return "Deny"
    return "Allow" if any(s["Effect"] == "Allow" for s in applicable) else "ImplicitDeny"


def allowed(
    doc: Mapping[str, Any], action: str, resource: str, context: Mapping[str, str] | None = None
) -> bool:
    return decide(doc, action, resource, context) == "Allow"


# ---------------------------------------------------------------------------------------------
# Subjects
# ---------------------------------------------------------------------------------------------


WF = "acme/platform/.github/workflows"


def test_name_form_subjects_are_githubs_documented_strings() -> None:
    # The repository's template repo, context, job_workflow_ref: the default subject, then the
    # workflow file and ref (https://docs.github.com/en/actions/reference/security/oidc).
    gh = stack("staging").github
    assert iam.branch_subject(gh, "deploy/staging") == (
        "repo:acme/platform:ref:refs/heads/deploy/staging"
        f":job_workflow_ref:{WF}/build-images.yml@refs/heads/deploy/staging"
    )
    assert iam.pull_request_subject(gh) == (
        f"repo:acme/platform:pull_request:job_workflow_ref:{WF}/preview.yml@refs/pull/*/merge"
    )
    assert iam.environment_subject(gh, "production", "deploy-prod.yml") == (
        f"repo:acme/platform:environment:production:job_workflow_ref:{WF}/deploy-prod.yml@refs/heads/main"
    )


def test_id_form_subjects_append_immutable_ids_with_at() -> None:
    # The ids change the repo claim only; job_workflow_ref names the workflow by path.
    gh = stack("staging", "id").github
    ids = f"repo:acme@{OWNER_ID}/platform@{REPO_ID}"
    assert iam.branch_subject(gh, "deploy/staging") == (
        f"{ids}:ref:refs/heads/deploy/staging:job_workflow_ref:{WF}/build-images.yml@refs/heads/deploy/staging"
    )
    assert iam.pull_request_subject(gh).startswith(f"{ids}:pull_request:job_workflow_ref:")
    assert iam.environment_subject(gh, "production", "up.yml") == (
        f"{ids}:environment:production:job_workflow_ref:{WF}/up.yml@refs/heads/main"
    )


def test_colons_in_metadata_are_escaped_as_github_does() -> None:
    gh = stack("prod").github
    assert iam.environment_subject(gh, "Production:V1", "up.yml").startswith(
        "repo:acme/platform:environment:Production%3AV1:job_workflow_ref:"
    )


def test_each_role_names_the_workflow_that_may_use_it() -> None:
    for name in ("staging", "prod"):
        for spec in iam.role_specs(stack(name)):
            workflow = {
                "push": "build-images.yml",
                "preview": "preview.yml",
                "up": "up.yml",
                "deploy": "deploy-prod.yml",
                "verify": "deploy-prod.yml",
            }[spec.purpose]
            for subject in spec.subjects:
                assert f":job_workflow_ref:{WF}/{workflow}@" in subject, (spec.purpose, subject)


# ---------------------------------------------------------------------------------------------
# Which roles each stack has, and whom each trusts
# ---------------------------------------------------------------------------------------------


def test_staging_roles_and_their_exact_subjects(form: str) -> None:
    cfg = stack("staging", form)
    specs = {s.purpose: s for s in iam.role_specs(cfg)}
    p = prefix(form)
    assert set(specs) == {"push", "preview", "up", "verify"}
    assert set(specs["push"].subjects) == {
        f"{p}:ref:refs/heads/{b}:job_workflow_ref:{WF}/build-images.yml@refs/heads/{b}"
        for b in ("deploy/staging", "deploy/debug")
    }
    assert specs["preview"].subjects == (
        f"{p}:pull_request:job_workflow_ref:{WF}/preview.yml@refs/pull/*/merge",
    )
    main = "@refs/heads/main"
    assert specs["up"].subjects == (
        f"{p}:environment:{cfg.github.environment}:job_workflow_ref:{WF}/up.yml{main}",
    )
    # The prod deploy job runs in the production environment and reads staging with this role.
    assert specs["verify"].subjects == (
        f"{p}:environment:production:job_workflow_ref:{WF}/deploy-prod.yml{main}",
    )


def test_prod_roles_and_their_exact_subjects(form: str) -> None:
    cfg = stack("prod", form)
    specs = {s.purpose: s for s in iam.role_specs(cfg)}
    p = prefix(form)
    assert set(specs) == {"preview", "up", "deploy"}
    main = "@refs/heads/main"
    assert specs["preview"].subjects == (
        f"{p}:pull_request:job_workflow_ref:{WF}/preview.yml@refs/pull/*/merge",
    )
    assert specs["up"].subjects == (
        f"{p}:environment:{cfg.github.environment}:job_workflow_ref:{WF}/up.yml{main}",
    )
    assert specs["deploy"].subjects == (
        f"{p}:environment:production:job_workflow_ref:{WF}/deploy-prod.yml{main}",
    )


def test_up_and_deploy_never_share_an_environment() -> None:
    # Were they equal, every prod deploy job could assume the admin `up` role.
    flat = stack_config_map("prod")
    flat["platform:github"]["environment"] = "production"
    flat["platform:github"]["deployEnvironment"] = "production"
    with pytest.raises(ConfigError, match="would open both the up and the deploy role"):
        iam.role_specs(load(flat, "prod"))


def test_prod_has_no_push_role_and_cannot_be_configured_into_one() -> None:
    assert "push" not in {s.purpose for s in iam.role_specs(stack("prod"))}
    flat = stack_config_map("prod")
    flat["platform:registryRole"] = "source"
    flat["platform:github"]["deployBranches"] = ["deploy/prod"]
    cfg = load(flat, "prod")  # the config parser alone accepts this combination
    with pytest.raises(ConfigError, match="prod never builds images"):
        iam.role_specs(cfg)


def test_role_names_come_from_naming() -> None:
    for name in ("staging", "prod"):
        cfg = stack(name)
        for spec in iam.role_specs(cfg):
            assert spec.role_name == naming.role_name(cfg.environment, f"github-{spec.purpose}")
            assert len(spec.role_name) <= 64  # IAM's limit on role names


def test_deploy_and_verify_map_to_the_rbac_groups_and_verbs() -> None:
    deploy = next(s for s in iam.role_specs(stack("prod")) if s.purpose == "deploy")
    verify = next(s for s in iam.role_specs(stack("staging")) if s.purpose == "verify")
    assert deploy.hub_access == iam.HubAccessSpec(
        rbac.DEPLOYER_GROUP, rbac.DEPLOYER_ROLE, rbac.DEPLOYER_VERBS
    )
    assert verify.hub_access == iam.HubAccessSpec(
        rbac.VERIFIER_GROUP, rbac.VERIFIER_ROLE, rbac.VERIFIER_VERBS
    )
    assert "patch" not in verify.hub_access.verbs


def test_existing_provider_must_be_this_accounts() -> None:
    flat = stack_config_map("prod")
    flat["platform:github"]["oidcProviderArn"] = iam.oidc_provider_arn("444455556666")
    assert iam.existing_provider_arn(load(flat, "prod")) == (
        "arn:aws:iam::444455556666:oidc-provider/token.actions.githubusercontent.com"
    )
    flat["platform:github"]["oidcProviderArn"] = iam.oidc_provider_arn("111122223333")
    with pytest.raises(ConfigError, match="oidcProviderArn"):
        iam.existing_provider_arn(load(flat, "prod"))


# ---------------------------------------------------------------------------------------------
# Trust documents
# ---------------------------------------------------------------------------------------------

PROVIDER = iam.oidc_provider_arn("111122223333")


def web_identity(sub: str, aud: str = "sts.amazonaws.com") -> dict[str, str]:
    return {iam.SUB_KEY: sub, iam.AUD_KEY: aud}


@pytest.mark.parametrize("name", ["staging", "prod"])
def test_each_trust_policy_admits_exactly_its_subjects(name: str, form: str) -> None:
    cfg = stack(name, form)
    for spec in iam.role_specs(cfg):
        doc = iam.trust_policy(PROVIDER, spec.subjects)
        (statement,) = doc["Statement"]
        assert statement["Principal"] == {"Federated": PROVIDER}
        assert statement["Action"] == "sts:AssumeRoleWithWebIdentity"
        pull_request = spec.purpose == "preview"
        assert set(statement["Condition"]) == (
            {"StringEquals", "StringLike"} if pull_request else {"StringEquals"}
        )
        assert iam.assert_exact_subjects(doc, prefix(form)) == sorted(spec.subjects)
        trust = {**statement, "Resource": "*"}
        one = {"Version": doc["Version"], "Statement": [trust]}
        tokens = [s.replace("*", "42") for s in spec.subjects]  # a real pull request's number
        for sub in tokens:
            assert allowed(one, "sts:AssumeRoleWithWebIdentity", "*", web_identity(sub))
            assert not allowed(one, "sts:AssumeRoleWithWebIdentity", "*", web_identity(sub, aud="other"))
        up = f":job_workflow_ref:{WF}/up.yml@refs/heads/main"
        others = {
            f"{prefix(form)}:ref:refs/heads/main{up}",
            f"{prefix(form)}:environment:other{up}",
            # The right environment from another workflow, or from the right one on a branch.
            *(s.replace("/up.yml@", "/evil.yml@").replace("/deploy-prod.yml@", "/evil.yml@") for s in tokens),
            *(s.replace("@refs/heads/main", "@refs/heads/feature") for s in tokens),
            f"{prefix(form)}:pull_request:job_workflow_ref:{WF}/evil.yml@refs/pull/42/merge",
            "repo:acme/other:pull_request",
            "repo:evil/platform:pull_request",
        } - set(tokens)
        for sub in others:
            assert not allowed(one, "sts:AssumeRoleWithWebIdentity", "*", web_identity(sub)), sub


def test_trust_policy_refuses_an_empty_subject_list() -> None:
    with pytest.raises(ValueError, match="at least one subject"):
        iam.trust_policy(PROVIDER, [])


def _doc(condition: dict[str, Any], action: Any = "sts:AssumeRoleWithWebIdentity") -> dict[str, Any]:
    return {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Principal": {"Federated": PROVIDER},
                "Action": action,
                "Condition": condition,
            }
        ],
    }


AUD = {iam.AUD_KEY: "sts.amazonaws.com"}
ENV_SUB = f"repo:acme/platform:environment:prod:job_workflow_ref:{WF}/up.yml@refs/heads/main"
PR_SUB = f"repo:acme/platform:pull_request:job_workflow_ref:{WF}/preview.yml@refs/pull/*/merge"


def test_validator_accepts_githubs_example_with_the_workflow() -> None:
    # GitHub's example subject, under the repository template this program sets.
    sub = (
        "repo:octo-org/octo-repo:ref:refs/heads/octo-branch"
        ":job_workflow_ref:octo-org/octo-repo/.github/workflows/oidc.yml@refs/heads/octo-branch"
    )
    assert iam.assert_exact_subjects(_doc({"StringEquals": {**AUD, iam.SUB_KEY: sub}})) == [sub]


def test_validator_refuses_a_subject_that_names_no_workflow() -> None:
    # The default template's subjects: any workflow naming the environment would match.
    for sub in ("repo:acme/platform:environment:prod", "repo:acme/platform:ref:refs/heads/main"):
        with pytest.raises(iam.UnsafeTrustPolicy, match="not one exact"):
            iam.assert_exact_subjects(_doc({"StringEquals": {**AUD, iam.SUB_KEY: sub}}))


def test_validator_admits_stringlike_only_for_a_pull_requests_number() -> None:
    assert iam.assert_exact_subjects(_doc({"StringEquals": AUD, "StringLike": {iam.SUB_KEY: PR_SUB}})) == [
        PR_SUB
    ]
    for wider in (
        PR_SUB.replace("preview.yml", "*"),
        PR_SUB.replace("refs/pull/*/merge", "*"),
        ENV_SUB.replace("prod", "*"),
        "repo:acme/platform:*",
    ):
        with pytest.raises(iam.UnsafeTrustPolicy, match="only wildcard"):
            iam.assert_exact_subjects(_doc({"StringEquals": AUD, "StringLike": {iam.SUB_KEY: wider}}))
    with pytest.raises(iam.UnsafeTrustPolicy, match="StringLike"):
        iam.assert_exact_subjects(_doc({"StringEquals": {iam.SUB_KEY: ENV_SUB}, "StringLike": AUD}))


@pytest.mark.parametrize(
    ("condition", "reason"),
    [
        ({"StringLike": {**AUD, iam.SUB_KEY: "repo:acme/platform:*"}}, "StringLike"),
        ({"StringEquals": AUD, "StringLike": {iam.SUB_KEY: "repo:acme/*"}}, "StringLike"),
        (
            {"StringEquals": AUD, "ForAnyValue:StringLike": {iam.SUB_KEY: ["repo:*/platform:x"]}},
            "ForAnyValue",
        ),
        ({"StringEqualsIgnoreCase": {**AUD, iam.SUB_KEY: ENV_SUB}}, "IgnoreCase"),
        ({"StringEquals": {**AUD, iam.SUB_KEY: "repo:acme/*:pull_request"}}, "not one exact"),
        ({"StringEquals": {**AUD, iam.SUB_KEY: "repo:*/platform:pull_request"}}, "not one exact"),
        ({"StringEquals": {**AUD, iam.SUB_KEY: "repo:acme/platform:*"}}, "not one exact"),
        ({"StringEquals": {**AUD, iam.SUB_KEY: "repo:acme/platform:ref:refs/heads/*"}}, "not one exact"),
        ({"StringEquals": {**AUD, iam.SUB_KEY: "repo:acme/plat?orm:pull_request"}}, "not one exact"),
        ({"StringEquals": {**AUD, iam.SUB_KEY: "repo:${aws:username}/x:pull_request"}}, "not one exact"),
        ({"StringEquals": {**AUD, iam.SUB_KEY: "repo:acme/platform"}}, "not one exact"),
        ({"StringEquals": {**AUD, iam.SUB_KEY: []}}, "no token"),
        ({"StringEquals": AUD}, "no token"),
        ({"StringEquals": {iam.SUB_KEY: ENV_SUB}}, "aud"),
        (
            {"StringEquals": {iam.AUD_KEY: "https://github.com/acme", iam.SUB_KEY: "repo:a/b:pull_request"}},
            "aud",
        ),
        ({"Bool": {"aws:SecureTransport": "true"}}, "expected StringEquals"),
    ],
)
def test_validator_refuses_anything_but_exact_subjects(condition: dict[str, Any], reason: str) -> None:
    with pytest.raises(iam.UnsafeTrustPolicy, match=reason):
        iam.assert_exact_subjects(_doc(condition))


def test_validator_refuses_a_trust_without_condition_or_with_more_actions() -> None:
    no_condition = _doc({})
    del no_condition["Statement"][0]["Condition"]
    with pytest.raises(iam.UnsafeTrustPolicy, match="no Condition"):
        iam.assert_exact_subjects(no_condition)
    exact = {"StringEquals": {**AUD, iam.SUB_KEY: ENV_SUB}}
    with pytest.raises(iam.UnsafeTrustPolicy, match="Action"):
        iam.assert_exact_subjects(_doc(exact, ["sts:AssumeRoleWithWebIdentity", "sts:TagSession"]))


def test_validator_compares_condition_keys_case_insensitively_as_iam_does() -> None:
    upper_sub = iam.SUB_KEY.replace("token.actions", "Token.Actions")
    with pytest.raises(iam.UnsafeTrustPolicy, match="StringLike"):
        iam.assert_exact_subjects(_doc({"StringEquals": AUD, "StringLike": {upper_sub: "repo:acme/*"}}))
    ok = _doc({"StringEquals": {**AUD, upper_sub: ENV_SUB}})
    assert iam.assert_exact_subjects(ok) == [ENV_SUB]


def test_validator_pins_the_repository_when_asked() -> None:
    doc = _doc(
        {
            "StringEquals": {
                **AUD,
                iam.SUB_KEY: [ENV_SUB, ENV_SUB.replace("acme/platform:", "acme/x:")],
            }
        }
    )
    with pytest.raises(iam.UnsafeTrustPolicy, match="not a subject of repo:acme/platform"):
        iam.assert_exact_subjects(doc, "repo:acme/platform")
    # A name-form prefix does not admit a look-alike repository whose name merely starts with it.
    fork = ENV_SUB.replace("acme/platform:", "acme/platform-fork:")
    sneaky = _doc({"StringEquals": {**AUD, iam.SUB_KEY: fork}})
    with pytest.raises(iam.UnsafeTrustPolicy, match="not a subject of"):
        iam.assert_exact_subjects(sneaky, "repo:acme/platform")


def test_validator_ignores_statements_that_do_not_trust_github() -> None:
    doc = {
        "Version": "2012-10-17",
        "Statement": [
            {"Effect": "Allow", "Principal": {"Service": "eks.amazonaws.com"}, "Action": "sts:AssumeRole"},
        ],
    }
    assert iam.assert_exact_subjects(doc) == []


_names = st.from_regex(r"[A-Za-z0-9][A-Za-z0-9._-]{0,20}", fullmatch=True)
_branches = st.from_regex(r"[A-Za-z0-9][A-Za-z0-9._/-]{0,30}", fullmatch=True)


@given(owner=_names, repo=_names, branch=_branches, use_ids=st.booleans(), cut=st.integers(min_value=0))
def test_built_subjects_pass_and_any_wildcard_fails(
    owner: str, repo: str, branch: str, use_ids: bool, cut: int
) -> None:
    gh = config.GitHubConfig(
        owner, repo, "42" if use_ids else None, "7" if use_ids else None,
        "id" if use_ids else "name", (branch,), "staging", "production", None, None, True, "enterprise", "private",
    )  # fmt: skip
    subjects = [
        iam.branch_subject(gh, branch),
        iam.pull_request_subject(gh),
        iam.environment_subject(gh, "x", "up.yml"),
    ]
    doc = iam.trust_policy(PROVIDER, subjects)
    assert sorted(iam.assert_exact_subjects(doc, iam.subject_prefix(gh))) == sorted(set(subjects))
    exact = [subjects[0], subjects[2]]
    target = exact[cut % len(exact)]
    at = cut % (len(target) + 1)
    bad = _doc({"StringEquals": {**AUD, iam.SUB_KEY: target[:at] + "*" + target[at:]}})
    with pytest.raises(iam.UnsafeTrustPolicy):
        iam.assert_exact_subjects(bad)


# ---------------------------------------------------------------------------------------------
# Permission documents
# ---------------------------------------------------------------------------------------------

STAGING = "111122223333"
KEY = f"arn:aws:kms:us-west-2:{STAGING}:key/0b5c4e4e-1111-2222-3333-444455556666"


def repo_arn(region: str, name: str, account: str = STAGING) -> str:
    return f"arn:aws:ecr:{region}:{account}:repository/{name}"


def test_push_policy_allows_pushing_to_the_projects_repositories_in_the_primary_region_only() -> None:
    cfg = stack("staging")
    spec = next(s for s in iam.role_specs(cfg) if s.purpose == "push")
    doc = iam.inline_policy(spec, iam.policy_context(cfg))
    assert doc is not None
    primary = cfg.ecr.primary_region
    assert allowed(doc, "ecr:GetAuthorizationToken", "*")
    for service in cfg.services:
        target = repo_arn(primary, f"{cfg.ecr.prefix}/{service}")
        for action in iam.ECR_PUSH_ACTIONS:
            assert allowed(doc, action, target), (action, target)
    web = repo_arn(primary, f"{cfg.ecr.prefix}/web")
    for action in (
        "ecr:DeleteRepository",
        "ecr:BatchDeleteImage",
        "ecr:SetRepositoryPolicy",
        "ecr:PutLifecyclePolicy",
    ):
        assert not allowed(doc, action, web), action
    other_region = next(r for r in cfg.region_names if r != primary)
    assert not allowed(doc, "ecr:PutImage", repo_arn(other_region, f"{cfg.ecr.prefix}/web"))
    assert not allowed(doc, "ecr:PutImage", repo_arn(primary, "other/web"))
    assert not allowed(doc, "ecr:PutImage", repo_arn(primary, f"{cfg.ecr.prefix}/web", cfg.peer_account_id))
    assert not any(allowed(doc, a, KEY) for a in ("kms:Decrypt", "kms:GenerateDataKey"))
    every_action = {a for s in doc["Statement"] for a in s["Action"]}
    assert every_action == {"ecr:GetAuthorizationToken", *iam.ECR_PUSH_ACTIONS}


def test_push_policy_uses_the_cmk_only_through_ecr_in_that_region() -> None:
    doc = iam.ecr_push_policy(STAGING, "us-west-2", "shop", KEY)
    via_ecr = {"kms:ViaService": "ecr.us-west-2.amazonaws.com"}
    for action in ("kms:Decrypt", "kms:GenerateDataKey"):
        assert allowed(doc, action, KEY, via_ecr)
        assert not allowed(doc, action, KEY)  # directly
        assert not allowed(doc, action, KEY, {"kms:ViaService": "s3.us-west-2.amazonaws.com"})
        assert not allowed(doc, action, KEY.replace("0b5c", "ffff"), via_ecr)  # another key
    assert not allowed(doc, "kms:Encrypt", KEY, via_ecr)


def test_preview_guard_denies_secret_and_data_reads_but_not_public_parameters() -> None:
    cfg = stack("staging")
    spec = next(s for s in iam.role_specs(cfg) if s.purpose == "preview")
    # ViewOnlyAccess (resources and metadata), not ReadOnlyAccess (which reads data):
    # https://docs.aws.amazon.com/aws-managed-policy/latest/reference/ViewOnlyAccess.html
    assert spec.managed_policy_arns == ("arn:aws:iam::aws:policy/job-function/ViewOnlyAccess",)
    guard = iam.inline_policy(spec, iam.policy_context(cfg))
    assert guard is not None
    # The managed policy modelled as the broadest read grant it could ever become.
    read_only = {"Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}
    both = {"Statement": read_only["Statement"] + guard["Statement"]}
    secret = f"arn:aws:secretsmanager:us-west-2:{STAGING}:secret:db-AbCdEf"
    assert decide(both, "secretsmanager:GetSecretValue", secret) == "Deny"
    assert decide(both, "kms:Decrypt", KEY) == "Deny"
    assert (
        decide(both, "ssm:GetParameter", f"arn:aws:ssm:us-west-2:{STAGING}:parameter/app/db-password")
        == "Deny"
    )
    assert decide(both, "ecr:GetDownloadUrlForLayer", repo_arn("us-west-2", "shop/web")) == "Deny"
    # Data: S3 objects, DynamoDB items, log events, Lambda code and environment variables.
    for action, resource in [
        ("s3:GetObject", "arn:aws:s3:::any-bucket/any/key"),
        ("dynamodb:GetItem", f"arn:aws:dynamodb:us-west-2:{STAGING}:table/t"),
        ("dynamodb:Scan", f"arn:aws:dynamodb:us-west-2:{STAGING}:table/t"),
        ("logs:GetLogEvents", f"arn:aws:logs:us-west-2:{STAGING}:log-group:g:log-stream:s"),
        ("logs:FilterLogEvents", f"arn:aws:logs:us-west-2:{STAGING}:log-group:g"),
        ("lambda:GetFunction", f"arn:aws:lambda:us-west-2:{STAGING}:function:f"),
        ("lambda:GetFunctionConfiguration", f"arn:aws:lambda:us-west-2:{STAGING}:function:f"),
    ]:
        assert decide(both, action, resource) == "Deny", action
    # What preview needs stays open: describe/list/get of infrastructure, AWS's public parameters.
    assert allowed(both, "eks:DescribeCluster", f"arn:aws:eks:us-west-2:{STAGING}:cluster/x")
    assert allowed(both, "iam:GetRole", f"arn:aws:iam::{STAGING}:role/x")
    public = "arn:aws:ssm:us-west-2::parameter/aws/service/eks/optimized-ami/1.35/amazon-linux-2023/x86_64"
    assert allowed(both, "ssm:GetParameter", public)
    assert all(s["Effect"] == "Deny" for s in guard["Statement"])  # the guard itself grants nothing


def test_up_role_is_admin_within_a_boundary() -> None:
    cfg = stack("prod")
    spec = next(s for s in iam.role_specs(cfg) if s.purpose == "up")
    assert spec.managed_policy_arns == ("arn:aws:iam::aws:policy/AdministratorAccess",)
    assert spec.permissions_boundary and not spec.has_inline_policy
    boundary = iam.up_boundary_policy(cfg.account_id, cfg.environment)
    acct = cfg.account_id
    up_role = f"arn:aws:iam::{acct}:role/{spec.role_name}"
    boundary_arn = f"arn:aws:iam::{acct}:policy/{iam.boundary_policy_name(cfg.environment)}"
    for action, resource in [
        ("eks:CreateCluster", f"arn:aws:eks:us-west-2:{acct}:cluster/x"),
        ("iam:CreateRole", f"arn:aws:iam::{acct}:role/platform-prod-node"),
        ("iam:PutRolePermissionsBoundary", f"arn:aws:iam::{acct}:role/platform-prod-node"),
        ("ecr:CreateRepository", repo_arn("us-west-2", "shop/web", acct)),
    ]:
        assert allowed(boundary, action, resource), action
    for action, resource in [
        ("iam:CreateAccessKey", f"arn:aws:iam::{acct}:user/x"),
        ("iam:CreateUser", f"arn:aws:iam::{acct}:user/x"),
        ("iam:DeleteRolePermissionsBoundary", up_role),
        ("iam:PutRolePermissionsBoundary", up_role),
        ("iam:CreatePolicyVersion", boundary_arn),
        ("organizations:LeaveOrganization", "*"),
    ]:
        assert decide(boundary, action, resource) == "Deny", action


@pytest.mark.parametrize(("name", "purpose"), [("prod", "deploy"), ("staging", "verify")])
def test_deploy_and_verify_may_only_describe_the_hub_cluster(name: str, purpose: str) -> None:
    cfg = stack(name)
    spec = next(s for s in iam.role_specs(cfg) if s.purpose == purpose)
    doc = iam.inline_policy(spec, iam.policy_context(cfg))
    assert doc is not None
    hub = f"arn:aws:eks:{cfg.hub_region}:{cfg.account_id}:cluster/{naming.cluster_name(cfg.environment, cfg.hub_region)}"
    assert allowed(doc, "eks:DescribeCluster", hub)
    for spoke in cfg.spoke_regions:
        spoke_arn = (
            f"arn:aws:eks:{spoke}:{cfg.account_id}:cluster/{naming.cluster_name(cfg.environment, spoke)}"
        )
        assert not allowed(doc, "eks:DescribeCluster", spoke_arn)
    for action in (
        "eks:ListClusters",
        "eks:UpdateClusterConfig",
        "eks:CreateAccessEntry",
        "eks:AccessKubernetesApi",
    ):
        assert not allowed(doc, action, hub), action


@pytest.mark.parametrize("name", ["staging", "prod"])
def test_inline_policy_exists_exactly_when_the_spec_says_so(name: str) -> None:
    cfg = stack(name)
    for spec in iam.role_specs(cfg):
        assert (iam.inline_policy(spec, iam.policy_context(cfg)) is not None) == spec.has_inline_policy
