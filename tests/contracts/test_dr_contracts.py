"""What the DR runbook relies on in the installed SDKs and the AWS API models (docs/dr.md).

One test per behaviour, each naming its source. The Go side of the providers (what the
Kubernetes provider does on an unreachable cluster, when the engine replaces a resource whose
provider changed) is read upstream and transcribed in tests/drill.py, where it is cited; what
can be checked here, in the installed packages, is pinned here.
"""

from __future__ import annotations

import inspect
import json
import re
from typing import Any

import botocore.session as botocore_session
import pulumi_aws
import pulumi_kubernetes
import pytest

from infra import config as cfg
from infra import offline, providers
from tests.conftest import stack_names


def operation(service: str, name: str) -> Any:
    return botocore_session.get_session().get_service_model(service).operation_model(name)


def test_the_kubernetes_provider_takes_delete_unreachable_and_falls_back_to_the_environment() -> None:
    """pulumi-kubernetes 4.34.2 Python SDK, pulumi_kubernetes/provider.py: ``delete_unreachable``
    is an input of the provider, read from PULUMI_K8S_DELETE_UNREACHABLE when not given
    (pulumi/pulumi-kubernetes#2033, #2463; provider/pkg/provider/provider.go, v4.32.0: the
    provider input overrides the environment variable)."""
    assert "delete_unreachable" in inspect.signature(pulumi_kubernetes.Provider._internal_init).parameters
    source = inspect.getsource(pulumi_kubernetes.Provider._internal_init)
    assert "get_env_bool('PULUMI_K8S_DELETE_UNREACHABLE')" in source


def test_the_aws_provider_takes_an_sts_region_and_a_retry_limit() -> None:
    """pulumi-aws 7.51.1 Python SDK, pulumi_aws/provider.py: ``sts_region`` ("The region where AWS
    STS operations will take place") and ``max_retries`` are provider inputs."""
    params = inspect.signature(pulumi_aws.Provider._internal_init).parameters
    assert {"sts_region", "max_retries", "allowed_account_ids"} <= set(params)
    doc = inspect.getsource(pulumi_aws.Provider)
    assert "The region where AWS STS operations will take place" in doc


def test_only_the_lost_regions_providers_get_the_incident_inputs() -> None:
    """The inputs above reach exactly the providers of ``platform:unreachableRegions``: the others,
    and every provider outside an incident, keep their inputs (so the state does not change)."""
    raw = cfg.read_stack_file(cfg.stack_file("prod"))
    healthy = offline.run("prod", flat_config=raw)
    lost = healthy.config.spoke_regions[0]
    marked = offline.run("prod", flat_config={**raw, "platform:unreachableRegions": [lost]})
    before = {r.name: r.inputs for r in healthy.resources if r.is_provider}
    after = {r.name: r.inputs for r in marked.resources if r.is_provider}
    changed = {name for name in before if before[name] != after[name]}
    assert changed == {f"aws-{lost}", f"k8s-{lost}"}, changed
    assert after[f"k8s-{lost}"]["deleteUnreachable"] == "true"
    assert after[f"aws-{lost}"]["stsRegion"] == healthy.config.hub_region
    assert after[f"aws-{lost}"]["maxRetries"] == str(providers.UNREACHABLE_MAX_RETRIES)
    assert not any("deleteUnreachable" in inputs for name, inputs in before.items())


def test_an_inline_role_policy_is_put_whole_so_forgetting_and_putting_it_again_is_an_update() -> None:
    """IAM PutRolePolicy "Adds or updates an inline policy document" (botocore iam model): the
    hub move forgets an inline policy that names a resource of the lost hub and puts it again;
    the role itself is never re-created (tests/stack/test_dr_drill.py)."""
    op = operation("iam", "PutRolePolicy")
    assert op.documentation.startswith("<p>Adds or updates an inline policy document")
    assert {"RoleName", "PolicyName", "PolicyDocument"} <= set(op.input_shape.required_members)


def test_ecr_finds_an_image_by_digest_and_lists_running_backfills() -> None:
    """ECR DescribeImages takes imageIds by imageDigest (the backfill skips an image the region
    holds); ListReplicationBackfills returns each backfill's destination and status, one of
    PREPARING and IN_PROGRESS while it runs (the script follows it instead of starting another:
    "Only one replication backfill can be in progress for a given destination Region at a
    time", StartReplicationBackfill)."""
    describe = operation("ecr", "DescribeImages")
    assert "imageDigest" in describe.input_shape.members["imageIds"].member.members
    listing = operation("ecr", "ListReplicationBackfills")
    backfill = listing.output_shape.members["backfills"].member.members
    assert {"PREPARING", "IN_PROGRESS"} <= set(backfill["status"].enum)
    assert set(backfill["destination"].members) == {"region", "registryId"}
    start = operation("ecr", "StartReplicationBackfill")
    assert "Only one replication backfill can be in progress" in start.documentation


def _job_if(expression: str, variables: dict[str, str], needs: dict[str, str]) -> bool:
    """A job's ``if:`` evaluated for the forms the workflows use: ``vars.X`` (an unset variable
    is the empty string), ``needs.<job>.result``, ``!cancelled()`` (true: no run is cancelled
    here), ``==``, ``!=``, ``&&``, ``||``, parentheses; a job ``if`` with no status-check function
    gets an implicit ``success()``, false when a needed job did not succeed (GitHub docs,
    expressions, status check functions; jobs.<job_id>.needs: "If a job fails or is skipped,
    all jobs that need it are skipped unless the jobs use a conditional expression that causes
    the job to continue")."""
    text = expression.strip()
    if text.startswith("${{") and text.endswith("}}"):
        text = text[3:-2].strip()
    status_function = any(f in text for f in ("cancelled()", "always()", "success()", "failure()"))
    if not status_function and any(result != "success" for result in needs.values()):
        return False
    text = text.replace("!cancelled()", "True").replace("&&", " and ").replace("||", " or ")
    text = re.sub(r"vars\.([A-Za-z0-9_]+)", lambda m: repr(variables.get(m.group(1), "")), text)
    text = re.sub(r"needs\.([A-Za-z0-9_-]+)\.result", lambda m: repr(needs[m.group(1)]), text)
    if re.search(r"[A-Za-z_]+\(", text):
        raise NotImplementedError(expression)
    return bool(eval(text, {"__builtins__": {}}, {}))


def _workflow_jobs(name: str) -> dict[str, Any]:
    import yaml

    jobs: dict[str, Any] = yaml.safe_load((cfg.PROJECT_ROOT / ".github" / "workflows" / name).read_text())[
        "jobs"
    ]
    return jobs


def test_each_stacks_freeze_skips_only_that_stacks_jobs() -> None:
    """The freeze is per stack (``PLATFORM_FREEZE_<STACK>``, infra.dr.freeze_variable): each job of
    up.yml (its stack: the pulumi/actions step's stack-name) and deploy-prod.yml (the stack whose
    github.deployEnvironment is the job's environment) is skipped while its own stack is frozen,
    and runs while only another stack is (its ``needs`` skipped by that stack's freeze included).
    The ``vars`` context is available to ``jobs.<job_id>.if`` (GitHub docs, contexts, context
    availability); variable names are case-insensitive, letters, digits and underscores (GitHub
    docs, variables, naming conventions)."""
    from infra import dr, stackset

    stacks = stackset.load()
    jobs_of: dict[str, tuple[str, dict[str, Any]]] = {}
    up = _workflow_jobs("up.yml")
    for job_name, job in up.items():
        jobs_of[f"up.yml:{job_name}"] = (job["steps"][-1]["with"]["stack-name"], job)
    for job_name, job in _workflow_jobs("deploy-prod.yml").items():
        # The stack the deploy command is run for: the first of its arguments.
        (deployed,) = {m for step in job["steps"] for m in re.findall(r"args=\((\S+)", step.get("run", ""))}
        assert stacks[stackset.file_name(deployed)].github.deploy_environment == job["environment"]
        jobs_of[f"deploy-prod.yml:{job_name}"] = (deployed, job)
    job_stack = {
        name.split(":", 1)[1]: stack for name, (stack, _) in jobs_of.items() if name.startswith("up.yml")
    }
    all_stacks = sorted({stack for stack, _ in jobs_of.values()})
    for name, (stack, job) in jobs_of.items():
        needs = job.get("needs", [])
        needs = [needs] if isinstance(needs, str) else list(needs)
        own = {dr.freeze_variable(stack): "true"}
        assert dr.freeze_variable(stack) in job["if"], name
        # Frozen: skipped, whatever its needs did.
        for results in ({n: "success" for n in needs}, {n: "skipped" for n in needs}):
            assert not _job_if(job["if"], own, results), (name, results)
        # Nothing frozen: runs after its needs succeeded, not after a failure.
        assert _job_if(job["if"], {}, {n: "success" for n in needs}), name
        if needs:
            assert not _job_if(job["if"], {}, {n: "failure" for n in needs}), name
        # Another stack frozen (that stack's job skipped by its freeze): runs.
        for other in (s for s in all_stacks if s != stack):
            frozen = {dr.freeze_variable(other): "true"}
            results = {n: "skipped" if job_stack.get(n) == other else "success" for n in needs}
            assert _job_if(job["if"], frozen, results), (name, other)


def test_the_freeze_variable_is_a_github_variable_name_per_stack() -> None:
    """GitHub variable names: letters, digits, underscores, not starting with a digit or
    GITHUB_ (GitHub docs, variables, naming conventions); one per stack of the checkout."""
    from infra import dr, stackset

    names = {dr.freeze_variable(c.stack) for c in stackset.load().values()}
    assert len(names) == len(stackset.load())
    for name in names:
        assert re.fullmatch(r"[A-Z_][A-Z0-9_]*", name) and not name.startswith("GITHUB_"), name
    assert dr.freeze_variable("eu-prod.2") == "PLATFORM_FREEZE_EU_PROD_2"


def test_up_yml_holds_one_writer_per_stack() -> None:
    """Each up.yml job has its stack's concurrency group, never cancelled half-way (docs/dr.md)."""
    for job_name, job in _workflow_jobs("up.yml").items():
        stack = job["steps"][-1]["with"]["stack-name"]
        assert job["concurrency"] == {"group": f"pulumi-state-{stack}", "cancel-in-progress": False}, job_name


# --- pulumi-eks's children ----------------------------------------------------------------------


def test_pulumi_eks_registers_a_role_component_the_control_plane_and_a_provider_under_each_cluster() -> None:
    """pulumi/pulumi-eks nodejs/eks/cluster/cluster.ts (main 7bf0c1b1: v4.3.0 plus nine
    dependency-only commits; 4.4.0 installed, not in the copy read), ``createCore``: with no
    ``serviceRole``, ``new ServiceRole(`${name}-eksRole`, ..., { parent, provider })``
    (nodejs/eks/servicerole.ts: ``aws.iam.Role(`${name}-role`)`` and one
    ``aws.iam.RolePolicyAttachment(`${name}-${sha1hash(policy.id)}`)`` per managed policy,
    sha1hash = the first 8 hex digits, policy id "arn:aws:iam::aws:policy/AmazonEKSClusterPolicy"),
    ``new aws.eks.Cluster(`${name}-eksCluster`, ..., { parent, ... })`` and
    ``new k8s.Provider(`${name}-eks-k8s`, ..., { parent })``. A child's URN type is its parent's
    type chain, ``$``, its type (pulumi/pulumi v3.259.0 sdk/go/common/resource/urn/urn.go ``New``)."""
    from infra import dr

    for stack in ("prod", "staging"):
        plan = offline.run(stack)
        for component in plan.of_type(dr.EKS_COMPONENT):
            chain = component.urn.rsplit("::", 1)[0]
            children = {(c.type, c.urn) for c in dr.eks_children(component)}
            n = component.name
            role_chain = f"{chain}$eks:index:ServiceRole"
            assert children == {
                ("eks:index:ServiceRole", f"{role_chain}::{n}-eksRole"),
                ("aws:iam/role:Role", f"{role_chain}$aws:iam/role:Role::{n}-eksRole-role"),
                (
                    "aws:iam/rolePolicyAttachment:RolePolicyAttachment",
                    f"{role_chain}$aws:iam/rolePolicyAttachment:RolePolicyAttachment::{n}-eksRole-4b490823",
                ),
                ("aws:eks/cluster:Cluster", f"{chain}$aws:eks/cluster:Cluster::{n}-eksCluster"),
                ("pulumi:providers:kubernetes", f"{chain}$pulumi:providers:kubernetes::{n}-eks-k8s"),
            }
            # Children inherit protect and the aws provider (sdk/nodejs/resource.ts v3.259.0).
            for child in dr.eks_children(component):
                assert child.protect == component.protect
                if child.custom and not child.is_provider:
                    assert child.provider == component.providers["aws"]


def test_pulumi_eks_options_that_would_add_children_are_refused() -> None:
    """cluster.ts (as above): ``skipDefaultSecurityGroups`` false adds ``<name>-nodeSecurityGroup``
    and its ingress rule, ``skipDefaultNodeGroup`` false a node group and ``<name>-instanceRole``,
    ``useDefaultVpcCni`` false ``<name>-vpc-cni``, ``createOidcProvider`` ``<name>-oidcProvider``,
    authentication mode CONFIG_MAP the ``<name>-nodeAccess`` ConfigMap, CoreDNS/kube-proxy add-on
    options enabled ``<name>-coredns`` / ``<name>-kube-proxy``, ``storageClasses`` one
    StorageClass each: the list would be wrong, so it is refused. The option names are the
    installed pulumi-eks 4.4.0 SDK's (pulumi_eks/cluster.py)."""
    import dataclasses

    import pulumi_eks

    from infra import dr

    params = set(inspect.signature(pulumi_eks.Cluster._internal_init).parameters)
    assert {
        "skip_default_node_group",
        "skip_default_security_groups",
        "use_default_vpc_cni",
        "create_oidc_provider",
        "authentication_mode",
        "coredns_addon_options",
        "kube_proxy_addon_options",
        "storage_classes",
        "service_role",
        "fargate",
        "auto_mode",
        "access_entries",
    } <= params
    component = offline.run("prod").of_type(dr.EKS_COMPONENT)[0]
    for key, value in (
        ("skipDefaultSecurityGroups", False),
        ("skipDefaultNodeGroup", False),
        ("useDefaultVpcCni", False),
        ("createOidcProvider", True),
        ("authenticationMode", "API_AND_CONFIG_MAP"),
        ("corednsAddonOptions", {"enabled": True}),
        ("kubeProxyAddonOptions", {}),
        ("storageClasses", "gp3"),
        ("fargate", True),
    ):
        changed = dataclasses.replace(component, inputs={**component.inputs, key: value})
        try:
            dr.eks_children(changed)
        except dr.UnreadEksOptions as exc:
            assert key in str(exc)
        else:
            raise AssertionError(f"{key}={value!r} was not refused")


def pulumi_eks_provider_token_args(
    inputs: dict[str, Any], name: str, region: str, env: dict[str, str], aws_config: dict[str, str]
) -> list[str]:
    """The ``aws`` arguments of the kubeconfig pulumi-eks gives its own provider ``<name>-eks-k8s``.

    pulumi/pulumi-eks nodejs/eks/cluster/cluster.ts (main 7bf0c1b1 = v4.3.0 plus nine
    dependency-only commits; no 4.4.0 tag in the copy read): ``createCluster`` sets
    ``args.providerCredentialOpts = { profileName: process.env.AWS_PROFILE }`` when
    ``AWS_PROFILE`` is set and ``!args.providerCredentialOpts``, then the same from the ``aws:profile``
    config; ``createCore`` builds the provider's kubeconfig with ``genKubeconfig(true)``, and
    ``generateKubeconfig`` appends ``--role`` for ``roleArn`` and, with ``includeProfile``,
    ``--profile`` for ``profileName``. (The component's ``kubeconfig`` output is
    ``genKubeconfig(false)``, without the profile.) JavaScript truthiness: an absent input is
    falsy, an empty object is not. ``creationRoleProvider`` is not transcribed."""
    if inputs.get("creationRoleProvider") is not None:
        raise NotImplementedError("creationRoleProvider is not transcribed")
    opts = inputs.get("providerCredentialOpts")
    if env.get("AWS_PROFILE") and opts is None:
        opts = {"profileName": env["AWS_PROFILE"]}
    if aws_config.get("profile") and opts is None:
        opts = {"profileName": aws_config["profile"]}
    args = ["--region", region, "eks", "get-token", "--cluster-name", name, "--output", "json"]
    if opts and opts.get("roleArn"):
        args += ["--role", opts["roleArn"]]
    if opts and opts.get("profileName"):
        args += ["--profile", opts["profileName"]]
    return args


def test_pulumi_eks_keeps_the_operators_profile_out_of_its_providers_kubeconfig() -> None:
    """pulumi-eks (transcribed in :func:`pulumi_eks_provider_token_args`) writes the running
    process's ``AWS_PROFILE`` into its provider ``<name>-eks-k8s``'s kubeconfig as ``--profile``
    unless ``providerCredentialOpts`` is given. The runbook runs ``AWS_PROFILE=<stack> pulumi ...``
    from a workstation; CI runs with no profile. The program passes an empty
    ``providerCredentialOpts`` (infra/components/cluster.py), so the provider's kubeconfig is the
    same whoever runs ``up``: no diff after a DR update, none in the runbook's
    ``preview --expect-no-changes`` after CI's updates, and no profile CI lacks in the state.
    The input is the installed pulumi-eks 4.4.0 SDK's (pulumi_eks/cluster.py
    ``provider_credential_opts``, ``KubeconfigOptionsArgs``)."""
    import pulumi_eks

    from infra import dr

    assert "provider_credential_opts" in inspect.signature(pulumi_eks.Cluster._internal_init).parameters
    assert set(inspect.signature(pulumi_eks.KubeconfigOptionsArgs.__init__).parameters) >= {"profile_name"}
    for stack in stack_names():
        plan = offline.run(stack)
        for component in plan.of_type(dr.EKS_COMPONENT):
            name, region = component.inputs["name"], plan.region_of(component)
            assert region is not None
            ci = pulumi_eks_provider_token_args(component.inputs, name, region, {}, {})
            for env, aws_config in (({"AWS_PROFILE": stack}, {}), ({}, {"profile": stack})):
                workstation = pulumi_eks_provider_token_args(component.inputs, name, region, env, aws_config)
                assert workstation == ci, (component.urn, workstation)
            assert "--profile" not in ci and "--role" not in ci
            # Without the empty options the workstation's profile lands in the state.
            unpinned = {k: v for k, v in component.inputs.items() if k != "providerCredentialOpts"}
            leaked = pulumi_eks_provider_token_args(unpinned, name, region, {"AWS_PROFILE": stack}, {})
            assert leaked[-2:] == ["--profile", stack]


def test_pulumi_eks_waits_for_a_public_endpoint_up_to_sixty_tries_of_a_second_and_five() -> None:
    """pulumi/pulumi-eks nodejs/eks/cluster/cluster.ts ``createCore`` (main 7bf0c1b1 = v4.3.0 plus
    nine dependency-only commits; no 4.4.0 tag in the copy read): ``if
    (!pulumi.runtime.isDryRun() && args.endpointPublicAccess)``, ``maxRetries = 60``,
    ``reqTimeoutMilliseconds = 1000`` (the https request to ``${clusterEndpoint}/healthz``),
    ``timeoutMilliseconds = 5000`` (the pause after each failed try); the endpoint output (and the
    kubeconfig built from it) resolves only after. The bench table's wait, which the DR runbook's
    update steps add, is that worst case."""
    from infra import bench

    max_retries, request_ms, pause_ms = 60, 1000, 5000
    assert max_retries * (request_ms + pause_ms) / 1000 == bench.EKS_ENDPOINT_WAIT_SECONDS
    assert (
        "pulumi-eks endpoint wait, endpoint that does not answer (DR runbook)",
        360.0,
    ) in bench.TYPICAL_TABLE_ROWS


# --- What a lost region's providers do ----------------------------------------------------------


def test_delete_unreachable_is_the_provider_input_else_the_environment_variable() -> None:
    """pulumi/pulumi-kubernetes provider/pkg/provider/provider.go (v4.32.0, the newest tag in the
    copy read; the head of 2026-07-01 has the same lines; 4.34.2 installed, not read at its tag),
    ``Configure``: ``deleteUnreachable`` is ``vars["kubernetes:config:deleteUnreachable"] ==
    "true"`` if that input exists, else ``os.LookupEnv("PULUMI_K8S_DELETE_UNREACHABLE") ==
    "true"`` if the variable exists, else false; ``Read`` on an unreachable cluster with it returns
    the "deleted" response (the object leaves the state) and without it fails "... rerunning the
    operation with the PULUMI_K8S_DELETE_UNREACHABLE environment variable set to "true"". The
    drill's engine (tests/drill.py) decides with this transcription."""
    from tests.drill import delete_unreachable

    env = {"PULUMI_K8S_DELETE_UNREACHABLE": "true"}
    assert delete_unreachable({"deleteUnreachable": "true"}, {})
    assert not delete_unreachable({"deleteUnreachable": "false"}, env)  # the input wins
    assert delete_unreachable({}, env)
    assert not delete_unreachable({}, {"PULUMI_K8S_DELETE_UNREACHABLE": "1"})  # only "true"
    assert not delete_unreachable({}, {})
    # The runbook's refreshes set the variable, and the program sets the input only to true
    # (an explicit false would override the variable).
    from infra import dr

    assert dr.DELETE_UNREACHABLE_ENV == "PULUMI_K8S_DELETE_UNREACHABLE"
    raw = cfg.read_stack_file(cfg.stack_file("prod"))
    lost = offline.run("prod").config.spoke_regions[0]
    marked = offline.run("prod", flat_config={**raw, "platform:unreachableRegions": [lost]})
    values = {r.inputs.get("deleteUnreachable") for r in marked.of_type("pulumi:providers:kubernetes")}
    assert values <= {None, "true"}


def test_the_lost_regions_aws_provider_calls_sts_in_a_reachable_region() -> None:
    """pulumi-aws 7.51.1 ``stsRegion``: "The region where AWS STS operations will take place"
    (pulumi_aws/provider.py); the Terraform AWS provider it wraps uses the AWS SDK for Go v2,
    whose STS endpoint is regional by default (https://docs.aws.amazon.com/sdkref/latest/guide/feature-sts-regionalized-endpoints.html:
    sts.<region>.amazonaws.com). botocore 1.44's endpoint rules resolve the same host. So the
    marked region's provider authenticates at the reachable region's STS host, never the lost one's."""
    raw = cfg.read_stack_file(cfg.stack_file("prod"))
    healthy = offline.run("prod", flat_config=raw)
    lost = healthy.config.spoke_regions[0]
    marked = offline.run("prod", flat_config={**raw, "platform:unreachableRegions": [lost]})
    provider = marked.one("pulumi:providers:aws", f"aws-{lost}")
    sts_region = provider.inputs["stsRegion"]
    assert sts_region != lost and sts_region in healthy.config.region_names
    session = botocore_session.get_session()
    client = session.create_client(
        "sts", region_name=sts_region, aws_access_key_id="x", aws_secret_access_key="y"
    )
    assert client.meta.endpoint_url == f"https://sts.{sts_region}.amazonaws.com"
    lost_client = session.create_client(
        "sts", region_name=lost, aws_access_key_id="x", aws_secret_access_key="y"
    )
    assert lost_client.meta.endpoint_url != client.meta.endpoint_url


def test_ecr_describe_images_by_tag_as_the_backfill_uses_it() -> None:
    """ECR DescribeImages (botocore ecr 2015-09-21 model; https://docs.aws.amazon.com/AmazonECR/latest/APIReference/API_DescribeImages.html):
    ``imageIds`` by ``imageTag`` (the script asks whether the region's tag names the digest it
    would copy); a tag that is not there is ImageNotFoundException ("The image requested does
    not exist in the specified repository"), so the CLI fails and the script copies; ``filter``
    ``tagStatus`` TAGGED; each ImageDetail has ``imageDigest``, ``imageTags``, ``imagePushedAt``
    (the script's --query). The script uses exactly these."""
    from infra import stackset
    from infra.documents import ecr as ecr_documents

    describe = operation("ecr", "DescribeImages")
    assert "imageTag" in describe.input_shape.members["imageIds"].member.members
    assert "TAGGED" in describe.input_shape.members["filter"].members["tagStatus"].enum
    detail = describe.output_shape.members["imageDetails"].member.members
    assert {"imageDigest", "imageTags", "imagePushedAt"} <= set(detail)
    missing = next(e for e in describe.error_shapes if e.name == "ImageNotFoundException")
    assert "does not exist" in missing.documentation
    # The copy path: the source stack's primary region, rebuilt (no replication reaches it).
    config = next(c for c in stackset.load().values() if c.builds_images)
    script = "\n".join(ecr_documents.backfill_commands(config, config.ecr.primary_region))
    assert "--image-ids imageTag=" in script and "--filter tagStatus=TAGGED" in script
    assert "imageDetails[0].imageDigest" in script and "imagePushedAt" in script


def test_the_aws_cli_queries_the_whole_describe_images_result_only_with_json_output() -> None:
    """The AWS CLI follows DescribeImages' pages itself (botocore's ecr paginator: ``nextToken``,
    result key ``imageDetails``; without ``maxResults`` a page holds "up to 100 results", botocore
    ecr model) and applies ``--query`` once to the merged result with ``--output json``, but once
    per page with ``--output text`` (aws/aws-cli awscli/formatter.py, tags 1.45.11 and 2.27.0:
    FullyBufferedFormatter vs TextFormatter; https://docs.aws.amazon.com/cli/latest/userguide/cli-usage-filter.html).
    The crane backfill's "newest N" query therefore runs with ``--output json`` (then jq): with
    text, a repository of two pages gives the newest N of each page."""
    import jmespath

    from infra import stackset
    from infra.documents import ecr as ecr_documents
    from tests.contracts import aws_cli

    pager = botocore_session.get_session().get_paginator_model("ecr").get_paginator("DescribeImages")
    assert (pager["output_token"], pager["limit_key"], pager["result_key"]) == (
        "nextToken",
        "maxResults",
        "imageDetails",
    )
    limit = operation("ecr", "DescribeImages").input_shape.members["maxResults"].documentation
    assert f"up to {aws_cli.ECR_DESCRIBE_IMAGES_PAGE} results" in limit
    config = next(c for c in stackset.load().values() if c.builds_images)
    script = "\n".join(ecr_documents.backfill_commands(config, config.ecr.primary_region))
    queries = re.findall(r"--filter tagStatus=TAGGED --query '([^']+)' --output (\w+)", script)
    assert queries and all(output == "json" for _, output in queries), queries
    query = queries[0][0]
    # Two pages, pushed in an order that puts older images on the first page.
    page = aws_cli.ECR_DESCRIBE_IMAGES_PAGE
    images: list[dict[str, Any]] = [
        {"imageDigest": f"sha256:{i:064x}", "imageTags": [f"v{i}"], "imagePushedAt": 1_700_000_000 + i}
        for i in range(page + page // 2)
    ]
    pages = [{"imageDetails": images[:page]}, {"imageDetails": images[page:]}]
    newest = [
        [d["imageDigest"], d["imageTags"][0]] for d in sorted(images, key=lambda d: -int(d["imagePushedAt"]))
    ]
    whole = json.loads(aws_cli.aws_cli_query_output(pages, query, "json"))
    assert (
        whole == newest[: ecr_documents.BACKFILL_NEWEST] == jmespath.search(query, {"imageDetails": images})
    )
    per_page = aws_cli.aws_cli_query_output(pages, query, "text").splitlines()
    assert len(per_page) == 2 * ecr_documents.BACKFILL_NEWEST  # what --output text would have copied


def test_secrets_manager_promotes_a_replica_in_its_own_region_and_describes_its_primary() -> None:
    """botocore's Secrets Manager model (the API the runbook's "Argo CD's secrets" step calls, with
    the AWS CLI built on it): StopReplicationToReplica takes only SecretId and is called "from the
    replica account or Region", promoting a cross-Region replica "to a standalone primary secret in
    the replica Region" (https://docs.aws.amazon.com/secretsmanager/latest/userguide/standalone-secret.html);
    DescribeSecret returns PrimaryRegion; CreateSecret takes AddReplicaRegions (day 0,
    docs/addons.md) and ReplicateSecretToRegions adds a region later (docs/walkthroughs.md); a
    primary with replicas is deleted only after RemoveRegionsFromReplication, which deletes them
    (DeleteSecret; docs/dr.md, when the old hub's region returns)."""
    stop = operation("secretsmanager", "StopReplicationToReplica")
    assert list(stop.input_shape.members) == ["SecretId"]
    text = " ".join(stop.documentation.split())
    assert "from the replica account or Region" in text
    assert "promotes the replica to a standalone primary secret in the replica Region" in text
    assert "PrimaryRegion" in operation("secretsmanager", "DescribeSecret").output_shape.members
    create = operation("secretsmanager", "CreateSecret").input_shape.members
    assert "AddReplicaRegions" in create
    assert "AddReplicaRegions" in operation("secretsmanager", "ReplicateSecretToRegions").input_shape.members
    # docs/dr.md's clean-up order when the old hub's region returns.
    delete = " ".join(operation("secretsmanager", "DeleteSecret").documentation.split())
    assert "You must first delete the replicas using <a>RemoveRegionsFromReplication</a>" in delete
    remove = " ".join(operation("secretsmanager", "RemoveRegionsFromReplication").documentation.split())
    assert "deletes the secret replicas from the Regions you specify" in remove


def test_a_moved_hubs_argo_cd_store_role_reads_the_replica_in_its_region() -> None:
    """ "The ARN for a replicated secret is the same as the primary secret except for the Region"
    (https://docs.aws.amazon.com/secretsmanager/latest/userguide/replicate-secrets.html): after a
    hub move, Argo CD's store role (one per environment, updated in place: infra/addons.py
    ``store_roles``) reads the replica of each of Argo CD's secrets in the new hub's region, and
    nothing in the old one; ``?`` in a policy's resource ARN matches one character (IAM user
    guide, "IAM JSON policy elements: Resource")."""
    import fnmatch

    from infra import addons, dr

    checked = 0
    for stack in stack_names():
        config = cfg.load_stack_file(stack)
        if not config.spoke_regions:
            continue
        old, new = config.hub_region, config.spoke_regions[0]
        moved = dr.hub_move(offline.run(stack), new)[0].config
        if new not in moved.addon_regions("external-secrets"):
            continue
        # The policy the moved plan declares on Argo CD's store role.
        role = addons.store_role_name(moved, new, addons.STORE_ARGOCD)
        (policy,) = [
            json.loads(r.inputs["policy"])
            for r in dr.hub_move(offline.run(stack), new)[0].of_type("aws:iam/rolePolicy:RolePolicy")
            if r.inputs.get("role") == role
        ]
        readable = [
            p
            for st in policy["Statement"]
            if st["Effect"] == "Allow" and "secretsmanager:GetSecretValue" in st["Action"]
            for p in st["Resource"]
        ]
        for name in addons.argocd_secret_names(moved):
            primary = f"arn:aws:secretsmanager:{old}:{config.account_id}:secret:{name}-AbC123"
            replica = primary.replace(f":{old}:", f":{new}:", 1)
            assert [p for p in readable if fnmatch.fnmatchcase(replica, p)], (stack, replica)
            assert not [p for p in readable if fnmatch.fnmatchcase(primary, p)], (stack, primary)
            checked += 1
    if not checked:
        pytest.skip("no stack with a spoke runs External Secrets on it: no store role to check")


FAKE_GH_AND_AWS = """#!/bin/bash
# `gh variable get NAME --repo R` as cli/cli pkg/cmd/variable/get/get.go getRun (read at 44ee177)
# answers: the value and a newline on 200; "variable NAME was not found" and a non-zero exit on 404.
# `gh variable set` records the call. `aws eks describe-cluster --query cluster.status` prints the
# status, or fails (the region does not answer, or the cluster does not exist).
name=$(basename "$0")
echo "$name $*" >> "$CALLS"
if [ "$name" = gh ] && [ "$1 $2" = "variable get" ]; then
  case "$FROZEN" in
    "") echo "variable $3 was not found" >&2; exit 1;;
    error) echo "HTTP 401: Bad credentials (https://api.github.com/repos/acme/platform)" >&2; exit 1;;
    *) echo "$FROZEN";;
  esac
elif [ "$name" = aws ]; then
  [ -n "$STATUS" ] || { echo "An error occurred (ResourceNotFoundException)" >&2; exit 254; }
  echo "$STATUS"
fi
"""


def test_another_lost_hubs_freeze_is_set_unless_its_runbook_has_finished(tmp_path: Any) -> None:
    """The freeze of another stack whose hub is lost too (infra.dr.Freeze ``unless_recovered``)
    runs `gh variable set` while that stack's freeze variable reads ``true`` (`gh variable get`:
    cli/cli getRun prints the value; a missing variable fails, 404) or its hub cluster is not
    ``ACTIVE`` (EKS DescribeCluster ``cluster.status``, one of the model's enum values); only a
    finished runbook (hub ACTIVE, variable deleted) is left alone. A gh failure other than the 404
    counts as frozen, here and in the nested runbook's check (infra.dr.is_frozen_check)."""
    import subprocess

    from infra import dr

    status = operation("eks", "DescribeCluster").output_shape.members["cluster"].members["status"]
    assert "ACTIVE" in status.enum
    freeze = dr.Freeze(
        "other", "acme/platform", unless_recovered=dr.HubCheck("platform-other-r", "r", "other")
    )
    for tool in ("gh", "aws"):
        (tmp_path / tool).write_text(FAKE_GH_AND_AWS)
        (tmp_path / tool).chmod(0o755)

    def sets(frozen: str, cluster_status: str) -> bool:
        calls = tmp_path / "calls"
        calls.write_text("")
        env = {
            "PATH": f"{tmp_path}:/usr/bin:/bin",
            "CALLS": str(calls),
            "FROZEN": frozen,
            "STATUS": cluster_status,
        }
        done = subprocess.run(
            ["bash", "-c", freeze.command()], env=env, capture_output=True, text=True, check=False
        )
        assert done.returncode == 0, done.stderr
        return "gh variable set PLATFORM_FREEZE_OTHER --body true" in calls.read_text()

    assert sets("true", "ACTIVE")  # its runbook is under way
    assert sets("", "")  # its hub is not back (the call fails)
    assert sets("", "CREATING")
    assert not sets("", "ACTIVE")  # finished: hub back, freeze lifted
    assert sets("error", "ACTIVE")  # gh cannot tell: frozen again, never skipped
    # The source's runbook run inside another's is skipped only on "was not found".
    nested = dr.SourceRunbook("other", "acme/platform", "echo RUNS", book=None)  # type: ignore[arg-type]
    for frozen, runs in (("true", True), ("error", True), ("", False)):
        env = {
            "PATH": f"{tmp_path}:/usr/bin:/bin",
            "CALLS": str(tmp_path / "calls"),
            "FROZEN": frozen,
            "STATUS": "",
        }
        done = subprocess.run(
            ["bash", "-c", nested.command()], env=env, capture_output=True, text=True, check=False
        )
        assert ("RUNS" in done.stdout) == runs, (frozen, done.stdout)


FAKE_GH_PR = """#!/bin/bash
# `gh pr merge` / `gh pr view` / `gh variable delete` and `git` as the runbook's merge step calls
# them, answering as cli/cli 44ee177 does. pkg/cmd/pr/merge/merge.go: no method and no terminal
# -> "--merge, --rebase, or --squash required when not running interactively" (a flag error,
# non-zero); mergeStateStatus BLOCKED -> canMerge prints "not mergeable: the base branch policy
# prohibits the merge" and returns SilentError (non-zero); --match-head-commit is sent as
# expectedHeadOid (pkg/cmd/pr/merge/http.go), which GitHub refuses when the head moved; --auto on a
# pull request that is not immediately mergeable enables auto-merge and exits 0 without merging.
# `gh pr view --json state --jq .state` prints OPEN, CLOSED or MERGED (api/query_builder.go).
name=$(basename "$0")
echo "$name $*" >> "$CALLS"
if [ "$name" = git ]; then
  case "$1" in
    branch) echo "dr/prod-r-20260101T0000Z";;
    rev-parse) echo "$LOCAL_HEAD";;
    # `git diff --quiet BASE origin/main -- F` (main moved?): no, unless MOVED_RC=1; `git diff
    # --quiet origin/main -- F` (main holds the checkout's files?): once the pull request is merged.
    diff) [ "$4" = origin/main ] && exit "${MOVED_RC:-0}"; grep -qx MERGED "$STATE" 2>/dev/null && exit 0; exit 1;;
  esac
  exit 0
fi
if [ "$1 $2" = "pr view" ]; then
  cat "$STATE"; exit 0
fi
if [ "$1 $2" = "pr merge" ]; then
  method=""; head=""; auto=""
  while [ $# -gt 0 ]; do
    case "$1" in
      --squash|--merge|--rebase) method="$1";;
      --auto) auto=1;;
      --match-head-commit) head="$2"; shift;;
    esac
    shift
  done
  [ -n "$method" ] || { echo "--merge, --rebase, or --squash required when not running interactively" >&2; exit 1; }
  if [ "$MERGE_STATE" != CLEAN ]; then
    if [ -n "$auto" ]; then echo "Pull request will be automatically merged when all requirements are met"; exit 0; fi
    echo "X Pull request acme/platform#1 is not mergeable: the base branch policy prohibits the merge." >&2
    exit 1
  fi
  if [ -n "$head" ] && [ "$head" != "$PR_HEAD" ]; then
    echo "GraphQL: Head branch was modified. Review and try the merge again. (mergePullRequest)" >&2
    exit 1
  fi
  echo MERGED > "$STATE"
  # GitHub's squash merge, where a real git stands for it: main takes the branch's files.
  if [ -n "$MERGE_PUSH" ]; then git push -q origin HEAD:main || exit 1; fi
  exit 0
fi
if [ "$1 $2" = "pr create" ]; then echo OPEN > "$STATE"; exit 0; fi
if [ "$1 $2" = "variable delete" ]; then exit 0; fi
if [ "$1 $2" = "variable get" ]; then echo "variable $3 was not found" >&2; exit 1; fi
exit 0
"""


def test_the_merge_step_lifts_the_freeze_only_after_github_reports_the_pull_request_merged(
    tmp_path: Any,
) -> None:
    """infra.dr.MergeAndLift against a gh that answers as cli/cli 44ee177 does
    (pkg/cmd/pr/merge/merge.go ``canMerge``/``blockedReason``: BLOCKED exits non-zero; the method
    flag is required without a terminal; ``--match-head-commit`` -> ``expectedHeadOid``,
    pkg/cmd/pr/merge/http.go; ``--auto`` on a pull request that is not immediately mergeable exits 0
    without merging, ``isImmediatelyMergeable``; ``gh pr view --json state`` prints MERGED only once
    merged, api/query_builder.go): the freezes are lifted, in order, only after a merge that went
    through and the MERGED check; an unapproved (BLOCKED) pull request, a head that moved, or a
    merge that was only queued lifts nothing."""
    import dataclasses
    import subprocess

    from infra import dr

    lifts = (
        dr.Freeze("staging", "acme/platform", lift=True, or_lifted=True),
        dr.Freeze("prod", "acme/platform", lift=True),
    )
    step = dr.MergeAndLift("prod", "acme/platform", lifts)
    command = step.command()
    assert "--squash" in command and '--match-head-commit "$(git rev-parse HEAD)"' in command
    for tool in ("gh", "git"):
        (tmp_path / tool).write_text(FAKE_GH_PR)
        (tmp_path / tool).chmod(0o755)

    def run(merge_state: str, local_head: str = "abc", text: str = command) -> tuple[int, list[str]]:
        calls, state = tmp_path / "calls", tmp_path / "state"
        calls.write_text("")
        state.write_text("OPEN\n")
        env = {
            "PATH": f"{tmp_path}:/usr/bin:/bin",
            "CALLS": str(calls),
            "STATE": str(state),
            "MERGE_STATE": merge_state,
            "PR_HEAD": "abc",
            "LOCAL_HEAD": local_head,
        }
        done = subprocess.run(["bash", "-c", text], env=env, capture_output=True, text=True, check=False)
        return done.returncode, calls.read_text().splitlines()

    def deleted(calls: list[str]) -> list[str]:
        return [c.split()[3] for c in calls if c.startswith("gh variable delete")]

    code, calls = run("CLEAN")
    assert code == 0 and deleted(calls) == ["PLATFORM_FREEZE_STAGING", "PLATFORM_FREEZE_PROD"]
    merge_at = next(i for i, c in enumerate(calls) if c.startswith("gh pr merge"))
    view_at = next(i for i, c in enumerate(calls) if c.startswith("gh pr view"))
    first_lift = next(i for i, c in enumerate(calls) if c.startswith("gh variable delete"))
    assert merge_at < view_at < first_lift
    # Not approved: BLOCKED, non-zero, nothing lifted.
    code, calls = run("BLOCKED")
    assert code != 0 and deleted(calls) == []
    # The branch's head is not the pull request's (a push after the review): refused.
    code, calls = run("CLEAN", local_head="def")
    assert code != 0 and deleted(calls) == []
    # Without a method gh refuses outright (no terminal).
    code, calls = run("CLEAN", text=command.replace(" --squash", ""))
    assert code != 0 and deleted(calls) == []
    # Queued instead of merged (--auto): gh exits 0, the MERGED check stops the lifts.
    queued = dataclasses.replace(step).command().replace("--squash", "--squash --auto")
    code, calls = run("BLOCKED", text=queued)
    assert code != 0 and deleted(calls) == []
    # cli/cli's sources say the same.
    from pathlib import Path

    mirror = Path("/work/.mirror/cli+cli/repo")
    if mirror.exists():
        merge_go = subprocess.run(
            ["git", "-C", str(mirror), "show", "44ee177:pkg/cmd/pr/merge/merge.go"],
            capture_output=True,
            text=True,
            check=False,
        ).stdout
        if merge_go:
            assert "the base branch policy prohibits the merge" in merge_go
            assert "--merge, --rebase, or --squash required when not running interactively" in merge_go
            assert "expectedHeadOid: m.opts.MatchHeadCommit" in merge_go


def test_the_inner_runbooks_commit_is_what_the_outer_skip_check_finds(tmp_path: Any) -> None:
    """A runbook run inside another's commits its stack file on the outer branch with the subject
    ``DR: <region> of <stack>`` (an empty commit when the file did not change: a rebuild), and the
    outer runbook's step that runs it is skipped when ``git log --format=%s origin/main..HEAD``
    lists that subject (git log: ``A..B`` is the commits reachable from B and not from A, and
    ``%s`` the subject: git-log(1) and gitrevisions(7)), even while its freeze is still set; it
    runs while the commit is not there and the freeze is set."""
    import shutil
    import subprocess

    from infra import dr

    if shutil.which("git") is None:
        pytest.skip("git is not installed")
    repo = tmp_path / "repo"
    env = {
        "PATH": "/usr/bin:/bin",
        "HOME": str(tmp_path),
        "GIT_AUTHOR_NAME": "t",
        "GIT_AUTHOR_EMAIL": "t@example.com",
        "GIT_COMMITTER_NAME": "t",
        "GIT_COMMITTER_EMAIL": "t@example.com",
    }

    def sh(
        text: str, cwd: Any = repo, extra: dict[str, str] | None = None
    ) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            ["bash", "-c", text],
            cwd=cwd,
            env={**env, **(extra or {})},
            capture_output=True,
            text=True,
            check=False,
        )

    origin = tmp_path / "origin.git"
    assert sh(f"git init -q --bare {origin}", cwd=tmp_path).returncode == 0
    assert (
        sh(
            f"git init -q -b main {repo} && cd {repo} && echo a > Pulumi.staging.yaml && git add . && "
            f"git commit -qm init && git remote add origin {origin} && git push -q origin main && "
            "git fetch -q origin && git switch -qc dr/prod-r-x",
            cwd=tmp_path,
        ).returncode
        == 0
    )
    commit = dr.Commit("staging", "r")
    nested = dr.SourceRunbook("staging", "acme/platform", "echo RUNS", book=None, region="r")  # type: ignore[arg-type]
    gh = tmp_path / "bin"
    gh.mkdir()
    (gh / "gh").write_text(FAKE_GH_AND_AWS)
    (gh / "gh").chmod(0o755)
    frozen = {"PATH": f"{gh}:/usr/bin:/bin", "CALLS": str(tmp_path / "calls"), "FROZEN": "true", "STATUS": ""}
    assert "RUNS" in sh(nested.command(), extra=frozen).stdout
    # Unchanged file (a rebuild): still one commit with the subject, empty: another stack's file
    # staged in the checkout stays out of it (git-commit(1): --only with --allow-empty and no path).
    (repo / "Pulumi.other.yaml").write_text("x\n")
    assert sh("git add Pulumi.other.yaml").returncode == 0
    done = sh(commit.command())
    assert done.returncode == 0, done.stderr
    assert sh("git log --format=%s origin/main..HEAD").stdout.split("\n")[0] == "DR: r of staging"
    assert sh("git show --name-only --format= HEAD").stdout.strip() == ""
    assert sh("git status --porcelain").stdout.startswith("A  Pulumi.other.yaml")
    assert sh("git reset -q Pulumi.other.yaml && rm Pulumi.other.yaml").returncode == 0
    out = sh(nested.command(), extra=frozen).stdout
    assert "RUNS" not in out and "finished on this branch" in out
    # A changed file is committed with it.
    (repo / "Pulumi.staging.yaml").write_text("b\n")
    assert sh(commit.command()).returncode == 0
    assert sh("git status --porcelain").stdout == ""


def test_the_pull_request_and_the_lift_follow_what_main_holds(tmp_path: Any) -> None:
    """infra.dr.main_holds / main_moved against real git (``git diff <commit> -- <paths>``: the
    working tree against a commit; ``git diff <a> <b> -- <paths>``: two commits; ``--quiet``
    exits 0 when they are the same: git-diff(1); the merge base: git-merge-base(1); ``git fetch
    origin main`` updates origin/main: git-fetch(1)), with a gh that answers as cli/cli 44ee177
    does and a squash merge played by a push to the bare origin. A rebuild's branch (its mark
    committed, then cleared) opens no pull request and its merge step lifts at once; an
    uncommitted edit never lifts; a changed file is pushed, gets one pull request (a retried step
    opens no second one and adds no second commit), is merged, and only then lifted; a pull
    request merged into main meanwhile that changed the same file stops both steps, and nothing is
    lifted."""
    import shutil
    import subprocess

    from infra import dr

    if shutil.which("git") is None:
        pytest.skip("git is not installed")
    env = {
        "PATH": f"{tmp_path / 'bin'}:/usr/bin:/bin",
        "HOME": str(tmp_path),
        "GIT_AUTHOR_NAME": "t",
        "GIT_AUTHOR_EMAIL": "t@example.com",
        "GIT_COMMITTER_NAME": "t",
        "GIT_COMMITTER_EMAIL": "t@example.com",
        "CALLS": str(tmp_path / "calls"),
        "STATE": str(tmp_path / "state"),
        "MERGE_STATE": "CLEAN",
        "MERGE_PUSH": "1",
    }
    (tmp_path / "bin").mkdir()
    (tmp_path / "bin" / "gh").write_text(FAKE_GH_PR)  # only gh is faked: git is the real one
    (tmp_path / "bin" / "gh").chmod(0o755)
    repo, origin, other = tmp_path / "repo", tmp_path / "origin.git", tmp_path / "other"

    def sh(text: str, cwd: Any = repo) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            ["bash", "-c", text], cwd=cwd, env=env, capture_output=True, text=True, check=False
        )

    assert sh(f"git init -q --bare -b main {origin}", cwd=tmp_path).returncode == 0
    setup = sh(
        f"git init -q -b main {repo} && cd {repo} && echo a > Pulumi.prod.yaml && echo s > Pulumi.staging.yaml && "
        f"git add . && git commit -qm init && git remote add origin {origin} && git push -q -u origin main && "
        "git switch -qc dr/prod-r-x && echo marked > Pulumi.prod.yaml && git commit -qam mark && "
        "echo a > Pulumi.prod.yaml",
        cwd=tmp_path,
    )
    assert setup.returncode == 0, setup.stderr
    lift = dr.Freeze("prod", "acme/platform", lift=True)
    open_pr = dr.OpenPullRequest("prod", "r", "acme/platform", "body")
    merge = dr.MergeAndLift("prod", "acme/platform", (lift,))
    assert open_pr.files == merge.files == "Pulumi.prod.yaml"

    def calls() -> list[str]:
        done = (tmp_path / "calls").read_text().splitlines() if (tmp_path / "calls").exists() else []
        (tmp_path / "calls").write_text("")
        return [" ".join(c.split()[:3]) for c in done]

    # A rebuild: nothing to publish, no pull request, the lift at once.
    done = sh(open_pr.command())
    assert done.returncode == 0, done.stderr
    assert "no pull request" in done.stdout and calls() == []
    assert sh("git ls-remote --heads origin dr/prod-r-x").stdout == ""  # nothing pushed
    done = sh(merge.command())
    assert done.returncode == 0, done.stderr
    assert calls() == ["gh variable delete"]
    # An edit not committed yet: the merge step goes to gh pr merge (no pull request: refused),
    # never straight to the lift.
    assert sh("git switch -q dr/prod-r-x && echo b > Pulumi.prod.yaml").returncode == 0
    env["MERGE_STATE"] = "BLOCKED"
    assert sh(merge.command()).returncode != 0
    assert calls() == ["gh pr merge"]
    # Committed by the pull request step: pushed, one pull request; run again, no second one and
    # no second commit.
    env["MERGE_STATE"] = "CLEAN"
    heads = []
    for _ in range(2):
        done = sh(open_pr.command())
        assert done.returncode == 0, done.stderr
        heads.append(sh("git rev-parse HEAD").stdout.strip())
    assert calls() == ["gh pr view", "gh pr create", "gh pr view"]
    assert heads[0] == heads[1] and sh("git show --format=%s -s HEAD").stdout.strip() == "DR: r of prod"
    head = heads[0]
    assert sh("git ls-remote --heads origin dr/prod-r-x").stdout.split()[0] == head
    env["PR_HEAD"] = env["LOCAL_HEAD"] = head
    done = sh(merge.command())
    assert done.returncode == 0, done.stderr
    assert calls() == ["gh pr merge", "gh pr view", "gh variable delete"]
    assert sh("git show origin/main:Pulumi.prod.yaml").stdout == "b\n"
    # main moves under a new runbook: a pull request merged meanwhile changed prod's file.
    assert (
        sh(
            f"git clone -q {origin} {other} && cd {other} && echo c > Pulumi.prod.yaml && "
            "git commit -qam colleague && git push -q origin main",
            cwd=tmp_path,
        ).returncode
        == 0
    )
    assert sh("git switch -qc dr/prod-r-y && echo d > Pulumi.prod.yaml").returncode == 0
    (tmp_path / "state").unlink()
    for step in (open_pr, merge):
        done = sh(step.command())
        assert done.returncode != 0 and "main changed Pulumi.prod.yaml" in done.stderr, (
            done.stdout,
            done.stderr,
        )
    assert calls() == []
    # A change to a file this runbook does not publish does not stop it.
    assert (
        sh("git checkout -q -- . && git fetch -q origin && git switch -qc dr/prod-r-z origin/main").returncode
        == 0
    )
    pushed = sh(
        f"cd {other} && git pull -q && echo t > Pulumi.staging.yaml && git commit -qam other && git push -q origin main",
        cwd=tmp_path,
    )
    assert pushed.returncode == 0, pushed.stderr
    assert sh("echo e > Pulumi.prod.yaml").returncode == 0
    done = sh(open_pr.command())
    assert done.returncode == 0, done.stderr
    assert calls() == ["gh pr view", "gh pr create"]


def test_the_ruleset_the_drill_models_is_the_one_the_program_declares() -> None:
    """tests/drill.py ``Repo`` models protect-main as the program declares it on main (every
    stack that declares it, from the checkout's stack files): active, no bypass actor, a pull
    request with at least one approving review, stale reviews dismissed on push, and the last
    push approved by someone else (pulumi-github 6.15.0 ``RepositoryRulesetRulesPullRequestArgs``:
    "Whether the most recent reviewable push must be approved by someone other than the person
    who pushed it"). GitHub: "Require a pull request before merging ... Require all commits be
    made to a non-target branch and submitted via a pull request before they can be merged"
    (https://docs.github.com/en/repositories/configuring-branches-and-merges-in-your-repository/managing-rulesets/available-rules-for-rulesets)."""
    import pulumi_github

    doc = inspect.getsource(pulumi_github.RepositoryRulesetRulesPullRequestArgs)
    assert (
        "most recent reviewable push must be approved by someone other than the person who pushed it" in doc
    )
    rulesets = [
        r
        for s in stack_names()
        for r in offline.run(s).of_type("github:index/repositoryRuleset:RepositoryRuleset")
        if "refs/heads/main" in r.inputs["conditions"]["refName"]["includes"]
    ]
    assert rulesets, "no stack declares a ruleset on main"
    for r in rulesets:
        assert r.inputs["enforcement"] == "active" and r.inputs["bypassActors"] == []
        pull = r.inputs["rules"]["pullRequest"]
        assert pull["requiredApprovingReviewCount"] >= 1
        assert pull["dismissStaleReviewsOnPush"] and pull["requireLastPushApproval"]
