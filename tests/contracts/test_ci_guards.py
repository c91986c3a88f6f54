"""Contracts of issue 15: the CodeBuild-hosted runners, the EKS control plane's additional
security group, GitHub's OIDC subject template and environment protection, and the Pulumi runtime
facts the program's guards rely on.

Each test pins one behaviour of an external system; its docstring names the source read. What
can be read here is the installed SDKs (pulumi-aws 7.51.1, pulumi-eks 4.4.0, pulumi-github
6.15.0, pulumi 3.272.0) and the fetched pulumi-eks source; AWS's and GitHub's documents are cited.
"""

from __future__ import annotations

import inspect
import re
from typing import Any

import pulumi
import pulumi_aws
import pulumi_eks
import pulumi_github
from pulumi.runtime import mocks as pulumi_mocks

from infra import naming
from infra.components import github_repository
from infra.config import GitHubConfig
from infra.documents import iam
from infra.documents import runner as runner_docs


def _param_doc(cls: type, name: str) -> str:
    doc = inspect.getdoc(vars(cls)["__init__"]) or ""
    match = re.search(rf":param [^\n]*\b{name}:(.*?)(?=\n\s*:param|\Z)", doc, re.S)
    assert match, f"{cls.__name__} documents no {name}"
    return " ".join(match.group(1).split())


# --- CodeBuild-hosted GitHub Actions runners ---------------------------------------------------


def test_codebuild_routes_a_job_by_its_codebuild_project_run_id_attempt_label() -> None:
    """AWS CodeBuild User Guide, "Tutorial: Configure a CodeBuild-hosted GitHub Actions runner"
    (https://docs.aws.amazon.com/codebuild/latest/userguide/action-runner.html) and
    "Troubleshoot the webhook" (action-runner-troubleshoot-webhook.html): a job whose ``runs-on``
    is ``codebuild-<project-name>-${{ github.run_id }}-${{ github.run_attempt }}`` runs on a
    runner of that project; every job carries the same number of labels."""
    label = runner_docs.runs_on_label("prod")
    assert label == "codebuild-platform-prod-runner-${{ github.run_id }}-${{ github.run_attempt }}"
    assert (
        label
        == f"codebuild-{naming.runner_project_name('prod')}-${{{{ github.run_id }}}}-${{{{ github.run_attempt }}}}"
    )


def test_codebuild_webhooks_filter_workflow_jobs_by_event_and_workflow_name() -> None:
    """AWS CodeBuild User Guide, "GitHub webhook events"
    (https://docs.aws.amazon.com/codebuild/latest/userguide/github-webhook.html): the event
    ``WORKFLOW_JOB_QUEUED`` (X-GitHub-Event ``workflow_job``, action ``queued``) and the
    ``WORKFLOW_NAME`` filter; the installed pulumi-aws Webhook documents both values."""
    doc = _param_doc(pulumi_aws.codebuild.WebhookFilterGroupFilterArgs, "pattern")
    assert "WORKFLOW_JOB_QUEUED" in doc
    assert "WORKFLOW_NAME" in _param_doc(pulumi_aws.codebuild.WebhookFilterGroupFilterArgs, "type")
    assert runner_docs.webhook_filter_groups()[0][0] == {"type": "EVENT", "pattern": "WORKFLOW_JOB_QUEUED"}


def test_codebuild_projects_authenticate_to_github_with_a_codeconnections_connection() -> None:
    """pulumi-aws 7.51.1 ``codebuild.ProjectSourceAuthArgs``: ``type`` CODECONNECTIONS with the
    connection's ARN as ``resource`` (AWS: https://docs.aws.amazon.com/codebuild/latest/userguide/connections-github-app.html)."""
    assert "CODECONNECTIONS" in _param_doc(pulumi_aws.codebuild.ProjectSourceAuthArgs, "type")


# --- EKS: the control plane's additional security group ----------------------------------------


def test_pulumi_eks_puts_cluster_security_group_on_the_control_plane() -> None:
    """pulumi/pulumi-eks nodejs/eks/cluster/cluster.ts at v4.3.0 (unchanged at main 7bf0c1b1;
    the installed 4.4.0 is not tagged in the fetched mirror): ``args.clusterSecurityGroup`` is
    used as ``eksClusterSecurityGroup`` even with ``skipDefaultSecurityGroups``, and becomes
    ``vpcConfig.securityGroupIds: [eksClusterSecurityGroup.id]`` of the aws.eks.Cluster. EKS
    attaches those groups to the control plane's network interfaces only, beside the cluster
    security group it creates (https://docs.aws.amazon.com/eks/latest/userguide/sec-group-reqs.html)."""
    assert "cluster_security_group" in inspect.signature(pulumi_eks.ClusterArgs.__init__).parameters
    doc = _param_doc(pulumi_eks.ClusterArgs, "cluster_security_group")
    assert "security group to use for the cluster API endpoint" in doc


def test_eks_security_group_ids_update_in_place() -> None:
    """AWS EKS UpdateClusterConfig accepts ``resourcesVpcConfig.securityGroupIds`` since
    2023-10-24 (https://aws.amazon.com/about-aws/whats-new/2023/10/amazon-eks-modification-cluster-subnets-security/),
    and terraform-provider-aws 5.25.0 (CHANGELOG: "resource/aws_eks_cluster: Allow
    vpc_config.security_group_ids and vpc_config.subnet_ids to be updated in-place") stopped
    replacing the cluster; pulumi-aws 7.x bridges provider 6.x. So adding the group to existing
    clusters is an update. The installed SDK still takes the list."""
    doc = _param_doc(pulumi_aws.eks.ClusterVpcConfigArgs, "security_group_ids")
    assert "security group" in doc.lower()


# --- GitHub: OIDC subject template and environment protection ----------------------------------


def test_github_subject_template_appends_claims_in_order() -> None:
    """GitHub Docs, "OpenID Connect reference", "Customizing the subject claims for an
    organization or repository" (https://docs.github.com/en/actions/reference/security/oidc):
    with ``include_claim_keys`` ``["repo", "context", "job_workflow_ref"]`` the subject is
    ``repo:ORG/REPO:<context>:job_workflow_ref:ORG/REPO/.github/workflows/FILE@REF``, ``context``
    being the default subject's (``environment:NAME``, ``ref:REF``, ``pull_request``); a
    pull request's job runs its workflow at ``refs/pull/<number>/merge``. REST:
    ``PUT /repos/{owner}/{repo}/actions/oidc/customization/sub`` with ``use_default: false``."""
    gh = _github()
    assert iam.SUBJECT_CLAIM_KEYS == ("repo", "context", "job_workflow_ref")
    assert iam.environment_subject(gh, "prod", "up.yml") == (
        "repo:octo-org/octo-repo:environment:prod"
        ":job_workflow_ref:octo-org/octo-repo/.github/workflows/up.yml@refs/heads/main"
    )
    assert iam.pull_request_subject(gh, "preview.yml").endswith("/preview.yml@refs/pull/*/merge")


def test_pulumi_github_declares_the_repository_subject_template() -> None:
    """pulumi-github 6.15.0 ``ActionsRepositoryOidcSubjectClaimCustomizationTemplate``
    (terraform-provider-github ``github_actions_repository_oidc_subject_claim_customization_template``):
    ``repository``, ``use_default`` and ``include_claim_keys``."""
    args = pulumi_github.ActionsRepositoryOidcSubjectClaimCustomizationTemplateArgs
    assert "OpenID Connect claims" in _param_doc(args, "include_claim_keys")
    assert "default template" in _param_doc(args, "use_default")
    assert "name of the repository" in _param_doc(args, "repository")


def test_github_environment_protection_defaults_must_be_overridden() -> None:
    """pulumi-github 6.15.0 ``RepositoryEnvironment``: ``can_admins_bypass`` defaults to true and
    ``prevent_self_review`` to false, so both are set explicitly; reviewers take up to 6 team
    and 6 user IDs (GitHub REST "Create or update an environment",
    https://docs.github.com/en/rest/deployments/environments). GitHub creates an environment
    without protection rules when a workflow first references one
    (https://docs.github.com/en/actions/reference/workflows-and-actions/deployments-and-environments)."""
    assert "Defaults to `true`" in _param_doc(pulumi_github.RepositoryEnvironmentArgs, "can_admins_bypass")
    assert "Defaults to `false`" in _param_doc(pulumi_github.RepositoryEnvironmentArgs, "prevent_self_review")
    assert "Up to 6 IDs" in _param_doc(pulumi_github.RepositoryEnvironmentReviewerArgs, "teams")
    assert "Up to 6 IDs" in _param_doc(pulumi_github.RepositoryEnvironmentReviewerArgs, "users")


def test_pulumi_github_reads_its_token_from_the_environment() -> None:
    """pulumi-github 6.15.0 Provider: ``token`` is optional; the provider reads ``GITHUB_TOKEN``
    when it is unset (https://www.pulumi.com/registry/packages/github/installation-configuration/),
    which is how ``up.yml`` hands it over without putting it in the stack."""
    assert "`GITHUB_TOKEN` environment variable" in _param_doc(pulumi_github.ProviderArgs, "token")
    assert "GITHUB_TOKEN" in (inspect.getdoc(github_repository) or "")


# --- Pulumi runtime: one place that tells a real run from the offline one ----------------------


def test_set_mocks_installs_a_mock_monitor() -> None:
    """pulumi 3.272.0 sdk/python/lib/pulumi/runtime/mocks.py ``set_mocks``: ``monitor =
    MockMonitor(mocks) if monitor is None else monitor`` and the settings carry it;
    ``settings.get_monitor()`` returns it (infra.placeholders.is_offline_run)."""
    source = inspect.getsource(pulumi_mocks.set_mocks)
    assert "MockMonitor(mocks) if monitor is None else monitor" in source
    assert "monitor=monitor" in source


def test_run_error_ends_a_program_without_a_traceback() -> None:
    """pulumi 3.272.0 sdk/python/lib/pulumi/errors.py ``RunError``: "terminating a program
    abruptly, but resulting in a clean exit rather than the usual verbose unhandled error logic
    which emits the source program text and complete stack trace" (infra/__main__.py)."""
    assert "clean exit" in (pulumi.RunError.__doc__ or "")


def _github() -> GitHubConfig:
    return GitHubConfig(
        "octo-org",
        "octo-repo",
        None,
        None,
        "name",
        (),
        "prod",
        "production",
        None,
        None,
        True,
        "enterprise",
        "private",
    )


def test_runner_role_has_the_codebuild_guides_connection_actions() -> None:
    """AWS CodeBuild user guide, "GitHub App connections for GitHub and GitHub Enterprise Server",
    Step 2 (https://docs.aws.amazon.com/codebuild/latest/userguide/connections-github-app.html):
    the project role is granted codeconnections:GetConnectionToken and codeconnections:GetConnection
    on the connection ARN."""
    arn = "arn:aws:codeconnections:us-east-1:111122223333:connection/x"
    doc = runner_docs.service_role_policy("111122223333", "us-east-1", "p", [], arn)
    [stmt] = [s for s in doc["Statement"] if s.get("Resource") == arn]
    # The guide's two, and UseConnection, which CreateProject checks on the role
    # (aws/aws-cdk#38504); nothing else on the connection.
    assert sorted(stmt["Action"]) == [
        "codeconnections:GetConnection",
        "codeconnections:GetConnectionToken",
        "codeconnections:UseConnection",
    ]
    assert not [s for s in doc["Statement"] if any(a.startswith("codeconnections:") for a in s["Action"])
                and s is not stmt]  # fmt: skip


def _botocore_model(service: str) -> dict[str, Any]:
    import botocore.loaders

    return botocore.loaders.create_loader().load_service_model(service, "service-2")


def test_a_job_holding_the_runner_role_cannot_ask_for_the_github_app_token() -> None:
    """The AWS CodeConnections API models of botocore 1.44.8 (``codeconnections/2023-12-01``,
    ``codestar-connections/2019-12-01``, the same API the CLI and every SDK call): no operation
    ``GetConnectionToken`` or ``UseConnection`` exists (IAM permissions only, used by AWS services
    such as CodeBuild on the role's behalf), and ``GetConnection`` returns a ``Connection`` of
    name, ARN, provider type, owner account, status, host (and, in codeconnections, the
    provider's endpoint URL), no credential. So the project role
    a job on the runner holds (infra/documents/runner.py CONNECTION_ACTIONS) yields no GitHub
    token through any AWS API."""
    for service in ("codeconnections", "codestar-connections"):
        model = _botocore_model(service)
        operations = set(model["operations"])
        assert "GetConnection" in operations and "CreateConnection" in operations
        assert not {"GetConnectionToken", "UseConnection"} & operations, service
        shapes = model["shapes"]
        output = shapes[model["operations"]["GetConnection"]["output"]["shape"]]
        connection = shapes[output["members"]["Connection"]["shape"]]
        # codeconnections adds ProviderEndpoint (a URL); neither has a token or secret member.
        assert set(connection["members"]) - {"ProviderEndpoint"} == {
            "ConnectionName",
            "ConnectionArn",
            "ProviderType",
            "OwnerAccountId",
            "ConnectionStatus",
            "HostArn",
        }
    granted = {a.split(":", 1)[1] for a in runner_docs.CONNECTION_ACTIONS}
    callable_ = granted & set(_botocore_model("codeconnections")["operations"])
    assert callable_ == {"GetConnection"}


def test_codebuild_cannot_filter_a_runner_job_by_its_branch_or_event() -> None:
    """AWS CodeBuild API model (botocore 1.44.8 ``codebuild/2016-10-06``, ``WebhookFilter.type``;
    https://docs.aws.amazon.com/codebuild/latest/APIReference/API_WebhookFilter.html):
    ``WORKFLOW_NAME`` "Works with WORKFLOW_JOB_QUEUED events only"; ``HEAD_REF`` works with push
    and pull request events (GitHub, GitHub Enterprise, Bitbucket), ``BASE_REF`` "with pull request
    events only", ``FILE_PATH`` and ``COMMIT_MESSAGE`` "with push and pull request events only".
    So the runners' webhook filters a queued job by its workflow's name alone
    (infra/documents/runner.py webhook_filter_groups)."""
    model = _botocore_model("codebuild")
    doc = " ".join(
        re.sub(r"<[^>]+>", " ", model["shapes"]["WebhookFilter"]["members"]["type"]["documentation"]).split()
    )

    def section(kind: str) -> str:
        match = re.search(rf"\b{kind}\b (A webhook.*?)(?= [A-Z_]{{6,}} A webhook|$)", doc)
        assert match, kind
        return match.group(1)

    assert "Works with WORKFLOW_JOB_QUEUED events only" in section("WORKFLOW_NAME")
    head = section("HEAD_REF")
    assert "push" in head and "pull request" in head and "WORKFLOW_JOB_QUEUED" not in head
    assert "Works with pull request events only" in section("BASE_REF")
    for kind in ("FILE_PATH", "COMMIT_MESSAGE"):
        assert "Works with push and pull request events only" in section(kind), kind
    for group in runner_docs.webhook_filter_groups():
        assert {f["type"] for f in group} == {"EVENT", "WORKFLOW_NAME"}
        assert [f["pattern"] for f in group if f["type"] == "EVENT"] == [runner_docs.QUEUED_EVENT]


def test_ruleset_and_workflow_permissions_inputs_exist_in_pulumi_github() -> None:
    """pulumi-github 6.15.0 (installed): RepositoryRuleset takes bypass_actors, conditions.ref_name,
    rules.pull_request / non_fast_forward / deletion; WorkflowRepositoryPermissions takes
    default_workflow_permissions ("read" or "write") and can_approve_pull_request_reviews. GitHub:
    https://docs.github.com/en/repositories/configuring-branches-and-merges-in-your-repository/managing-rulesets/available-rules-for-rulesets
    and https://docs.github.com/en/rest/actions/permissions#set-default-workflow-permissions-for-a-repository"""
    ruleset = inspect.signature(pulumi_github.RepositoryRuleset._internal_init).parameters
    assert {"bypass_actors", "conditions", "rules", "target", "enforcement"} <= set(ruleset)
    rules = inspect.signature(pulumi_github.RepositoryRulesetRulesArgs.__init__).parameters
    assert {"pull_request", "non_fast_forward", "deletion"} <= set(rules)
    pr = inspect.signature(pulumi_github.RepositoryRulesetRulesPullRequestArgs.__init__).parameters
    assert "required_approving_review_count" in pr
    perms = inspect.signature(pulumi_github.WorkflowRepositoryPermissions._internal_init).parameters
    assert {"default_workflow_permissions", "can_approve_pull_request_reviews"} <= set(perms)
    assert "`read` or `write`" in _param_doc(
        pulumi_github.WorkflowRepositoryPermissionsArgs, "default_workflow_permissions"
    )


def test_a_reference_to_a_missing_stack_fails_and_the_docs_say_prod_goes_first() -> None:
    """pulumi/pulumi pkg/backend/backend.go, backendClient.GetStackOutputs: a stack the backend
    cannot find is the error ``unknown stack %q`` (a StackReference fails the update or preview);
    a stack without a root stack resource reads as an empty output map. The reference names the
    current organization (pulumi.get_organization()), so both stacks live in one organization."""
    from pathlib import Path

    from infra.components import hub_readers

    root = Path(__file__).resolve().parents[2]
    assert "pulumi.get_organization()" in inspect.getsource(hub_readers.reference_name)
    readme = " ".join(root.joinpath("README.md").read_text().split())
    assert 'fail** (`unknown stack "<org>/<project>/prod"`)' in readme
    doc = " ".join(root.joinpath("docs", "github-actions.md").read_text().split())
    assert "two Pulumi organizations" not in doc
    assert "Both stacks must be in **one Pulumi organization**" in doc
