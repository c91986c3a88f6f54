"""The GitHubOidc component under Pulumi mocks (infra.offline.run with a small program).

The program here gives the component a stand-in hub (an AWS provider, a Kubernetes provider, a
cluster name), an Argo CD namespace and an ECR key, so these tests do not depend on the cluster,
Argo CD or registry components; tests/components/test_github_stack.py checks the real program.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Callable
from typing import Any

import pulumi
import pulumi_aws as aws
import pulumi_kubernetes as k8s
import pytest

from infra import naming, offline, providers
from infra.config import ConfigError, StackConfig
from infra.documents import iam
from infra.offline import Plan, Resource
from tests.conftest import stack_config_map

OWNER_ID = "583231"
REPO_ID = "1296269"
ROLE = "aws:iam/role:Role"
OIDC = "aws:iam/openIdConnectProvider:OpenIdConnectProvider"
ATTACHMENT = "aws:iam/rolePolicyAttachment:RolePolicyAttachment"
INLINE = "aws:iam/rolePolicy:RolePolicy"
ACCESS_ENTRY = "aws:eks/accessEntry:AccessEntry"
K8S_ROLE = "kubernetes:rbac.authorization.k8s.io/v1:Role"
K8S_BINDING = "kubernetes:rbac.authorization.k8s.io/v1:RoleBinding"
TYPES = ("platform:github:GitHubOidc", "platform:github:GitHubRole", "platform:github:HubApplicationAccess")


class StandInHub:
    """What infra.components.cluster.RegionalCluster offers the component."""

    def __init__(self, config: StackConfig, provider: aws.Provider) -> None:
        self.aws_provider = provider
        self.cluster_name = pulumi.Output.from_input(
            naming.cluster_name(config.environment, config.hub_region)
        )
        self.k8s_provider = k8s.Provider("hub-kubernetes", kubeconfig="{}")


def program(with_hub: bool = True, with_key: bool = True) -> Callable[[StackConfig], dict[str, Any]]:
    from infra.components.github import GitHubOidc, GitHubOidcArgs

    def run(config: StackConfig) -> dict[str, Any]:
        aws_providers = providers.aws_providers(config)
        hub_provider = aws_providers[config.hub_region]
        hub = StandInHub(config, hub_provider) if with_hub else None
        namespace = (
            k8s.core.v1.Namespace(
                "argocd-namespace",
                metadata={"name": naming.ARGOCD_NAMESPACE},
                opts=pulumi.ResourceOptions(provider=hub.k8s_provider),
            )
            if hub is not None
            else None
        )
        key = (
            aws.kms.Key(
                "ecr-key", opts=pulumi.ResourceOptions(provider=aws_providers[config.ecr.primary_region])
            )
            if with_key
            else None
        )
        github = GitHubOidc(
            "github",
            GitHubOidcArgs(
                config=config,
                iam_provider=hub_provider,
                hub=hub,
                argocd_namespace=namespace,
                ecr_kms_key_arn=key.arn if key is not None else None,
            ),
        )
        return {naming.OUTPUT_GITHUB_ROLES: github.role_arns}

    return run


def flat(stack: str, form: str = "name") -> dict[str, Any]:
    raw = stack_config_map(stack)
    if form == "id":
        raw["platform:github"].update({"subjectForm": "id", "ownerId": OWNER_ID, "repositoryId": REPO_ID})
    return raw


@functools.cache
def plan(stack: str, form: str = "name", with_hub: bool = True, with_key: bool = True) -> Plan:
    return offline.run(stack, flat_config=flat(stack, form), program=program(with_hub, with_key))


def prefix(p: Plan, form: str) -> str:
    gh = p.config.github
    if form == "name":
        return f"repo:{gh.owner}/{gh.repository}"
    return f"repo:{gh.owner}@{OWNER_ID}/{gh.repository}@{REPO_ID}"


def expected_subjects(p: Plan, form: str) -> dict[str, set[str]]:
    """GitHub's documented subject formats under the repository's template (repo, context,
    job_workflow_ref), written out for each role the issue asks for."""
    gh = p.config.github
    pre = prefix(p, form)
    wf = f"{gh.owner}/{gh.repository}/.github/workflows"
    main = "@refs/heads/main"
    expected = {
        "preview": {f"{pre}:pull_request:job_workflow_ref:{wf}/preview.yml@refs/pull/*/merge"},
        "up": {f"{pre}:environment:{gh.environment}:job_workflow_ref:{wf}/up.yml{main}"},
    }
    deploy = {f"{pre}:environment:{gh.deploy_environment}:job_workflow_ref:{wf}/deploy-prod.yml{main}"}
    if p.config.builds_images:
        assert gh.deploy_branches, "a source registry pushes from at least one branch"
        expected["push"] = {
            f"{pre}:ref:refs/heads/{b}:job_workflow_ref:{wf}/build-images.yml@refs/heads/{b}"
            for b in gh.deploy_branches
        }
        expected["verify"] = deploy
    if p.config.is_prod:
        expected["deploy"] = deploy
    return expected


def roles_by_purpose(p: Plan) -> dict[str, Resource]:
    out = {}
    for r in p.of_type(ROLE):
        name = r.inputs["name"]
        head = naming.role_name(p.config.environment, "github-")
        if name.startswith(head):
            out[name.removeprefix(head)] = r
    return out


def children_of(p: Plan, resource: Resource) -> list[Resource]:
    return [r for r in p.resources if r.parent == resource.parent and r is not resource]


def policy_doc(resource: Resource) -> dict[str, Any]:
    return json.loads(resource.inputs["policy"])


def under(p: Plan, urn: str) -> list[Resource]:
    """Every resource whose parent chain reaches ``urn``."""
    index = p.by_urn()
    out = []
    for r in p.resources:
        parent = r.parent
        while parent is not None and parent != urn:
            parent = index[parent].parent if parent in index else None
        if parent == urn:
            out.append(r)
    return out


# ---------------------------------------------------------------------------------------------
# Trust
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("form", ["name", "id"])
@pytest.mark.parametrize("stack", ["staging", "prod"])
def test_each_role_trusts_the_provider_for_exactly_its_subjects(stack: str, form: str) -> None:
    p = plan(stack, form)
    [provider] = p.of_type(OIDC)
    roles = roles_by_purpose(p)
    expected = expected_subjects(p, form)
    assert set(roles) == set(expected)
    for purpose, role in roles.items():
        assert role.inputs["name"] == naming.role_name(p.config.environment, f"github-{purpose}")
        doc = json.loads(role.inputs["assumeRolePolicy"])
        [statement] = doc["Statement"]
        assert statement["Principal"] == {"Federated": provider.outputs["arn"]}
        assert statement["Condition"]["StringEquals"][iam.AUD_KEY] == "sts.amazonaws.com"
        # StringLike only for the pull request's number (the preview role).
        operators = {"StringEquals", "StringLike"} if purpose == "preview" else {"StringEquals"}
        assert set(statement["Condition"]) == operators
        assert set(iam.assert_exact_subjects(doc, prefix(p, form))) == expected[purpose], purpose
    assert p.outputs[naming.OUTPUT_GITHUB_ROLES] == {k: r.outputs["arn"] for k, r in roles.items()}


def test_prod_declares_no_push_role_and_no_ecr_write_permission() -> None:
    p = plan("prod")
    assert "push" not in roles_by_purpose(p)
    assert "push" not in p.outputs[naming.OUTPUT_GITHUB_ROLES]
    actions = {a for r in p.of_type(INLINE) for s in policy_doc(r)["Statement"] for a in s["Action"]}
    assert not actions & {"ecr:PutImage", "ecr:InitiateLayerUpload", "ecr:GetAuthorizationToken"}


def test_one_provider_per_account_declared_with_the_hub_provider() -> None:
    for stack in ("staging", "prod"):
        p = plan(stack)
        [provider] = p.of_type(OIDC)
        assert provider.inputs["url"] == "https://token.actions.githubusercontent.com"
        assert provider.inputs["clientIdLists"] == ["sts.amazonaws.com"]
        assert "thumbprintLists" not in provider.inputs
        assert p.region_of(provider) == p.config.hub_region
        assert provider.protect is p.config.is_prod
        assert provider.inputs["tags"] == naming.base_tags(p.config.environment, p.config.tags)


def test_an_existing_provider_is_trusted_instead_of_declaring_one() -> None:
    raw = flat("prod")
    existing = f"arn:aws:iam::{raw['platform:accountId']}:oidc-provider/token.actions.githubusercontent.com"
    raw["platform:github"]["oidcProviderArn"] = existing
    p = offline.run("prod", flat_config=raw, program=program())
    assert p.of_type(OIDC) == []
    for role in roles_by_purpose(p).values():
        [statement] = json.loads(role.inputs["assumeRolePolicy"])["Statement"]
        assert statement["Principal"] == {"Federated": existing}


def test_an_existing_provider_of_another_account_is_refused() -> None:
    raw = flat("prod")
    raw["platform:github"]["oidcProviderArn"] = (
        f"arn:aws:iam::{raw['platform:peerAccountId']}:oidc-provider/token.actions.githubusercontent.com"
    )
    with pytest.raises(ConfigError, match="oidcProviderArn"):
        offline.run("prod", flat_config=raw, program=program())


# ---------------------------------------------------------------------------------------------
# Structure: parents, providers, tags
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("stack", ["staging", "prod"])
def test_every_child_has_a_parent_and_an_explicit_provider_of_the_hub(stack: str) -> None:
    p = plan(stack)
    [top] = p.of_type("platform:github:GitHubOidc")
    # Only the type: the offline engine keeps the first run's stack URN as root across runs.
    assert top.parent is not None and "::pulumi:pulumi:Stack::" in top.parent
    descendants = under(p, top.urn)
    custom = [r for r in descendants if r.custom]
    assert custom
    index = p.by_urn()
    for r in descendants:
        assert r.type in TYPES or r.custom, r.urn
    for r in custom:
        assert r.provider, r.urn
        provider = index[r.provider]
        if r.type.startswith("aws:"):
            assert provider.type == "pulumi:providers:aws"
            assert provider.inputs["region"] == p.config.hub_region, r.urn
        else:
            assert provider.type == "pulumi:providers:kubernetes", r.urn
            assert provider.name == "hub-kubernetes"
    # Exactly what was declared outside the component is not under it.
    assert {r.name for r in p.resources if r not in descendants and r.custom} <= {
        "argocd-namespace",
        "ecr-key",
        "hub-kubernetes",
        *(f"aws-{r}" for r in p.config.region_names),
    }


@pytest.mark.parametrize("stack", ["staging", "prod"])
def test_taggable_resources_carry_the_base_tags(stack: str) -> None:
    p = plan(stack)
    tags = naming.base_tags(p.config.environment, p.config.tags)
    taggable = [
        *p.of_type(ROLE),
        *p.of_type(OIDC),
        *p.of_type("aws:iam/policy:Policy"),
        *p.of_type(ACCESS_ENTRY),
    ]
    assert taggable
    for r in taggable:
        assert r.inputs.get("tags") == tags, r.urn


# ---------------------------------------------------------------------------------------------
# Permissions
# ---------------------------------------------------------------------------------------------


def attachments(p: Plan, role: Resource) -> set[str]:
    return {a.inputs["policyArn"] for a in p.of_type(ATTACHMENT) if role.urn in a.dependencies}


def inline(p: Plan, role: Resource) -> dict[str, Any] | None:
    docs = [policy_doc(r) for r in p.of_type(INLINE) if role.urn in r.dependencies]
    assert len(docs) <= 1
    return docs[0] if docs else None


@pytest.mark.parametrize("stack", ["staging", "prod"])
def test_each_roles_permissions(stack: str) -> None:
    p = plan(stack)
    cfg = p.config
    roles = roles_by_purpose(p)
    hub_arn = (
        f"arn:aws:eks:{cfg.hub_region}:{cfg.account_id}:cluster/platform-{cfg.environment}-{cfg.hub_region}"
    )

    preview = roles["preview"]
    # View-only: ReadOnlyAccess would read S3 objects, DynamoDB items, log events, Lambda env.
    assert attachments(p, preview) == {"arn:aws:iam::aws:policy/job-function/ViewOnlyAccess"}
    guard = inline(p, preview)
    assert guard is not None and {s["Effect"] for s in guard["Statement"]} == {"Deny"}
    denied = {a for s in guard["Statement"] for a in s["Action"]}
    assert {"secretsmanager:GetSecretValue", "kms:Decrypt", "s3:GetObject", "logs:GetLogEvents"} <= denied

    up = roles["up"]
    assert attachments(p, up) == {"arn:aws:iam::aws:policy/AdministratorAccess"}
    assert inline(p, up) is None
    [boundary] = p.of_type("aws:iam/policy:Policy")
    assert up.inputs["permissionsBoundary"] == boundary.outputs["arn"]
    assert boundary.inputs["name"] == f"platform-{cfg.environment}-github-up-boundary"
    assert up.inputs["maxSessionDuration"] == 7200  # the up workflow asks for 2-hour sessions

    for purpose in ("deploy", "verify"):
        if purpose in roles:
            assert attachments(p, roles[purpose]) == set()
            assert inline(p, roles[purpose]) == {
                "Version": "2012-10-17",
                "Statement": [
                    {
                        "Sid": "DescribeHubCluster",
                        "Effect": "Allow",
                        "Action": ["eks:DescribeCluster"],
                        "Resource": hub_arn,
                    }
                ],
            }


def test_push_role_pushes_to_the_primary_region_with_the_registry_key() -> None:
    p = plan("staging")
    [key] = p.of_type("aws:kms/key:Key")
    push = roles_by_purpose(p)["push"]
    assert attachments(p, push) == set()
    doc = inline(p, push)
    assert doc is not None
    by_sid = {s["Sid"]: s for s in doc["Statement"]}
    assert by_sid["EcrLogin"]["Resource"] == "*"
    assert by_sid["EcrLogin"]["Action"] == ["ecr:GetAuthorizationToken"]
    region = p.config.ecr.primary_region
    assert by_sid["EcrPushProjectRepositories"]["Resource"] == (
        f"arn:aws:ecr:{region}:{p.config.account_id}:repository/{p.config.ecr.prefix}/*"
    )
    assert by_sid["EcrKeyThroughEcrOnly"]["Resource"] == key.outputs["arn"]
    assert by_sid["EcrKeyThroughEcrOnly"]["Condition"] == {
        "StringEquals": {"kms:ViaService": f"ecr.{region}.amazonaws.com"}
    }
    without_key = inline(
        plan("staging", with_key=False), roles_by_purpose(plan("staging", with_key=False))["push"]
    )
    assert without_key is not None
    assert "EcrKeyThroughEcrOnly" not in {s["Sid"] for s in without_key["Statement"]}


# ---------------------------------------------------------------------------------------------
# The hub: access entry, Role, RoleBinding
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("stack", "purpose", "group", "verbs"),
    [
        ("prod", "deploy", "platform:deployers", ["get", "list", "watch", "patch"]),
        ("staging", "verify", "platform:verifiers", ["get"]),
    ],
)
def test_hub_access_grants_exactly_the_verbs_on_applications_in_argocd(
    stack: str, purpose: str, group: str, verbs: list[str]
) -> None:
    p = plan(stack)
    role = roles_by_purpose(p)[purpose]
    [entry] = p.of_type(ACCESS_ENTRY)
    assert entry.inputs["type"] == "STANDARD"
    assert entry.inputs["kubernetesGroups"] == [group]
    assert entry.inputs["principalArn"] == role.outputs["arn"]
    assert entry.inputs["clusterName"] == f"platform-{p.config.environment}-{p.config.hub_region}"
    assert p.region_of(entry) == p.config.hub_region
    assert "eks:index:AccessPolicyAssociation" not in {r.type for r in p.resources}
    assert p.of_type("aws:eks/accessPolicyAssociation:AccessPolicyAssociation") == []

    [k8s_role] = p.of_type(K8S_ROLE)
    assert k8s_role.inputs["metadata"]["namespace"] == "argocd"
    assert k8s_role.inputs["rules"] == [
        {"apiGroups": ["argoproj.io"], "resources": ["applications"], "verbs": verbs}
    ]
    [binding] = p.of_type(K8S_BINDING)
    assert binding.inputs["metadata"]["namespace"] == "argocd"
    assert binding.inputs["roleRef"] == {
        "apiGroup": "rbac.authorization.k8s.io",
        "kind": "Role",
        "name": k8s_role.inputs["metadata"]["name"],
    }
    assert binding.inputs["subjects"] == [
        {"kind": "Group", "name": group, "apiGroup": "rbac.authorization.k8s.io"}
    ]
    [namespace] = [r for r in p.resources if r.name == "argocd-namespace"]
    assert namespace.urn in k8s_role.dependencies
    assert namespace.urn in binding.dependencies


def test_without_a_hub_the_roles_are_iam_only() -> None:
    p = plan("prod", with_hub=False)
    assert p.of_type(ACCESS_ENTRY) == p.of_type(K8S_ROLE) == p.of_type(K8S_BINDING) == []
    deploy = roles_by_purpose(p)["deploy"]
    doc = inline(p, deploy)
    assert doc is not None
    hub_cluster = naming.cluster_name(p.config.environment, p.config.hub_region)
    assert doc["Statement"][0]["Resource"].endswith(f":cluster/{hub_cluster}")


def test_a_prod_config_with_a_push_role_is_refused_before_anything_is_declared() -> None:
    raw = flat("prod")
    raw["platform:registryRole"] = "source"
    raw["platform:github"]["deployBranches"] = ["deploy/prod"]
    with pytest.raises(ConfigError, match="prod never builds images"):
        offline.run("prod", flat_config=raw, program=program())
